"""Loaders whose worker processes read stored windows (when no training cache serves them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader

from glacier.data.loading.resume import ResumableLoader, ShuffledOrder
from glacier.data.loading.sampling import EpochSampler, RandomWindowDataset
from glacier.data.loading.windows import WindowDataset, collate_windows


@dataclass(frozen=True)
class WindowLoaders:
    """Loaders of one batch size, worker count and memory pinning.

    Attributes:
        batch_size: Samples per batch.
        num_workers: Loader worker processes (0: the main process reads).
        pin_memory: Page-locked batches.
    """

    batch_size: int
    num_workers: int
    pin_memory: bool

    def split(self, dataset: WindowDataset, shuffle: bool) -> DataLoader[Any]:
        """A split's windows in order, or shuffled (then a last partial batch is dropped)."""
        drop_last = shuffle and len(dataset) > self.batch_size
        return DataLoader(dataset, shuffle=shuffle, **self._options(drop_last))

    def training(
        self,
        slices: WindowDataset,
        random_windows: RandomWindowDataset | None,
        distributed: bool,
    ) -> DataLoader[Any]:
        """Shuffled training slices, or random windows.

        One process: a resumable loader, so a run resumed from a checkpoint saved inside an
        epoch trains on exactly the batches the uninterrupted run would have. Several processes:
        Lightning gives the loader a distributed sampler (its own order per epoch).
        """
        if random_windows is None and distributed:
            return self.split(slices, shuffle=True)
        dataset: Any = slices if random_windows is None else random_windows
        order = (
            ShuffledOrder(len(dataset)) if random_windows is None else EpochSampler(len(dataset))
        )
        loader = DataLoader if distributed else ResumableLoader
        return loader(dataset, sampler=order, **self._options(len(dataset) > self.batch_size))

    def _options(self, drop_last: bool) -> dict[str, Any]:
        """The keyword arguments every loader gets (beside its dataset and its order)."""
        return {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "collate_fn": collate_windows,
            "persistent_workers": self.num_workers > 0,
            "drop_last": drop_last,
        }
