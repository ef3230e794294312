"""The training value range per channel: quantiles of an evenly spaced sample of valid pixels.

Statistics come from the slicing pass's cell moments; the range needs quantiles, so a sample of
the valid training pixels (:class:`RangeSample`) is read back from the stored scenes, one row in
:data:`RANGE_ROW_STEP` of each scene's training windows (:func:`training_ranges`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from glacier.data.contract import IGNORE_INDEX
from glacier.data.store import SceneStore, training_area

RANGE_QUANTILES = (0.001, 0.999)  # the training value range: 0.1 % and 99.9 % of valid pixels
RANGE_SAMPLE_ROWS = 1 << 16  # pixels kept for the range: 2x this at most (C x 4 B each)
RANGE_ROW_STEP = 8  # stored scenes: every 8th row of the training windows samples the range
RANGE_BLOCK_ROWS = 64  # sampled rows gathered at a time (memory: 64 rows of a scene's pixels)


class RangeSample:
    """An evenly spaced, bounded sample of pixels (every ``step``-th), for quantiles.

    The sample holds the pixels whose running index is a multiple of ``step``; the step doubles
    (and every other kept pixel goes) before a block would grow the sample past ``2 * limit``
    rows, so memory stays bounded even for one large block, and the same pixels in the same
    order give the same sample.
    """

    def __init__(self, limit: int = RANGE_SAMPLE_ROWS) -> None:
        self.limit = limit
        self.step = 1
        self.seen = 0
        self.parts: list[np.ndarray] = []
        self.rows = 0

    def _halve(self) -> None:
        """Keep every other sampled pixel: the multiples of twice the step."""
        if self.parts:
            kept = np.concatenate(self.parts)[::2].copy()
            self.parts, self.rows = [kept], len(kept)
        self.step *= 2

    def update(self, values: np.ndarray) -> None:
        """Add (N, C) pixels; keep those at multiples of ``step`` in the running order."""
        self.update_rows(values, [len(values)])

    def update_rows(self, values: np.ndarray, lengths: Sequence[int]) -> None:
        """Add (N, C) pixels, rows of ``lengths`` pixels: the sample of adding row after row.

        One slice of ``values`` is kept, the step worked out from the counts: the sample is
        always the pixels at multiples of the step among those seen, ``ceil(seen / step)`` of
        them, so the step the rows end with says what it holds.
        """
        seen, step = self.seen, self.step
        for length in lengths:
            while -(-seen // step) + length // step > 2 * self.limit:
                step *= 2
            seen += length
        while self.step < step:
            self._halve()
        part = values[(-self.seen) % step :: step]
        self.seen = seen
        self.parts.append(part.astype(np.float32))
        self.rows += len(part)

    def quantiles(self, names: Sequence[str]) -> dict[str, tuple[float, float]]:
        """Per channel, the :data:`RANGE_QUANTILES` of the sample (empty without pixels)."""
        if not self.rows:
            return {}
        low, high = np.quantile(np.concatenate(self.parts), RANGE_QUANTILES, axis=0)
        return {n: (float(a), float(b)) for n, a, b in zip(names, low, high, strict=True)}


def training_ranges(
    store: SceneStore, train: pd.DataFrame, channels: Sequence[str], step: int = RANGE_ROW_STEP
) -> dict[str, tuple[float, float]]:
    """The training value range per channel, from every ``step``-th row of the stored scenes.

    Statistics come from the slicing pass's cell moments; the range needs quantiles, so an
    evenly spaced sample of valid training pixels (:class:`RangeSample`) is read back: one
    row in ``step`` of each scene's training windows.

    Args:
        store: The stored scenes (staged ones included).
        train: Index rows of the training slices.
        channels: Channel names, in stored order.
        step: Rows between two sampled rows.

    Returns:
        The 0.1-99.9 % interval per channel (empty without valid pixels).
    """
    sample = RangeSample()
    groups = [list(group.channels) for group in store.groups]
    for scene, windows in train.groupby("scene", sort=True):
        images, labels = store.arrays(str(scene))
        area = training_area(labels.shape[:2], windows)
        sampled = range(0, labels.shape[0], step)
        for first in range(0, len(sampled), RANGE_BLOCK_ROWS):
            rows = np.asarray(sampled[first : first + RANGE_BLOCK_ROWS])
            sample.update_rows(*_sampled_rows(images, labels, area, rows, groups, len(channels)))
    return sample.quantiles(channels)


def _pixels_at(block: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The (N, Cg) pixels of an (R, W, Cg) block where the (R, W) mask is True, in row order.

    Each pixel's channels are viewed as one item, so the mask picks whole pixels (3x faster
    than indexing the block with the 2-D mask, which copies channel by channel).
    """
    pixels = np.ascontiguousarray(block).reshape(-1, block.shape[-1])
    items = pixels.view(np.dtype((np.void, pixels.itemsize * pixels.shape[1]))).ravel()
    picked: np.ndarray = items[chosen.ravel()].view(pixels.dtype).reshape(-1, pixels.shape[1])
    return picked


def _sampled_rows(
    images: Sequence[np.ndarray],
    labels: np.ndarray,
    area: np.ndarray,
    rows: np.ndarray,
    groups: Sequence[list[int]],
    channels: int,
) -> tuple[np.ndarray, list[int]]:
    """Finite (N, C) float32 values of sampled rows' valid training pixels; each row's count.

    The pixels are in row order. The rows are gathered at once (one fancy index per array),
    in float32, the sample's own dtype (8/16-bit integers and floats exactly; 32-bit integers
    rounded once, as the sample did from float64).
    """
    chosen = area[rows] & (np.asarray(labels)[rows, :, 0] != IGNORE_INDEX)
    values = np.empty((int(chosen.sum()), channels), dtype=np.float32)
    finite = np.ones(len(values), dtype=bool)
    for group, array in zip(groups, images, strict=True):
        picked = _pixels_at(np.asarray(array)[rows], chosen)
        values[:, group] = picked
        if picked.dtype.kind == "f" and not np.isfinite(picked).all():  # integers are finite
            finite &= np.isfinite(picked).all(axis=1)  # per pixel only when one is not
    per_row = chosen.sum(axis=1)
    if finite.all():
        return values, per_row.tolist()
    row_of = np.repeat(np.arange(len(rows)), per_row)
    lengths = np.bincount(row_of[finite], minlength=len(rows))
    return values[finite], lengths.tolist()
