"""The DataModule's side of the training cache: its settings, the loaded cache, its loaders.

:class:`CacheFeed` holds ``datamodule.cache`` and its shares, loads the cache once per fit
(:func:`~glacier.data.loading.cached_loaders.build_training_cache`), makes the key loaders and
gathers their batches where the cache is: on the training device, or into pinned host memory
before Lightning moves the batch (``on_before_batch_transfer``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from glacier.data.contract import DatasetContract, DatasetInfo
from glacier.data.factory import cache_channels
from glacier.data.loading.batch import BatchLayout
from glacier.data.loading.cache_budget import CacheChoice, CacheRequest, MemoryProbes
from glacier.data.loading.cache_fill import ChannelConversion
from glacier.data.loading.cache_plan import Position
from glacier.data.loading.cached_loaders import CacheSource, TrainingCache, build_training_cache
from glacier.data.loading.resume import ResumableLoader, ShuffledOrder
from glacier.data.loading.sampling import RandomWindowDataset
from glacier.data.loading.window_cache import CACHE_KEYS
from glacier.data.loading.windows import WindowDataset, collate_windows
from glacier.data.loading.workers import node_ranks
from glacier.errors import GlacierInputError


def positions(windows: WindowDataset) -> list[Position]:
    """``(scene, row, col, size)`` of each window of a dataset, as plain Python values."""
    return [(str(s), int(r), int(c), int(z)) for s, r, c, z in windows.windows]


def cache_source(
    contract: DatasetContract,
    info: DatasetInfo,
    train: WindowDataset,
    val: WindowDataset,
    random: RandomWindowDataset | None,
    seed: int,
) -> CacheSource:
    """What a DataModule's cache loads: its store, windows and the cached channels."""
    cached = cache_channels(contract, info)
    return CacheSource(
        store=train.store,
        conversion=ChannelConversion.of(contract.channels, cached, contract.nodata.all_zero),
        label_channels=len(contract.classes),
        train=positions(train),
        val=positions(val),
        random=random,
        slice_size=contract.slice_size,
        seed=seed,
    )


class CacheFeed:
    """Training and validation windows held while fitting, and the batches gathered from them.

    Args:
        mode: ``datamodule.cache``: ``auto``, ``device``, ``host`` or ``none``.
        device_share: Share of the device's free memory ``auto`` may fill.
        host_share: Share of the available RAM ``auto`` may fill.
        progress: Show a progress bar while the cache loads.
        probes: How free memory is measured.
    """

    def __init__(
        self,
        mode: str = "auto",
        device_share: float = 0.5,
        host_share: float = 0.5,
        progress: bool = True,
        probes: MemoryProbes | None = None,
    ) -> None:
        CacheRequest(mode, torch.device("cpu"), device_share, host_share)  # checks the settings
        self.mode, self.shares, self.progress = mode, (device_share, host_share), progress
        self.probes = probes or MemoryProbes()
        self.release()

    def release(self) -> None:
        """Drop the loaded cache (it is loaded again when asked for)."""
        self.choice: CacheChoice | None = None
        self.loaded: TrainingCache | None = None
        self.layout: BatchLayout | None = None

    @property
    def active(self) -> bool:
        """Whether the loaders should ask for the cache (``mode`` is not ``none``)."""
        return self.mode != "none"

    def load(
        self,
        source: CacheSource,
        contract: DatasetContract,
        selection: tuple[Sequence[str], Sequence[str]],
        device: torch.device,
        world: tuple[int, int] = (1, 0),
    ) -> TrainingCache | None:
        """Load the cache once (see :func:`build_training_cache`).

        Args:
            source: The store and the windows.
            contract: The dataset contract.
            selection: The selected channel and class names.
            device: The training device.
            world: DDP processes and this process's rank.

        Returns:
            The cache, or None when loader workers read the windows.
        """
        if self.choice is not None:
            return self.loaded
        request = CacheRequest(self.mode, device, *self.shares, node_ranks())
        self.choice, self.loaded = build_training_cache(
            source, request, self.probes, *world, progress=self.progress
        )
        if self.loaded is not None:
            groups = self.loaded.cache.layout.groups
            self.layout = BatchLayout.grouped_as(contract, groups, *selection)
        return self.loaded

    @staticmethod
    def loader(
        dataset: Dataset[Any],
        sampler: Sampler[Any] | None,
        batch_size: int,
        shuffle: bool,
        resumable: bool = False,
    ) -> DataLoader[Any]:
        """A cached loader: the worker loader's sampler and batches, keys only, no workers.

        Args:
            dataset: Key dataset.
            sampler: Its sampler (None: ``shuffle``, as the worker loader of slices).
            batch_size: Samples per batch.
            shuffle: Training batches (shuffled unless a sampler decides; full batches only).
            resumable: One process's training loader: a :class:`ResumableLoader` whose order
                (:class:`ShuffledOrder`, drawn as ``shuffle=True`` draws it, or the random
                windows' epoch sampler) replays an interrupted epoch.
        """
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        size = len(dataset)  # type: ignore[arg-type]
        if resumable and shuffle and sampler is None:
            sampler = ShuffledOrder(size)
        replayable = resumable and hasattr(sampler, "replay")
        return (ResumableLoader if replayable else DataLoader)(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            collate_fn=collate_windows,
            drop_last=shuffle and size > batch_size,
        )

    def gather(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """A raw batch from a batch of keys, on the keys' device (other batches as they are)."""
        if CACHE_KEYS not in batch:
            return batch
        if self.loaded is None:
            raise GlacierInputError("a batch of cache keys, but no training cache is loaded")
        keys = batch[CACHE_KEYS]
        gathered = self.loaded.cache.gather(keys)
        return {key: value.to(keys.device, non_blocking=True) for key, value in gathered.items()}

    def before_transfer(self, batch: Any) -> Any:
        """Gather a batch of keys where the cache is (the device, or pinned host memory)."""
        if isinstance(batch, dict) and CACHE_KEYS in batch and self.loaded is not None:
            return self.loaded.cache.gather(batch[CACHE_KEYS])
        return batch

    def layout_for(self, batch: dict[str, Tensor], stored: BatchLayout) -> BatchLayout:
        """The cache's layout for a batch gathered from it, else the store's."""
        if self.layout is not None and set(batch) == self.layout.keys:
            return self.layout
        return stored
