"""Atomic file writes and input fingerprints, so every stage is safe to interrupt and re-run."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glacier.errors import GlacierEnvironmentError


def _umask() -> int:
    """The process umask (read without changing it for long)."""
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_path(final_path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path`` and rename it into place on success.

    The temporary file lives in the same directory, so the final rename is atomic; on any
    exception it is removed and ``final_path`` keeps its earlier content.

    Args:
        final_path: Where the file must appear once it is complete.

    Yields:
        The temporary path to write to.
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give outputs normal permissions
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as error:
        if error.filename is None:  # a failed write() names no file: name the one written
            error.filename = str(final)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write a text file atomically; an identical existing file is left untouched.

    Args:
        path: Destination path.
        text: File content.
    """
    target = Path(path)
    if target.is_file() and target.read_text() == text:
        return
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_gpkg_atomic(frame: Any, path: Path, layer: str) -> Path:
    """Write a GeoDataFrame as a GeoPackage layer under a temporary name, then rename it.

    Args:
        frame: A ``geopandas.GeoDataFrame``.
        path: The final ``.gpkg``.
        layer: Layer name.

    Returns:
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.gpkg")
    tmp.unlink(missing_ok=True)
    try:
        frame.to_file(tmp, driver="GPKG", layer=layer)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(path: Path | str, data: Any, indent: int | None = 2) -> None:
    """Write JSON atomically, indented and with sorted keys for stable diffs.

    Args:
        path: Destination path.
        data: JSON-serialisable object.
        indent: Spaces per level; None writes compact JSON (Python's C encoder, several times
            faster on big records).
    """
    separators = None if indent is not None else (",", ":")
    text = json.dumps(data, indent=indent, separators=separators, sort_keys=True, default=str)
    write_text_atomic(path, text + "\n")


def replace_directory(staging_dir: Path, final_dir: Path) -> None:
    """Swap a fully written staging directory into place of ``final_dir``.

    Args:
        staging_dir: Complete new content.
        final_dir: Directory to replace (may not exist yet).
    """
    old = final_dir.with_name(f".{final_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(staging_dir, final_dir)
    if old.exists():
        shutil.rmtree(old)


def reserve_space(path: Path | str) -> None:
    """Allocate every block of an existing file now (``posix_fallocate``).

    A memory-mapped ``.npy`` is created sparse; writing its pages on a full disk later kills
    the process with SIGBUS and no message. Reserving its blocks first makes a full disk an
    ENOSPC error here instead. File systems that cannot reserve space are left as they are.

    Args:
        path: The file (its current size is reserved).

    Raises:
        GlacierEnvironmentError: If the disk is full, naming the file, its size and the free
            space.
    """
    if not hasattr(os, "posix_fallocate"):  # not on macOS
        return
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return
        free = shutil.disk_usage(Path(path).parent).free
        raise GlacierEnvironmentError(
            error.errno,
            f"{path}: {os.strerror(error.errno or errno.ENOSPC)} while reserving "
            f"{size / 1e6:.1f} MB ({free / 1e6:.1f} MB free there); free space or choose another "
            "folder, then re-run",
            str(path),
        ) from error
    finally:
        os.close(fd)


def file_fingerprint(path: Path | str) -> dict[str, Any]:
    """Describe a file cheaply (path, size, modification time) for change detection.

    Args:
        path: File to describe.

    Returns:
        A JSON-serialisable dictionary.
    """
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def fingerprint(*parts: Any) -> str:
    """Hash JSON-serialisable parts into a short stable hex digest.

    Args:
        *parts: Configuration values, file fingerprints, versions.

    Returns:
        A 16-character hex digest.
    """
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def files_fingerprint(paths: Sequence[Path | str]) -> list[dict[str, Any]]:
    """Fingerprint several files (see :func:`file_fingerprint`).

    Args:
        paths: Files to describe.

    Returns:
        One dictionary per file, in order.
    """
    return [file_fingerprint(p) for p in paths]


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's content, read in chunks (memory stays bounded).

    Args:
        path: File to hash.
        chunk_size: Bytes read at a time.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()
