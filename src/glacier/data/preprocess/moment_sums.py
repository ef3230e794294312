"""Column sums of a strip's stored rows and of their squares, exact where the dtype allows.

The arithmetic behind :class:`glacier.data.preprocess.moments.MomentAccumulator`: channels stored
as integers of up to 16 bits are summed in a float type that holds their sums exactly (float32
for 8-bit values over at most :data:`EXACT_ROWS` rows, float64 for 16-bit ones), so the order of
the additions does not matter; float channels are summed in float64, shifted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glacier.data.contract import StorageGroup

# stored dtypes whose sums of values and squares float32 (≤ 256 rows) or float64 hold exactly
EXACT_INTEGERS: dict[str, type[np.floating]] = {
    "uint8": np.float32,
    "int8": np.float32,
    "uint16": np.float64,
    "int16": np.float64,
}
# stored dtypes whose moments :func:`plane_sums` takes from the float32 planes as read
PLANE_DTYPES = frozenset(dtype for dtype, sums in EXACT_INTEGERS.items() if sums is np.float32)
EXACT_ROWS = 256  # rows summed at a time in float32: 256 × 255² < 2²⁴
CHUNK_VALUES = 1 << 21  # values widened at a time (16 MB of float64): memory stays a strip's


def finite_pixels(
    groups: Sequence[StorageGroup], parts: Sequence[np.ndarray], valid: np.ndarray
) -> np.ndarray:
    """Valid pixels whose stored float values are all finite."""
    usable = valid.copy()
    for group, part in zip(groups, parts, strict=True):
        if np.dtype(group.dtype).kind == "f":
            usable &= np.isfinite(part).all(axis=-1)
    return usable


def row_sums(
    values: np.ndarray,
    dtype: type[np.floating],
    shift: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(W, Cg) sums over the rows of (h, W, Cg) values and of their squares (float64).

    Rows are widened to ``dtype`` a block at a time (at most :data:`EXACT_ROWS` rows and
    :data:`CHUNK_VALUES` values): for small integers in float32 every partial sum stays below
    2²⁴, so their sums are exact whatever the order. ``shift`` is subtracted first; pixels
    outside ``valid`` count as 0.
    """
    height, width, count = values.shape
    rows = max(1, min(EXACT_ROWS, CHUNK_VALUES // max(width * count, 1)))
    columns, squares = np.zeros((width, count)), np.zeros((width, count))
    for top in range(0, height, rows):
        for k in range(count):  # a channel at a time: a scalar shift, contiguous planes
            block = values[top : top + rows, :, k].astype(dtype)
            if shift is not None:
                block -= shift[k]
            if valid is not None:
                block[~valid[top : top + rows]] = 0.0
            columns[:, k] += np.add.reduce(block, axis=0)
            np.multiply(block, block, out=block)
            squares[:, k] += np.add.reduce(block, axis=0)
    return columns, squares


def plane_sums(
    planes: np.ndarray, channels: Sequence[int], valid: np.ndarray, complete: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(W, Cg) sums over the rows of 8-bit integer values held as float32 planes, and squares.

    ``planes`` is (C, h, ≥ W), ``valid`` (h, W); pixels outside ``valid`` count as 0 (they
    may hold NaN), unless ``complete`` says every pixel is valid. Rows are summed
    :data:`EXACT_ROWS` at a time in float32, so every partial sum is an exact integer: the
    sums are those of the stored integers, whatever the order.
    """
    height, width = valid.shape
    columns, squares = np.zeros((width, len(channels))), np.zeros((width, len(channels)))
    block = np.empty((min(height, EXACT_ROWS), width), dtype=np.float32)
    for top in range(0, height, EXACT_ROWS):
        rows = slice(top, top + EXACT_ROWS)
        for k, channel in enumerate(channels):
            plane = planes[channel, rows, :width]
            if not complete:
                plane = np.where(valid[rows], plane, np.float32(0))
            columns[:, k] += np.add.reduce(plane, axis=0)
            square = np.multiply(plane, plane, out=block[: plane.shape[0]])
            squares[:, k] += np.add.reduce(square, axis=0)
    return columns, squares
