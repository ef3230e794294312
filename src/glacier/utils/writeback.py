"""Start writing a memory-mapped array's rows to disk as soon as they are written.

A memory-mapped ``.npy`` written row block after row block is made durable by one ``msync``
at the end (``np.memmap.flush``), which then waits for every dirty page at once. Asking the
kernel to start writing each block back once it is complete (Linux ``sync_file_range`` with
``SYNC_FILE_RANGE_WRITE``: start, do not wait) lets the disk work on the other core while the
next blocks are computed, so the final ``msync`` finds little left. Measured on the tiled
Everest's stored bytes (175 MB, 2-core machine): the final flush 64-74 ms → 2 ms, the plain
read + write 0.23 → 0.19 s. Nothing changes in what is written or when it counts as durable
(the ``msync`` still runs); where the call does not exist (macOS, other libcs) this does nothing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from contextlib import ExitStack, closing
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from glacier.utils.io import reserve_space
from glacier.utils.runtime import libc_function

SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of the range's dirty pages; no wait


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Libc's ``sync_file_range``, or None where there is none."""
    call = libc_function("sync_file_range")
    if call is not None:
        call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        call.restype = ctypes.c_int
    return call


SYNC_FILE_RANGE = _sync_file_range()


class RowWriteback:
    """Start the writeback of rows of a memory-mapped ``.npy`` array (see the module).

    Args:
        array: A memory-mapped array of a ``.npy`` file (``np.lib.format.open_memmap``), rows
            along its first axis.
    """

    def __init__(self, array: np.memmap) -> None:
        self.offset = int(array.offset)
        self.row_bytes = int(array[:1].nbytes)
        self.fd = os.open(str(array.filename), os.O_RDONLY) if SYNC_FILE_RANGE else -1

    def rows(self, start: int, stop: int) -> None:
        """Start writing rows ``start:stop`` back (their pages must be written by now)."""
        if self.fd < 0 or stop <= start:
            return
        offset, length = self.offset + start * self.row_bytes, (stop - start) * self.row_bytes
        assert SYNC_FILE_RANGE is not None
        SYNC_FILE_RANGE(self.fd, offset, length, SYNC_FILE_RANGE_WRITE)  # a hint: errors ignored

    def close(self) -> None:
        """Close the file descriptor (the writes started go on)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_written_array(
    path: Path, dtype: DTypeLike, shape: tuple[int, ...], stack: ExitStack
) -> tuple[np.memmap, RowWriteback]:
    """Create a memory-mapped ``.npy`` to be written row block by row block, as a scene's is.

    Its blocks are reserved before any page is written (:func:`glacier.utils.io.reserve_space`:
    a full disk is an error here, not a SIGBUS later, and the writeback allocates nothing);
    the caller hands each written block to the returned :class:`RowWriteback`; the map is
    flushed (``msync``) when ``stack`` closes.

    Args:
        path: The new file.
        dtype: Its dtype.
        shape: Its shape (rows first).
        stack: Flushes the map and closes the writeback.

    Returns:
        The array and its writeback.
    """
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    stack.callback(array.flush)
    reserve_space(path)
    return array, stack.enter_context(closing(RowWriteback(array)))
