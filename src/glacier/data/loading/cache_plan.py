"""Which tiles a training cache holds: every window, or one DDP rank's fixed shard of them.

Fixed slices: each distinct training and validation window is one tile. Random windows: each
scene's region that its windows may cover is one tile (:meth:`RandomWindowDataset.regions`),
plus the validation windows. A shard takes every ``world``-th window (padded by repeating the
first ones, as ``DistributedSampler`` pads, so every rank runs the same number of batches), and
for random windows a set of whole scenes, balanced by pixels, drawing ``ceil(length / world)``
windows per epoch from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from glacier.data.loading.sampling import RandomWindowDataset
from glacier.data.loading.window_cache import CacheTile

Position = tuple[str, int, int, int]  # scene, row, col, size


@dataclass
class TilePlan:
    """The tiles of one cache and which tile each window uses.

    Attributes:
        tiles: Distinct tiles, in cache order.
        train: Tile of each fixed training window (empty with random windows).
        val: Tile of each validation window.
        random: The random-window draws (restricted to the shard's scenes), if any.
        scene_tiles: Tile number of each scene region (random windows).
        offset: Index offset of this rank's draws (a shard's draws differ from other ranks').
        sharded: The plan holds one rank's shard.
    """

    tiles: list[CacheTile] = field(default_factory=list)
    train: list[int] = field(default_factory=list)
    val: list[int] = field(default_factory=list)
    random: RandomWindowDataset | None = None
    scene_tiles: dict[str, int] = field(default_factory=dict)
    offset: int = 0
    sharded: bool = False
    _lookup: dict[CacheTile, int] = field(default_factory=dict, repr=False)

    def tile(self, tile: CacheTile) -> int:
        """The number of a tile (added once)."""
        if tile not in self._lookup:
            self._lookup[tile] = len(self.tiles)
            self.tiles.append(tile)
        return self._lookup[tile]

    def windows(self, positions: Sequence[Position]) -> list[int]:
        """Tiles of fixed windows."""
        return [self.tile(CacheTile(s, r, c, z, z)) for s, r, c, z in positions]

    def add_regions(self, random: RandomWindowDataset) -> None:
        """The scene regions of random windows."""
        self.random = random
        for scene, (row, col, height, width) in random.regions().items():
            self.scene_tiles[scene] = self.tile(CacheTile(scene, row, col, height, width))

    @property
    def pixels(self) -> int:
        """Pixels of every tile."""
        return sum(tile.pixels for tile in self.tiles)


def plan_every(
    train: Sequence[Position], val: Sequence[Position], random: RandomWindowDataset | None
) -> TilePlan:
    """Every training and validation window (fixed slices, or scene regions)."""
    plan = TilePlan()
    if random is None:
        plan.train = plan.windows(train)
    else:
        plan.add_regions(random)
    plan.val = plan.windows(val)
    return plan


def shard_of(items: Sequence[Position], world: int, rank: int) -> list[Position]:
    """Every ``world``-th item from ``rank``, padded so that every rank gets as many."""
    if not items:
        return []
    total = math.ceil(len(items) / world) * world
    return [items[i % len(items)] for i in range(rank, total, world)]


def scene_shards(random: RandomWindowDataset, world: int) -> list[set[str]] | None:
    """Whole scenes per rank, balanced by region pixels (None with fewer scenes than ranks)."""
    regions = random.regions()
    if len(regions) < world:
        return None
    loads, shards = [0] * world, [set[str]() for _ in range(world)]
    for scene, (_, _, height, width) in sorted(
        regions.items(), key=lambda item: (-item[1][2] * item[1][3], item[0])
    ):
        rank = loads.index(min(loads))
        shards[rank].add(scene)
        loads[rank] += height * width
    return shards


def plan_shard(
    train: Sequence[Position],
    val: Sequence[Position],
    random: RandomWindowDataset | None,
    world: int,
    rank: int,
) -> TilePlan | None:
    """Rank ``rank``'s fixed shard (None when it cannot have one: one process, few scenes)."""
    if world < 2:
        return None
    plan = TilePlan(sharded=True)
    if random is None:
        plan.train = plan.windows(shard_of(train, world, rank))
    else:
        shards = scene_shards(random, world)
        if shards is None:
            return None
        length = math.ceil(random.length / world)
        plan.add_regions(random.subset(shards[rank], length))
        plan.offset = rank * length
    plan.val = plan.windows(shard_of(val, world, rank))
    return plan
