"""Normalization statistics from the slicing pass: pixel moments per cell of the window grid.

A scene's slice windows (row starts × column starts, one size) cut it into cells along every
window edge; all pixels of a cell lie in the same windows, so the pixels of any set of windows
(the training windows, each pixel once) are a set of whole cells. While slicing, each cell's
count of valid pixels and per-channel sums of values and of squares are accumulated from the
strip in memory (:class:`MomentAccumulator`); the statistics of any filter and split are then
sums over the covered cells (:func:`training_stats`), with no second pass over the stored pixels.

Sums are float64. Channels stored as integers of up to 16 bits are summed as they are (their
sums and sums of squares are exact integers) and turned into a mean and squared deviations in
exact arithmetic; float channels are summed shifted by the scene's first valid value, so a
constant channel has a variance of exactly 0 (std 1 in the contract).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from glacier.data.contract import ChannelStats, StorageGroup
from glacier.data.preprocess.moment_sums import (
    EXACT_INTEGERS,
    PLANE_DTYPES,
    finite_pixels,
    plane_sums,
    row_sums,
)
from glacier.data.preprocess.postprocess import RunningStats
from glacier.errors import GlacierInputError


def cell_edges(starts: Sequence[int], size: int, length: int) -> np.ndarray:
    """Cell boundaries along one axis: every window start and end inside ``[0, length]``."""
    edges = np.asarray([0, length, *starts, *(s + size for s in starts)], dtype=np.int64)
    return np.unique(np.clip(edges, 0, length))


@dataclass
class CellMoments:
    """Valid-pixel moments of every cell of a scene's window grid.

    Attributes:
        row_edges: (R + 1,) cell boundaries along rows.
        col_edges: (Q + 1,) cell boundaries along columns.
        shift: (C,) value subtracted from each channel before summing (0 for integer channels).
        count: (R, Q) valid pixels per cell.
        sums: (R, Q, C) sums of the shifted values.
        squares: (R, Q, C) sums of the squared shifted values.
    """

    row_edges: np.ndarray
    col_edges: np.ndarray
    shift: np.ndarray
    count: np.ndarray
    sums: np.ndarray
    squares: np.ndarray

    def to_text(self) -> str:
        """The arrays as one ASCII string (for a JSON stage record; exact)."""
        buffer = io.BytesIO()
        np.savez(buffer, **vars(self))
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> CellMoments:
        """Inverse of :meth:`to_text`."""
        with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as arrays:
            return cls(**{name: arrays[name] for name in arrays.files})

    def covered(self, windows: pd.DataFrame) -> np.ndarray:
        """(R, Q) cells inside any of ``windows`` (``row_off``, ``col_off``, ``size``)."""
        top, left = windows["row_off"].to_numpy(), windows["col_off"].to_numpy()
        size = windows["size"].to_numpy()
        r0, r1 = (_edge_index(self.row_edges, v) for v in (top, top + size))
        c0, c1 = (_edge_index(self.col_edges, v) for v in (left, left + size))
        marks = np.zeros((len(self.row_edges), len(self.col_edges)), dtype=np.int64)
        for r, c, sign in ((r0, c0, 1), (r0, c1, -1), (r1, c0, -1), (r1, c1, 1)):
            np.add.at(marks, (r, c), sign)  # each window: +1 inside its rectangle of cells
        return marks.cumsum(axis=0).cumsum(axis=1)[:-1, :-1] > 0

    def totals(
        self, windows: pd.DataFrame, exact: np.ndarray
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """Valid pixels of the windows, their mean and sum of squared deviations per channel.

        Args:
            windows: The scene's windows (each pixel counts once).
            exact: (C,) channels whose sums are exact integers.

        Returns:
            ``(count, mean, m2)``; NaN means and m2 when no pixel is valid.
        """
        cells = self.covered(windows)
        count = int(self.count[cells].sum())
        sums, squares = self.sums[cells], self.squares[cells]  # (cells, C)
        mean, m2 = np.full(len(self.shift), np.nan), np.full(len(self.shift), np.nan)
        if not count:
            return 0, mean, m2
        for channel in range(len(self.shift)):
            if exact[channel]:  # exact integers: the mean and m2 rounded once
                total = sum(sums[:, channel].astype(np.int64).tolist(), start=0)
                square = sum(squares[:, channel].astype(np.int64).tolist(), start=0)
                mean[channel] = float(Fraction(total, count))
                m2[channel] = float(square - Fraction(total * total, count))
            else:
                total, square = sums[:, channel].sum(), squares[:, channel].sum()
                mean[channel] = self.shift[channel] + total / count
                m2[channel] = max(square - total**2 / count, 0.0)
        return count, mean, m2


def _edge_index(edges: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Index of each window edge (clipped to the scene) among the cell edges.

    Raises:
        GlacierInputError: If an edge is not a cell edge (windows of another grid).
    """
    clipped = np.clip(offsets, 0, edges[-1])
    index: np.ndarray = np.searchsorted(edges, clipped)
    if not np.array_equal(edges[np.minimum(index, len(edges) - 1)], clipped):
        raise GlacierInputError(
            "slice windows do not lie on the window grid their scene was sliced with; "
            "re-run `glacier preprocess`"
        )
    return index


class MomentAccumulator:
    """Accumulate :class:`CellMoments` from a scene's stored rows, strip by strip.

    Args:
        row_edges: Cell boundaries along rows (see :func:`cell_edges`).
        col_edges: Cell boundaries along columns.
        groups: The contract's storage groups (which channels each stored array holds).
    """

    def __init__(
        self, row_edges: np.ndarray, col_edges: np.ndarray, groups: Sequence[StorageGroup]
    ) -> None:
        channels = sum(len(group.channels) for group in groups)
        shape = (len(row_edges) - 1, len(col_edges) - 1)
        self.groups = list(groups)
        self.moments = CellMoments(
            row_edges=row_edges,
            col_edges=col_edges,
            shift=np.zeros(channels),
            count=np.zeros(shape, dtype=np.int64),
            sums=np.zeros((*shape, channels)),
            squares=np.zeros((*shape, channels)),
        )
        self._shifted = False

    def add(
        self,
        top: int,
        parts: Sequence[np.ndarray],
        valid: np.ndarray,
        planes: np.ndarray | None = None,
        complete: bool | None = None,
    ) -> None:
        """Add stored rows ``top …`` (one (h, W, Cg) array per group) and their (h, W) validity.

        The rows must start and end on cell boundaries (a strip's own rows do). A valid pixel
        with a non-finite stored value (a float16 overflow) is left out of every channel.

        Args:
            top: The first row's scene row.
            parts: The rows as stored, one array per storage group.
            valid: Their valid pixels.
            planes: (C, h, ≥ W) the same rows as read (float32, channel after channel): at valid
                pixels, the values that channels stored as 8-bit integers hold. Those channels
                are summed from these contiguous planes instead of the interleaved stored
                arrays (the same exact sums, without widening the stored bytes).
            complete: True when every pixel of ``valid`` is (None or False: look, per row of
                cells).
        """
        edges = self.moments.row_edges
        first, stop = int(np.searchsorted(edges, top)), top + valid.shape[0]
        for cell_row in range(first, int(np.searchsorted(edges, stop))):
            rows = slice(int(edges[cell_row]) - top, int(edges[cell_row + 1]) - top)
            cell_planes = None if planes is None else planes[:, rows]
            self._add_rows(
                cell_row, [part[rows] for part in parts], valid[rows], cell_planes, complete
            )

    def _add_rows(
        self,
        cell_row: int,
        parts: Sequence[np.ndarray],
        valid: np.ndarray,
        planes: np.ndarray | None,
        complete: bool | None,
    ) -> None:
        """Add rows that lie in one row of cells."""
        complete = complete or bool(valid.all())
        if not self._shifted and (complete or valid.any()):
            self._set_shift(parts, finite_pixels(self.groups, parts, valid))
        sums = self._column_sums(parts, valid, planes, complete)
        if not np.isfinite(sums).all():
            valid = finite_pixels(self.groups, parts, valid)
            complete = bool(valid.all())
            sums = self._column_sums(parts, valid, planes, complete, zeroed=False)
        starts = self.moments.col_edges[:-1]
        per_column = np.full(valid.shape[1], len(valid)) if complete else valid.sum(axis=0)
        self.moments.count[cell_row] += np.add.reduceat(per_column, starts)
        cells = np.add.reduceat(sums, starts, axis=1)  # (2, Q, C) in channel order
        self.moments.sums[cell_row] += cells[0]
        self.moments.squares[cell_row] += cells[1]

    def _set_shift(self, parts: Sequence[np.ndarray], usable: np.ndarray) -> None:
        """Shift float channels by their value at the scene's first usable pixel."""
        if not usable.any():
            return
        row, col = np.unravel_index(int(np.argmax(usable)), usable.shape)
        for group, part in zip(self.groups, parts, strict=True):
            if group.dtype not in EXACT_INTEGERS:
                self.moments.shift[list(group.channels)] = part[row, col].astype(np.float64)
        self._shifted = True

    def _column_sums(
        self,
        parts: Sequence[np.ndarray],
        valid: np.ndarray,
        planes: np.ndarray | None,
        complete: bool,
        zeroed: bool = True,
    ) -> np.ndarray:
        """(2, W, C) sums over rows of the values and of their squares, in channel order.

        ``zeroed``: integer arrays already hold 0 wherever ``valid`` is False (nodata).
        """
        width = valid.shape[1]
        sums = np.empty((2, width, len(self.moments.shift)))
        for group, part in zip(self.groups, parts, strict=True):
            exact = EXACT_INTEGERS.get(group.dtype)
            channels = list(group.channels)
            if group.dtype in PLANE_DTYPES and planes is not None:  # from the read planes
                columns, squares = plane_sums(planes, channels, valid, complete)
            elif exact is not None:  # pixels holding 0 add nothing
                values = part if complete or zeroed else np.where(valid[..., None], part, 0)
                columns, squares = row_sums(values, exact)
            else:
                shift = self.moments.shift[channels]
                columns, squares = row_sums(part, np.float64, shift, None if complete else valid)
            sums[0][:, channels] = columns
            sums[1][:, channels] = squares
        return sums


def training_stats(
    moments: Mapping[str, CellMoments],
    train: pd.DataFrame,
    channels: Sequence[str],
    groups: Sequence[StorageGroup],
) -> ChannelStats:
    """Mean and std per channel over the valid pixels of the training windows (each once).

    Args:
        moments: Each scene's cell moments.
        train: Index rows of the training slices (``scene``, ``row_off``, ``col_off``, ``size``).
        channels: Channel names, in stored order.
        groups: The contract's storage groups.

    Returns:
        The statistics (a constant channel gets std 1).

    Raises:
        GlacierInputError: If there are no valid training pixels.
    """
    exact = np.zeros(len(channels), dtype=bool)
    for group in groups:
        exact[list(group.channels)] = group.dtype in EXACT_INTEGERS
    stats = RunningStats(len(channels))
    for scene, windows in train.groupby("scene", sort=True):
        count, mean, m2 = moments[str(scene)].totals(windows, exact)
        if count:
            stats.merge(float(count), mean, m2)
    return stats.channel_stats(channels)
