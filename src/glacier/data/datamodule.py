"""LightningDataModule over a processed dataset (``train/ dev/ test/`` + ``stats.json``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from glacier.data.dataset import SliceDataset, select_channels, select_classes
from glacier.data.pipeline import Preprocessor
from glacier.errors import GlacierInputError

log = logging.getLogger(__name__)


class GlacierDataModule(pl.LightningDataModule):
    """Serve normalized slices with the chosen channels and classes.

    ``prepare_data`` runs (or reuses) the preprocessing pipeline, so ``python train.py`` works
    on a fresh clone. Channels and classes are picked by name at load time: a sweep over them
    never re-preprocesses.

    Args:
        processed_dir: Folder written by preprocessing.
        classes: Class names to learn (None = every class of the dataset).
        channels: Channel set name or band names (None = every stored channel).
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        pin_memory: Pin batches in page-locked memory (GPU training).
        augment: Random flips/rotations for training batches.
        preprocessor: Pipeline run by ``prepare_data`` when the dataset is missing or stale.
    """

    def __init__(
        self,
        processed_dir: str | Path,
        classes: Sequence[str] | None = None,
        channels: str | Sequence[str] | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        augment: bool = True,
        preprocessor: Preprocessor | None = None,
    ) -> None:
        super().__init__()
        self.processed_dir = Path(processed_dir)
        self.requested_classes = classes
        self.requested_channels = channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.augment = augment
        self.preprocessor = preprocessor
        self.info: dict[str, Any] = {}
        self.datasets: dict[str, SliceDataset] = {}

    def prepare_data(self) -> None:
        """Run preprocessing unless its outputs are complete and up to date."""
        if self.preprocessor is None:
            return
        if self.preprocessor.is_complete():
            log.info("Processed dataset in %s is up to date", self.processed_dir)
            return
        self.preprocessor.run()

    def load_info(self) -> dict[str, Any]:
        """Read ``dataset.json`` and ``stats.json`` and resolve the channel/class selection.

        Returns:
            The dataset description.

        Raises:
            GlacierInputError: If the dataset is missing or the selection is unknown.
        """
        info_path = self.processed_dir / "dataset.json"
        if not info_path.is_file():
            raise GlacierInputError(
                f"no processed dataset at {self.processed_dir} (dataset.json missing); "
                "run `python preprocess.py` with the same data config first"
            )
        self.info = json.loads(info_path.read_text())
        stats = json.loads((self.processed_dir / "stats.json").read_text())
        stored_channels, stored_classes = self.info["channels"], self.info["classes"]
        self.channel_names = select_channels(
            self.requested_channels, stored_channels, self.info.get("channel_sets", {})
        )
        self.class_names = select_classes(self.requested_classes, stored_classes)
        self.channel_indices = [stored_channels.index(c) for c in self.channel_names]
        self.class_indices = [stored_classes.index(c) for c in self.class_names]
        self.normalization = {
            "channels": self.channel_names,
            "means": [stats["means"][i] for i in self.channel_indices],
            "stds": [stats["stds"][i] for i in self.channel_indices],
        }
        return self.info

    @property
    def num_classes(self) -> int:
        """Model outputs: background plus the selected classes."""
        return 1 + len(self.class_names)

    def setup(self, stage: str | None = None) -> None:
        """Create the split datasets.

        Args:
            stage: Lightning stage (all splits are created regardless).
        """
        if not self.info:
            self.load_info()
        for split in ("train", "dev", "test"):
            self.datasets[split] = SliceDataset(
                self.processed_dir / split,
                self.channel_indices,
                self.class_indices,
                augment=self.augment and split == "train",
            )
        if not len(self.datasets["train"]):
            raise GlacierInputError(f"{self.processed_dir / 'train'} holds no slices")

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        dataset = self.datasets[split]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle and len(dataset) > self.batch_size,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled, augmented training batches."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation batches from ``dev/`` (``train/`` with a warning when dev is empty)."""
        if not len(self.datasets["dev"]):
            log.warning(
                "%s is empty: validating on the training slices (val metrics are optimistic); "
                "give split/ a dev share or dev region",
                self.processed_dir / "dev",
            )
            return self._loader("train", shuffle=False)
        return self._loader("dev", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test batches from ``test/``."""
        return self._loader("test", shuffle=False)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint must remember to predict on raw scenes.

        Returns:
            Dataset name, raw band layout, derived channels, band roles, channel and class names
            and normalization statistics.
        """
        data = self.info.get("data", {})
        return {
            "name": self.info.get("name"),
            "dataset_classes": self.info.get("classes"),
            "scene_bands": [
                [list(src["bands"]) for src in scene["sources"]] for scene in data.get("scenes", [])
            ][:1],
            "derived": data.get("derived", []),
            "band_roles": data.get("band_roles", {}),
            "nodata": data.get("nodata"),
            "slice_size": self.info.get("slice_size"),
        }
