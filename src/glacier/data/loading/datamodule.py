"""LightningDataModule over a processed dataset: the contract, the index and the stored scenes.

Training and validation windows are loaded once into a cache on the training device or in
(pinned) host memory where they fit (``cache``, see :mod:`glacier.data.loading.cache_budget`),
and batches are gathered there by index; otherwise loader workers read bytes. On the device
(``on_after_batch_transfer``) raw batches become model inputs
(:class:`~glacier.data.loading.batch.BatchLayout`) and training batches are augmented
(:class:`~glacier.data.loading.augment.Augment`). Normalization is the model's own first module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from glacier.data.contract import DatasetContract, load_contract
from glacier.data.loading.augment import Augment
from glacier.data.loading.batch import BatchLayout
from glacier.data.loading.cache_budget import CacheChoice, MemoryProbes
from glacier.data.loading.cache_feed import CacheFeed, cache_source
from glacier.data.loading.cached_loaders import TrainingCache
from glacier.data.loading.sampling import RandomWindowDataset
from glacier.data.loading.split_datasets import open_indexed_store, split_datasets
from glacier.data.loading.window_loaders import WindowLoaders
from glacier.data.loading.windows import WindowDataset
from glacier.data.loading.workers import auto_workers
from glacier.data.preprocess import DatasetPreprocessor
from glacier.errors import GlacierInputError

log = logging.getLogger(__name__)
SAMPLERS = ("slices", "random_windows")


class GlacierDataModule(pl.LightningDataModule):
    """Serve windows of a processed dataset with the chosen channels and classes.

    ``prepare_data`` runs (or reuses) the preprocessing pipeline, so ``glacier train`` works on
    a fresh clone. Channels and classes are picked by name at load time: a sweep over them never
    re-preprocesses.

    Args:
        processed_dir: Folder written by preprocessing.
        classes: Class names to learn (None = every class of the dataset).
        channels: Channel set name or channel names (None = every stored channel).
        batch_size: Samples per batch.
        num_workers: Loader worker processes, or ``"auto"`` (see :func:`auto_workers`).
        pin_memory: Page-locked batches, or ``"auto"`` (when CUDA is available).
        augment: Training augmentation (None = none).
        preprocessor: Pipeline run by ``prepare_data`` when the dataset is missing or stale.
        sampler: Training samples: ``slices`` (the index's training slices, shuffled) or
            ``random_windows`` (windows drawn anywhere inside the training area, see
            :mod:`glacier.data.loading.sampling`).
        windows_per_epoch: Random windows per epoch (default: the number of training slices).
        window_size: Random window edge in pixels (default: the dataset's slice size).
        window_margin: Pixels kept between random windows and every dev/test window.
        seed: Seed of the random windows.
        cache: Where training and validation windows are held while fitting: ``auto``,
            ``device``, ``host`` or ``none`` (loader workers); see
            :mod:`glacier.data.loading.cache_budget`.
        cache_device_share: Share of the device's free memory ``cache=auto`` may fill.
        cache_host_share: Share of the available RAM ``cache=auto`` may fill.
        progress: Show a progress bar while the cache loads.
        memory_probes: How free memory is measured (tests give small budgets).
        fold: The cross-validation fold to train (``split.fold``; its slices are dev, slices
            overlapping them are left out: :func:`~glacier.data.preprocess.resolve_fold`);
            None for a dataset without folds, or to train on every non-test slice.
    """

    def __init__(
        self,
        processed_dir: str | Path,
        classes: Sequence[str] | None = None,
        channels: str | Sequence[str] | None = None,
        batch_size: int = 8,
        num_workers: int | str = "auto",
        pin_memory: bool | str = "auto",
        augment: Augment | None = None,
        preprocessor: DatasetPreprocessor | None = None,
        sampler: str = "slices",
        windows_per_epoch: int | None = None,
        window_size: int | None = None,
        window_margin: int = 16,
        seed: int = 0,
        cache: str = "auto",
        cache_device_share: float = 0.5,
        cache_host_share: float = 0.5,
        progress: bool = True,
        memory_probes: MemoryProbes | None = None,
        fold: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise GlacierInputError(f"datamodule.batch_size={batch_size}: must be >= 1")
        if sampler not in SAMPLERS:
            raise GlacierInputError(f"datamodule.sampler={sampler!r}: one of {SAMPLERS}")
        if num_workers != "auto" and (not isinstance(num_workers, int) or num_workers < 0):
            raise GlacierInputError(f"datamodule.num_workers={num_workers!r}: 'auto' or >= 0")
        self.processed_dir = Path(processed_dir)
        self.requested_classes = classes
        self.requested_channels = channels
        self.batch_size = batch_size
        self.num_workers = auto_workers() if num_workers == "auto" else int(num_workers)
        self.pin_memory = torch.cuda.is_available() if pin_memory == "auto" else bool(pin_memory)
        self.augment = augment
        self.preprocessor = preprocessor
        self.sampler = sampler
        self.windows_per_epoch = windows_per_epoch
        self.window_size = window_size
        self.window_margin = window_margin
        self.seed = seed
        self.feed = CacheFeed(cache, cache_device_share, cache_host_share, progress, memory_probes)
        self.fold = fold
        self.datasets: dict[str, WindowDataset] = {}
        self.random_windows: RandomWindowDataset | None = None
        self._contract: DatasetContract | None = None

    def prepare_data(self) -> None:
        """Run preprocessing unless its outputs are complete and up to date."""
        if self.preprocessor is None:
            return
        if self.preprocessor.is_complete():
            log.info("Processed dataset in %s is up to date", self.processed_dir)
            return
        self.preprocessor.run()

    @property
    def contract(self) -> DatasetContract:
        """The dataset contract (read from ``dataset.json`` on first use)."""
        if self._contract is None:
            self.load_info()
        assert self._contract is not None
        return self._contract

    def load_info(self) -> DatasetContract:
        """Read the contract and resolve the channel/class selection.

        Returns:
            The dataset contract.
        """
        contract, self.info = load_contract(self.processed_dir)
        self._contract = contract
        self.channel_names = contract.select_channels(self.requested_channels)
        self.class_names = contract.select_classes(self.requested_classes)
        self.layout = BatchLayout.of(contract, self.channel_names, self.class_names)
        assert contract.stats is not None
        means, stds = contract.stats.of(self.channel_names)
        self._mean, self._std = torch.tensor(means), torch.tensor(stds)
        return contract

    @property
    def num_classes(self) -> int:
        """Model outputs: background plus the selected classes."""
        return 1 + len(self.class_names)

    def setup(self, stage: str | None = None) -> None:
        """Create the split datasets from the index (a cache is loaded on first use).

        Args:
            stage: Lightning stage (all splits are created regardless).
        """
        contract = self.contract
        store, index = open_indexed_store(self.processed_dir, contract, self.info, self.fold)
        self.datasets.update(split_datasets(store, index, self.processed_dir))
        if self.sampler == "random_windows":
            self.random_windows = RandomWindowDataset(
                store,
                index,
                size=self.window_size or contract.slice_size,
                length=self.windows_per_epoch or len(self.datasets["train"]),
                margin=self.window_margin,
                seed=self.seed,
                batched=True,
            )
        self.teardown("fit")  # a new index: a cache is loaded again when asked for

    def teardown(self, stage: str | None = None) -> None:
        """Release the training cache after fitting (testing reads the test split as before)."""
        if stage in ("fit", None):
            self.feed.release()

    @property
    def cache_choice(self) -> CacheChoice | None:
        """Where the training cache went and why (None until loaded)."""
        return self.feed.choice

    @property
    def training_cache(self) -> TrainingCache | None:
        """The loaded training cache (None with loader workers)."""
        return self.feed.loaded

    @property
    def val_split(self) -> str:
        """``dev``, or ``train`` when dev is empty."""
        return "dev" if len(self.datasets["dev"]) else "train"

    def build_cache(self, device: torch.device | None = None) -> TrainingCache | None:
        """Load the training and validation windows into the cache, once (if ``cache`` allows).

        Args:
            device: The training device (default: the trainer's, else the CPU).

        Returns:
            The cache, or None when loader workers read the windows.
        """
        trainer = self.trainer
        if device is None:
            device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        train, val = self.datasets["train"], self.datasets[self.val_split]
        source = cache_source(self.contract, self.info, train, val, self.random_windows, self.seed)
        world = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        selection = (self.channel_names, self.class_names)
        return self.feed.load(source, self.contract, selection, device, world)

    @property
    def loaders(self) -> WindowLoaders:
        """Loaders of the current batch size, workers and pinning (read when a loader is made)."""
        return WindowLoaders(self.batch_size, self.num_workers, self.pin_memory)

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        return self.loaders.split(self.datasets[split], shuffle)

    def _cached(self) -> TrainingCache | None:
        return self.build_cache() if self.feed.active else None

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training slices, or random windows (augmented on the device).

        From the training cache when there is one (keys only, gathered on the device; with
        several processes its shard sampler decides), else from the stored windows (resumable
        inside an epoch in one process: :meth:`WindowLoaders.training`).
        """
        distributed = self.trainer is not None and self.trainer.world_size > 1
        cached = self._cached()
        if cached is not None:
            return CacheFeed.loader(
                cached.train, cached.train_sampler, self.batch_size, True, resumable=not distributed
            )
        return self.loaders.training(self.datasets["train"], self.random_windows, distributed)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data module: the augmentation's random state."""
        return {} if self.augment is None else {"augment": self.augment.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a resumed run augments as the uninterrupted one)."""
        if self.augment is not None and "augment" in state_dict:
            self.augment.load_state_dict(state_dict["augment"])

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation windows (``dev``; ``train`` with a warning when dev is empty)."""
        if self.val_split == "train":
            log.warning(
                "the dev split of %s is empty: validating on the training slices (val metrics "
                "are optimistic); give split/ a dev share or dev region",
                self.processed_dir,
            )
        cached = self._cached()
        if cached is not None:
            return CacheFeed.loader(cached.val, cached.val_sampler, self.batch_size, False)
        return self._loader(self.val_split, shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test windows."""
        return self._loader("test", shuffle=False)

    def prepare_batch(self, batch: dict[str, Tensor], train: bool) -> dict[str, Tensor]:
        """A raw batch (on its device) as ``{"image", "mask"}`` model inputs (augmented if train).

        Args:
            batch: Raw windows as the loaders yield them (or cache keys, gathered first).
            train: Apply the training augmentation.

        Returns:
            ``image`` (B, C, H, W) float32 raw values (NaN = nodata, channels-last memory) and
            ``mask`` (B, H, W) int64 targets (255 = nodata).
        """
        batch = self.feed.gather(batch)
        image, target = self.feed.layout_for(batch, self.layout).assemble(batch)
        if train and self.augment is not None:
            mean, std = self._mean.to(image.device), self._std.to(image.device)
            image, target = self.augment(image, target, mean, std)
        return {"image": image, "mask": target}

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Gather cached batches where the cache is (the device, or pinned host memory)."""
        return self.feed.before_transfer(batch)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Turn raw batches into model inputs on the device; augment while training."""
        if "image" in batch:  # already prepared
            return batch
        training = self.trainer is not None and self.trainer.training
        return self.prepare_batch(batch, train=training)
