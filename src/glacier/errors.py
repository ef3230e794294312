"""Exceptions of the three ways a run ends early, and checks of configuration values.

Bad input (:class:`GlacierInputError`, exit status 2), the machine (:class:`GlacierEnvironmentError`
and every other :class:`OSError`: disk full, read-only folder, a missing file behind a VRT; exit
status 1) and a signal (:class:`RunInterrupted`: SIGINT, SIGTERM; exit status 128 + the signal).
Every message is one line that names the file or configuration key, says what is wrong and
what to do about it.
"""

from __future__ import annotations

import errno
import math
import os
import signal
from collections.abc import Collection
from numbers import Real
from typing import TypeVar

N = TypeVar("N", int, float)


class GlacierInputError(ValueError):
    """Raised when a file, a polygon layer or a configuration value cannot be used as given."""


class GlacierFileNotFoundError(GlacierInputError, FileNotFoundError):
    """Raised when a configured input file does not exist."""


class GlacierFileError(GlacierInputError):
    """Raised when an existing input file cannot be used (unreadable, no CRS, wrong bands...)."""


class GlacierConfigError(GlacierInputError):
    """Raised when a configuration value is out of bounds or of the wrong kind."""


class GlacierNameError(GlacierInputError):
    """Raised when a scene id or output name is invalid or two of them collide."""


class GlacierEnvironmentError(OSError):
    """Raised when the machine stops a run that had good input (no space, no permission...).

    Construct it as an :class:`OSError`: ``GlacierEnvironmentError(errno.ENOSPC, text, path)``.
    """


class RunInterrupted(BaseException):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM, with what it kept.

    A :class:`BaseException`, like :class:`KeyboardInterrupt`, so ``except Exception`` clean-ups
    do not swallow it.

    Args:
        signum: The signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        kept: What survived, e.g. ``"the dataset in data/processed/x is unchanged"``.
    """

    def __init__(self, signum: int, kept: str = "") -> None:
        super().__init__(signum, kept)
        self.signum = int(signum)
        self.kept = kept

    @property
    def signal_name(self) -> str:
        """``SIGINT``, ``SIGTERM``..."""
        return signal.Signals(self.signum).name

    @classmethod
    def of(cls, stop: BaseException, kept: str) -> RunInterrupted:
        """The interruption ``stop`` (KeyboardInterrupt or one of these) with ``kept``."""
        signum = stop.signum if isinstance(stop, RunInterrupted) else signal.SIGINT
        return cls(signum, kept)


def error_chain(error: BaseException) -> list[BaseException]:
    """``error`` and the errors it was raised from (``__cause__``/``__context__``), in order."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


ENVIRONMENT_HINTS = {
    errno.ENOSPC: "free space there (or write elsewhere) and re-run",
    errno.EDQUOT: "free space within your quota (or write elsewhere) and re-run",
    errno.EROFS: "that folder is read-only: write elsewhere or make it writable, then re-run",
    errno.EACCES: "no permission to write there: write elsewhere or fix its permissions",
    errno.EPERM: "no permission to write there: write elsewhere or fix its permissions",
    errno.ENOENT: "a file is missing: restore it, or fix the path, and re-run",
}


def environment_message(error: OSError) -> str:
    """One line for an :class:`OSError`: the file, the cause, and what to do.

    GDAL errors (rasterio) say "See previous exception"; the cause they were raised from names
    the file and the problem, so the deepest message of the chain is used.

    Args:
        error: The error.

    Returns:
        ``"<file>: <cause>; <what to do>"``.
    """
    if isinstance(error, GlacierEnvironmentError):
        return one_line(error.strerror or error)
    deeper = [one_line(e) for e in error_chain(error)[1:] if str(e)]
    text = one_line(error.strerror or error) or repr(error)
    if deeper and "previous exception" in text:  # rasterio: the cause says what failed
        text = deeper[-1]
    elif deeper and deeper[-1] not in text:
        text += f" ({deeper[-1]})"
    where = f"{error.filename}: " if error.filename and str(error.filename) not in text else ""
    code = error.errno or next(  # GDAL's errors carry no errno, only its text
        (number for number in ENVIRONMENT_HINTS if os.strerror(number) in text), 0
    )
    hint = ENVIRONMENT_HINTS.get(code)
    return f"{where}{text}" + (f"; {hint}" if hint else "")


def one_line(text: object) -> str:
    """Collapse whitespace (GDAL messages carry newlines) so a message stays on one line.

    Args:
        text: Any message or exception.

    Returns:
        The text with every run of whitespace replaced by one space.
    """
    return " ".join(str(text).split())


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


def _number(key: str, value: object, integer: bool) -> float:
    """``value`` as a finite number, refusing booleans, strings, NaN and (if asked) fractions."""
    kind, example = ("an integer", 1) if integer else ("a number", 0.5)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise GlacierConfigError(f"{key}={value!r}: must be {kind}, e.g. {key}={example}")
    number = float(value)
    if not math.isfinite(number):
        raise GlacierConfigError(f"{key}={value!r}: must be a finite number")
    if integer and not number.is_integer():
        raise GlacierConfigError(
            f"{key}={value!r}: must be a whole number, e.g. {key}={int(number)}"
        )
    return number


def require_range(
    key: str,
    value: N,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> N:
    """Check that a numeric config value lies in a range; return it unchanged.

    Args:
        key: The config key as the user types it, e.g. ``"predict.overlap"``.
        value: The configured value.
        low: Smallest allowed value (None: unbounded).
        high: Largest allowed value (None: unbounded).
        integer: Require a whole number (``8`` or ``8.0``).
        low_inclusive: Whether ``low`` itself is allowed.
        high_inclusive: Whether ``high`` itself is allowed.

    Returns:
        ``value``.

    Raises:
        GlacierConfigError: ``"{key}={value}: must be an integer > 0; set {key} to ..."``.
    """
    number = _number(key, value, integer)
    too_low = low is not None and (number < low if low_inclusive else number <= low)
    too_high = high is not None and (number > high if high_inclusive else number >= high)
    if too_low or too_high:
        left = "" if low is None else f"{'>=' if low_inclusive else '>'} {_fmt(low)}"
        right = "" if high is None else f"{'<=' if high_inclusive else '<'} {_fmt(high)}"
        bounds = " and ".join(part for part in (left, right) if part)
        kind = "an integer" if integer else "a number"
        raise GlacierConfigError(
            f"{key}={value!r}: must be {kind} {bounds}; set {key} to such a value in the "
            "config or on the command line"
        )
    return value


def _fmt(bound: float) -> str:
    """``4`` rather than ``4.0`` in messages."""
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def require_positive(key: str, value: N, *, integer: bool = True) -> N:
    """Check ``value > 0`` (e.g. ``batch_size``, ``n_jobs``, ``tile_size``); return it.

    Args:
        key: The config key, named in the message.
        value: The configured value.
        integer: Require a whole number (the default: counts and sizes).

    Returns:
        ``value``.

    Raises:
        GlacierConfigError: If it is not a positive (integer) number.
    """
    return require_range(key, value, 0, None, integer=integer, low_inclusive=False)


def require_non_negative(key: str, value: N, *, integer: bool = True) -> N:
    """Check ``value >= 0`` (e.g. ``mc_samples``, ``overlap``); return it.

    Args:
        key: The config key, named in the message.
        value: The configured value.
        integer: Require a whole number (the default).

    Returns:
        ``value``.

    Raises:
        GlacierConfigError: If it is negative or not a (whole) number.
    """
    return require_range(key, value, 0, None, integer=integer)


def require_choice(key: str, value: object, choices: Collection[object]) -> object:
    """Check that ``value`` is one of ``choices``; return it.

    Args:
        key: The config key, named in the message.
        value: The configured value.
        choices: Allowed values.

    Returns:
        ``value``.

    Raises:
        GlacierConfigError: Listing the allowed values.
    """
    if value not in choices:
        raise GlacierConfigError(f"{key}={value!r}: choose one of {list(choices)}")
    return value
