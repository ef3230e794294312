"""Strips of slice windows as the pixel pass reads them: validity and column totals.

Every window spans its strip's full height, so the window statistics of the label pass
(:mod:`glacier.data.preprocess.slice_labels`) are differences of per-column totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rasterio.windows import Window

from glacier.data.preprocess.moments import CellMoments
from glacier.data.raster import SceneReader


@dataclass
class StripPixels:
    """What the pixel pass keeps of one strip of slice windows for the label pass.

    Attributes:
        row: The strip's first scene row.
        inside: Its rows inside the scene.
        owned: Its rows no later strip writes (up to the next strip's start; all for the last).
        valid: (size, cover) valid pixels (False past the scene's edge).
        count: (cover + 1,) valid pixels of the columns before each column (a cumulative sum).
        image: (cover + 1,) the same for the valid pixels' sums over every channel (float64).
        complete: Whether every pixel of its rows inside the scene is valid.
    """

    row: int
    inside: int
    owned: int
    valid: np.ndarray
    count: np.ndarray
    image: np.ndarray
    complete: bool


@dataclass
class SlicedPixels:
    """The pixel pass over a scene: every strip, the window columns, the cell moments.

    Attributes:
        strips: Each strip of windows, top to bottom.
        col_starts: The windows' column offsets (the same in every strip).
        size: The window size.
        moments: The valid pixels' moments per cell of the window grid.
    """

    strips: list[StripPixels]
    col_starts: list[int]
    size: int
    moments: CellMoments


def integer_lead(dtypes: Sequence[str]) -> int:
    """Leading channels stored as 8/16-bit integers whose float32 sum is exact.

    Their valid values are integers (what an integer array stores), so their sum in float32
    is exact while it stays below 2²⁴: the same number a float64 sum gives, in any order.
    """
    lead = 0
    for count, dtype in enumerate(dtypes, start=1):
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
        if info is None or info.bits > 16 or count * max(-info.min, info.max) >= 1 << 24:
            break
        lead = count
    return lead


def _column_totals(
    strip: np.ndarray, valid: np.ndarray, lead: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative valid pixels and valid channel sums along the columns of a strip.

    Every window spans the strip's full height, so a window's pixels and sum are differences
    of these (no per-window pass over pixels). ``lead``: leading channels of integer values
    (see :func:`integer_lead`), summed in float32 first (exactly: the same float64 sums).
    """
    count = np.concatenate([[0], np.cumsum(valid.sum(axis=0, dtype=np.int64))])
    if lead > 1:
        channel_sum = np.add.reduce(strip[:lead], axis=0).astype(np.float64)
    else:
        lead = 1
        channel_sum = strip[0].astype(np.float64)  # channel after channel, as strip.sum(axis=0)
    with np.errstate(invalid="ignore"):
        for channel in strip[lead:]:
            channel_sum += channel
    channel_sum[~valid] = 0.0
    image = np.concatenate([[0.0], np.cumsum(channel_sum.sum(axis=0))])
    return count, image


@dataclass
class StripReader:
    """Reads strip after strip of a scene's windows into reused buffers.

    Strip ``index`` goes into buffer ``index % 2`` (the second made when first needed), so the
    next strip can be read while the caller still works on this one.

    Attributes:
        reader: The open scene.
        row_starts: The windows' row offsets (one strip each).
        size: The window size (a strip's height).
        cover: Columns read (the last window's end; past the edge is nodata).
        channels: Channels read.
        extra_invalid: (H, W) pixels to treat as nodata besides the bands' own (the region).
        lead: Leading channels summed exactly in float32 (see :func:`integer_lead`).
    """

    reader: SceneReader
    row_starts: Sequence[int]
    size: int
    cover: int
    channels: int
    extra_invalid: np.ndarray | None = None
    lead: int = 0
    buffers: dict[int, np.ndarray] = field(default_factory=dict)

    def __call__(self, index: int) -> tuple[np.ndarray, StripPixels]:
        """Strip ``index`` (buffer ``index % 2``), the region's outside invalid, its totals."""
        height, width, size = self.reader.height, self.reader.width, self.size
        row = self.row_starts[index]
        window = Window(0, row, self.cover, size)
        if index % 2 not in self.buffers:
            shape = (self.channels, self.size, self.cover)
            self.buffers[index % 2] = np.empty(shape, dtype=np.float32)
        buffer = self.buffers[index % 2]
        strip, valid = self.reader.read_with_mask(window, out=buffer)
        inside = min(size, height - row)
        if self.extra_invalid is not None:
            valid[:inside, :width] &= ~self.extra_invalid[row : row + inside]
        # the rows only this strip writes: up to the next strip's start (all for the last)
        last = index + 1 == len(self.row_starts)
        stop = min(height if last else self.row_starts[index + 1], height)
        count, image = _column_totals(strip, valid, self.lead)
        complete = int(count[width]) == inside * width
        return strip, StripPixels(row, inside, stop - row, valid, count, image, complete)
