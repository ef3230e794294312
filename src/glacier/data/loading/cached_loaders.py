"""Loaders over a training cache: the same samplers as the worker loaders, batches of keys only.

Sampling stays identical by construction: a cached loader is a DataLoader (no workers) with the
same sampler and batch size as the worker loader it replaces (``shuffle=True`` for slices, the
:class:`~glacier.data.loading.sampling.EpochSampler` for random windows), so it draws the same
indices from the same random state; its dataset turns them into window keys instead of reading
pixels (random windows through the same ``(seed, epoch, index)`` positions), and the DataModule
gathers the pixels from the cache (:meth:`WindowCache.gather`) before the batch reaches the
device-side assembly and augmentation. A DDP shard's samplers are ``DistributedSampler``s of
the rank's own windows, which Lightning leaves as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, Sampler

from glacier.data.loading.cache_budget import (
    NONE_LEVEL,
    CacheChoice,
    CacheNeeds,
    CacheRequest,
    MemoryProbes,
    choose_cache,
)
from glacier.data.loading.cache_fill import ChannelConversion, InexactChannelsError, fill_cache
from glacier.data.loading.cache_plan import Position, TilePlan, plan_every, plan_shard
from glacier.data.loading.sampling import EpochSampler, Key, RandomWindowDataset
from glacier.data.loading.window_cache import (
    CACHE_KEYS,
    CacheLayout,
    CacheTile,
    WindowCache,
    window_keys,
)
from glacier.data.store import PixelStore
from glacier.errors import GlacierInputError

log = logging.getLogger(__name__)
KeyBatch = dict[str, Tensor]


class CachedSlices(Dataset[KeyBatch]):
    """Fixed windows of a cache; a batch is their keys.

    Args:
        tiles: The tile of each window (windows are whole tiles).
        size: Window edge.
    """

    def __init__(self, tiles: Sequence[int], size: int) -> None:
        self.keys = window_keys([(tile, 0, 0) for tile in tiles], size)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> KeyBatch:
        return {CACHE_KEYS: self.keys[index : index + 1]}

    def __getitems__(self, indices: list[int]) -> KeyBatch:
        """The keys of a batch of windows."""
        return {CACHE_KEYS: self.keys[torch.as_tensor(indices, dtype=torch.int64)]}


class CachedRandomWindows(Dataset[KeyBatch]):
    """Random windows (the draws of a :class:`RandomWindowDataset`) as keys into scene regions.

    Args:
        windows: The draws.
        scene_tiles: Tile number of each scene's region.
        tiles: Every tile of the cache.
        offset: Added to each sample index (a DDP shard's own draws).
    """

    def __init__(
        self,
        windows: RandomWindowDataset,
        scene_tiles: Mapping[str, int],
        tiles: Sequence[CacheTile],
        offset: int = 0,
    ) -> None:
        self.windows, self.scene_tiles, self.tiles = windows, dict(scene_tiles), list(tiles)
        self.offset = offset

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key: Key | int) -> KeyBatch:
        return self.__getitems__([key])

    def __getitems__(self, keys: list[Key | int]) -> KeyBatch:
        """Draw each key's window (as the worker loader does) and name it in its region."""
        rows = []
        for key in keys:
            epoch, index = key if isinstance(key, tuple) else (0, int(key))
            scene, row, col = self.windows.position(int(epoch), int(index) + self.offset)
            number = self.scene_tiles[scene]
            tile = self.tiles[number]
            rows.append((number, row - tile.row, col - tile.col))
        return {CACHE_KEYS: window_keys(rows, self.windows.size)}


class ShardSampler(DistributedSampler[Any]):
    """A rank's own windows, shuffled by ``(seed, epoch)`` within the shard (or in order)."""

    def __init__(self, dataset: Dataset[Any], shuffle: bool, seed: int) -> None:
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)


class ShardEpochSampler(DistributedSampler[Any]):
    """:class:`EpochSampler`'s ``(epoch, index)`` keys for a rank's own random windows."""

    def __init__(self, dataset: Dataset[Any]) -> None:
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=False)

    def __iter__(self) -> Iterator[Key]:
        return ((self.epoch, index) for index in range(self.num_samples))


@dataclass
class TrainingCache:
    """A loaded cache with its key datasets and samplers.

    Attributes:
        cache: The resident tensors.
        choice: Where it is and why.
        train: Training keys.
        val: Validation keys.
        train_sampler: The training sampler (None: ``shuffle=True``, as the worker loader).
        val_sampler: The validation sampler (None: in order).
    """

    cache: WindowCache
    choice: CacheChoice
    train: Dataset[KeyBatch]
    val: Dataset[KeyBatch]
    train_sampler: Sampler[Any] | None
    val_sampler: Sampler[Any] | None


@dataclass(frozen=True)
class CacheSource:
    """What a cache is loaded from.

    Attributes:
        store: The pixel store.
        conversion: Stored channels → cached channels.
        label_channels: Label channels of the store.
        train: Fixed training windows.
        val: Validation windows.
        random: Random-window draws (None for fixed slices).
        slice_size: Edge of the fixed windows.
        seed: Seed of a shard's shuffles.
    """

    store: PixelStore
    conversion: ChannelConversion
    label_channels: int
    train: Sequence[Position]
    val: Sequence[Position]
    random: RandomWindowDataset | None
    slice_size: int
    seed: int


def agreed_level(level: int, device: torch.device) -> int:
    """The highest placement level of every DDP rank (this rank's without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return level
    where = device if dist.get_backend() == "nccl" else torch.device("cpu")
    value = torch.tensor([level], device=where)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return int(value.item())


def _choose(request: CacheRequest, needs: CacheNeeds, probes: MemoryProbes) -> CacheChoice:
    """This rank's choice, made the same on every rank (the most conservative one wins)."""
    choice = choose_cache(request, needs, probes)
    for _ in range(NONE_LEVEL + 1):
        level = agreed_level(choice.level, request.device)
        if level == choice.level:
            return choice
        choice = (
            choose_cache(request, needs, probes, min_level=level)
            if level < NONE_LEVEL
            else CacheChoice("none", reason="another rank has no room for a cache: workers")
        )
    return choice


def build_training_cache(
    source: CacheSource,
    request: CacheRequest,
    probes: MemoryProbes,
    world: int = 1,
    rank: int = 0,
    progress: bool = True,
) -> tuple[CacheChoice, TrainingCache | None]:
    """Choose where the windows go, load them once, and build the key loaders' parts.

    Args:
        source: The store and the windows.
        request: ``datamodule.cache`` and its settings.
        probes: How free memory is measured.
        world: DDP processes.
        rank: This process's rank.
        progress: Show a progress bar while loading.

    Returns:
        The choice, and the loaded cache (None when the windows stay with loader workers).
    """
    conversion = source.conversion
    every = plan_every(source.train, source.val, source.random)
    shard = plan_shard(source.train, source.val, source.random, world, rank)
    while True:
        layout = CacheLayout((), conversion.target, source.label_channels)
        needs = CacheNeeds(
            every.pixels * layout.bytes_per_pixel,
            None if shard is None else shard.pixels * layout.bytes_per_pixel,
        )
        choice = _choose(request, needs, probes)
        log.info(choice.reason)
        if choice.placement == "none":
            return choice, None
        plan = shard if choice.sharded and shard is not None else every
        try:
            cache = _load(source, conversion, plan, choice, request.device, progress)
        except InexactChannelsError as error:
            log.info("channels %s do not convert exactly: cached as float32", error)
            conversion = conversion.widen(error.channels)
            continue
        return choice, _assemble(cache, choice, plan, source)


def _load(
    source: CacheSource,
    conversion: ChannelConversion,
    plan: TilePlan,
    choice: CacheChoice,
    device: torch.device,
    progress: bool,
) -> WindowCache:
    layout = CacheLayout(tuple(plan.tiles), conversion.target, source.label_channels)
    place = device if choice.placement == "device" else torch.device("cpu")
    pinned = choice.placement == "host" and device.type == "cuda"
    try:
        cache = WindowCache(layout, place, pinned=pinned)
    except RuntimeError as error:
        if not pinned or isinstance(error, torch.OutOfMemoryError):
            raise _too_big(layout, place, error) from error
        log.warning(
            "page-locking %.2f GB failed (%s): plain host memory", layout.nbytes / 1e9, error
        )
        cache = WindowCache(layout, place, pinned=False)
    fill_cache(cache, source.store, conversion, progress)
    return cache


def _too_big(layout: CacheLayout, place: torch.device, error: Exception) -> GlacierInputError:
    return GlacierInputError(
        f"datamodule.cache: {layout.nbytes / 1e9:.2f} GB of windows do not fit on {place} "
        f"({error}); lower datamodule.cache_device_share, or use cache=host or none"
    )


def _assemble(
    cache: WindowCache, choice: CacheChoice, plan: TilePlan, source: CacheSource
) -> TrainingCache:
    val = CachedSlices(plan.val, source.slice_size)
    train: Dataset[KeyBatch]
    if plan.random is None:
        train = CachedSlices(plan.train, source.slice_size)
    else:
        train = CachedRandomWindows(plan.random, plan.scene_tiles, plan.tiles, plan.offset)
    train_sampler: Sampler[Any] | None = None
    if plan.sharded:
        train_sampler = (
            ShardSampler(train, shuffle=True, seed=source.seed)
            if plan.random is None
            else ShardEpochSampler(train)
        )
    elif plan.random is not None:
        train_sampler = EpochSampler(len(train))
    val_sampler = ShardSampler(val, shuffle=False, seed=source.seed) if plan.sharded else None
    return TrainingCache(cache, choice, train, val, train_sampler, val_sampler)
