"""Weighted blending of overlapping tile predictions, on the model's device, row block by block.

Blocks of output rows (aligned to the GeoTIFF's 256-row blocks) are allocated when the first
tile reaches them and handed out, whole and never touched again, once tiles have moved below
them: memory is bounded by ``K × (tile + 2 × block) × width`` whatever the scene height.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter

import torch
from torch import Tensor

from glacier.models import PassStats, StatsNeeds


@dataclass
class BlockRows:
    """Blending sums of ``rows`` scene rows starting at ``top`` (tensors on one device).

    Attributes:
        top: First scene row.
        stats: Weighted sums of the tiles' pass statistics: probabilities (K, rows, W) and what
            the uncertainty measures need (a blend is a mixture of the tiles' passes).
        valid: (rows, W) pixels with data in at least one tile.
        weights: (rows, W) sums of blending weights.
    """

    top: int
    stats: PassStats
    valid: Tensor
    weights: Tensor

    @property
    def probs(self) -> Tensor:
        """(K, rows, W) weighted probability sums."""
        return self.stats.probs


class BlendStrip:
    """Accumulate weighted tile predictions in row blocks aligned to the output's blocks.

    Args:
        classes: Number of probability channels K.
        width: Scene width.
        height: Scene height.
        needs: The pass statistics blended besides the probabilities.
        block: Rows per block (the GeoTIFF block height, so writes fill whole blocks).
        device: Where the sums live (the model's device).
    """

    def __init__(
        self,
        classes: int,
        width: int,
        height: int,
        needs: StatsNeeds,
        block: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.classes = classes
        self.width = width
        self.height = height
        self.needs = needs
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

            def zeros(channels: int, wanted: bool = True) -> Tensor | None:
                size = (channels, *shape)
                return (
                    torch.zeros(size, dtype=torch.float32, device=self.device) if wanted else None
                )

            probs = zeros(self.classes)
            assert probs is not None
            stats = PassStats(
                probs,
                zeros(self.classes, self.needs.squares),
                zeros(1, self.needs.entropy),
                zeros(self.classes, self.needs.uncalibrated),
                zeros(self.classes * self.needs.per_pass, self.needs.per_pass > 0),
            )
            block = BlockRows(
                top,
                stats,
                torch.zeros(shape, dtype=torch.bool, device=self.device),
                torch.zeros(shape, dtype=torch.float32, device=self.device),
            )
            self.blocks[index] = block
        return block

    def add(self, row: int, col: int, stats: PassStats, valid: Tensor, weights: Tensor) -> None:
        """Add one tile's prediction, weighted, clipped to the scene.

        Args:
            row: Tile's first scene row.
            col: Tile's first scene column.
            stats: The tile's pass statistics, (K, h, w) probabilities first (on the strip's
                device); those the strip does not blend are ignored.
            valid: (h, w) pixels with data.
            weights: (h, w) blending weights.
        """
        h = min(weights.shape[0], self.height - row)
        w = min(weights.shape[1], self.width - col)
        weights = weights[:h, :w]
        weighted = stats.map(lambda t: t[:, :h, :w] * weights)
        for index in range(row // self.block, (row + h - 1) // self.block + 1):
            block = self._block(index)
            start = max(row, block.top)
            stop = min(row + h, block.top + block.weights.shape[0])
            source = slice(start - row, stop - row)
            target = (slice(start - block.top, stop - block.top), slice(col, col + w))
            block.stats.add_(
                weighted.map(itemgetter((slice(None), source))), (slice(None), *target)
            )
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
