"""Exceptions raised for bad user input: each message names the file or key and the problem."""


class GlacierInputError(ValueError):
    """Raised when a file, a polygon layer or a configuration value cannot be used as given."""


class GlacierFileNotFoundError(GlacierInputError, FileNotFoundError):
    """Raised when a configured input file does not exist."""


def require_file(path: object, what: str) -> None:
    """Raise a clear error unless ``path`` is an existing file.

    Args:
        path: The configured path.
        what: What the file is for, e.g. ``"scene band source"``; used in the message.

    Raises:
        GlacierFileNotFoundError: If the file does not exist.
    """
    from pathlib import Path

    if path is None or not Path(str(path)).is_file():
        raise GlacierFileNotFoundError(f"{what} not found: {path}")
