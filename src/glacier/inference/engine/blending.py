"""Weighted blending of overlapping tile predictions, on the model's device, row block by block.

Blocks of output rows (aligned to the GeoTIFF's 256-row blocks) are allocated when the first
tile reaches them and handed out, whole and never touched again, once tiles have moved below
them: memory is bounded by ``K × (tile + 2 × block) × width`` whatever the scene height.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class BlockRows:
    """Blending sums of ``rows`` scene rows starting at ``top`` (tensors on one device).

    Attributes:
        top: First scene row.
        probs: (K, rows, W) weighted probability sums.
        variance: (K, rows, W) weighted MC variances, or None.
        valid: (rows, W) pixels with data in at least one tile.
        weights: (rows, W) sums of blending weights.
    """

    top: int
    probs: Tensor
    variance: Tensor | None
    valid: Tensor
    weights: Tensor


class BlendStrip:
    """Accumulate weighted tile predictions in row blocks aligned to the output's blocks.

    Args:
        classes: Number of probability channels K.
        width: Scene width.
        height: Scene height.
        with_variance: Also accumulate MC-dropout variances.
        block: Rows per block (the GeoTIFF block height, so writes fill whole blocks).
        device: Where the sums live (the model's device).
    """

    def __init__(
        self,
        classes: int,
        width: int,
        height: int,
        with_variance: bool,
        block: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.classes = classes
        self.width = width
        self.height = height
        self.with_variance = with_variance
        self.block = block
        self.device = torch.device(device)
        self.blocks: dict[int, BlockRows] = {}

    @property
    def rows_held(self) -> int:
        """Scene rows currently in memory."""
        return sum(b.weights.shape[0] for b in self.blocks.values())

    def _block(self, index: int) -> BlockRows:
        """Block ``index``, allocated (zeros) on first use."""
        block = self.blocks.get(index)
        if block is None:
            top = index * self.block
            shape = (min(self.block, self.height - top), self.width)
            sums = (self.classes, *shape)
            block = BlockRows(
                top,
                torch.zeros(sums, dtype=torch.float32, device=self.device),
                torch.zeros(sums, dtype=torch.float32, device=self.device)
                if self.with_variance
                else None,
                torch.zeros(shape, dtype=torch.bool, device=self.device),
                torch.zeros(shape, dtype=torch.float32, device=self.device),
            )
            self.blocks[index] = block
        return block

    def add(
        self,
        row: int,
        col: int,
        probs: Tensor,
        variance: Tensor | None,
        valid: Tensor,
        weights: Tensor,
    ) -> None:
        """Add one tile's prediction, weighted, clipped to the scene.

        Args:
            row: Tile's first scene row.
            col: Tile's first scene column.
            probs: (K, h, w) probabilities (on the strip's device).
            variance: (K, h, w) MC variances, or None.
            valid: (h, w) pixels with data.
            weights: (h, w) blending weights.
        """
        h = min(weights.shape[0], self.height - row)
        w = min(weights.shape[1], self.width - col)
        weights = weights[:h, :w]
        weighted = probs[:, :h, :w] * weights
        spread = None if variance is None else variance[:, :h, :w] * weights
        for index in range(row // self.block, (row + h - 1) // self.block + 1):
            block = self._block(index)
            start = max(row, block.top)
            stop = min(row + h, block.top + block.weights.shape[0])
            source = slice(start - row, stop - row)
            target = (slice(start - block.top, stop - block.top), slice(col, col + w))
            block.probs[(slice(None), *target)] += weighted[:, source]
            if spread is not None and block.variance is not None:
                block.variance[(slice(None), *target)] += spread[:, source]
            block.weights[target] += weights[source]
            block.valid[target] |= valid[source, :w]

    def pop_above(self, row: int) -> Iterator[BlockRows]:
        """Remove and yield, top to bottom, the blocks that end at or above scene ``row``."""
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if block.top + block.weights.shape[0] > row:
                break
            yield self.blocks.pop(index)

    def pop_all(self) -> Iterator[BlockRows]:
        """Remove and yield every block, top to bottom."""
        return self.pop_above(self.height)
