"""Weighted blending of overlapping tile predictions, held only for rows not yet written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class BlockRows:
    """Blending sums of ``rows`` scene rows starting at ``top``.

    Attributes:
        top: First scene row.
        probs: (K, rows, W) weighted probability sums.
        variance: (K, rows, W) weighted MC variances, or None.
        valid: (rows, W) pixels with data in at least one tile.
        weights: (rows, W) sums of blending weights.
    """

    top: int
    probs: np.ndarray
    variance: np.ndarray | None
    valid: np.ndarray
    weights: np.ndarray


class BlendStrip:
    """Accumulate weighted tile predictions in row blocks aligned to the output's blocks.

    A block is allocated when the first tile reaches it, grown as far as tiles reach, and
    handed out, whole and never touched again, once tiles have moved below it. Memory is
    therefore bounded by ``K × (tile + block) × width`` floats whatever the scene height, and
    rows above the bottom block are never copied.

    Args:
        classes: Number of probability channels K.
        width: Scene width.
        height: Scene height.
        with_variance: Also accumulate MC-dropout variances.
        block: Rows per block (the GeoTIFF block height, so writes fill whole blocks).
    """

    def __init__(
        self, classes: int, width: int, height: int, with_variance: bool, block: int
    ) -> None:
        self.classes = classes
        self.width = width
        self.height = height
        self.with_variance = with_variance
        self.block = block
        self.blocks: dict[int, BlockRows] = {}

    @property
    def rows_held(self) -> int:
        """Scene rows currently in memory."""
        return sum(b.weights.shape[0] for b in self.blocks.values())

    def _block(self, index: int, rows: int) -> BlockRows:
        """Block ``index`` holding at least its first ``rows`` rows (allocated or grown)."""
        block = self.blocks.get(index)
        if block is None:
            shape = (rows, self.width)
            variance = np.zeros((self.classes, *shape), np.float32) if self.with_variance else None
            block = BlockRows(
                index * self.block,
                np.zeros((self.classes, *shape), np.float32),
                variance,
                np.zeros(shape, bool),
                np.zeros(shape, np.float32),
            )
            self.blocks[index] = block
        elif block.weights.shape[0] < rows:
            # the bottom block grows only as far as tiles reach, so memory stays below
            # tile + block rows; growing copies at most one block
            extra = rows - block.weights.shape[0]
            block.probs = np.pad(block.probs, [(0, 0), (0, extra), (0, 0)])
            if block.variance is not None:
                block.variance = np.pad(block.variance, [(0, 0), (0, extra), (0, 0)])
            block.valid = np.pad(block.valid, [(0, extra), (0, 0)])
            block.weights = np.pad(block.weights, [(0, extra), (0, 0)])
        return block

    def _end(self, index: int) -> int:
        """Scene row below block ``index``."""
        return min((index + 1) * self.block, self.height)

    def add(
        self,
        row: int,
        col: int,
        probs: np.ndarray,
        variance: np.ndarray | None,
        valid: np.ndarray,
        weights: np.ndarray,
    ) -> None:
        """Add one tile's prediction, weighted, clipped to the scene.

        Args:
            row: Tile's first scene row.
            col: Tile's first scene column.
            probs: (K, h, w) probabilities; overwritten (multiplied by the weights).
            variance: (K, h, w) MC variances (overwritten likewise), or None.
            valid: (h, w) pixels with data.
            weights: (h, w) blending weights.
        """
        h = min(weights.shape[0], self.height - row)
        w = min(weights.shape[1], self.width - col)
        weights = weights[:h, :w]
        probs = np.multiply(probs[:, :h, :w], weights, out=probs[:, :h, :w])
        if variance is not None:
            variance = np.multiply(variance[:, :h, :w], weights, out=variance[:, :h, :w])
        for index in range(row // self.block, (row + h - 1) // self.block + 1):
            top = index * self.block
            start, stop = max(row, top), min(row + h, self._end(index))
            block = self._block(index, stop - top)
            source = slice(start - row, stop - row)
            target = (slice(start - top, stop - top), slice(col, col + w))
            block.probs[(slice(None), *target)] += probs[:, source]
            if variance is not None and block.variance is not None:
                block.variance[(slice(None), *target)] += variance[:, source]
            block.weights[target] += weights[source]
            block.valid[target] |= valid[source, :w]

    def pop_above(self, row: int) -> Iterator[BlockRows]:
        """Remove and yield, top to bottom, the blocks that end at or above scene ``row``."""
        for index in sorted(self.blocks):
            if self._end(index) > row:
                break
            yield self.blocks.pop(index)

    def pop_all(self) -> Iterator[BlockRows]:
        """Remove and yield every block, top to bottom."""
        return self.pop_above(self.height)
