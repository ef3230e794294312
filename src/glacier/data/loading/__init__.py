"""Training data for Lightning.

the DataModule, window datasets, random-window sampling, batch assembly and augmentation on the
device.
"""

from glacier.data.loading.augment import Augment
from glacier.data.loading.batch import LABEL_KEY, BatchLayout
from glacier.data.loading.datamodule import GlacierDataModule, auto_workers
from glacier.data.loading.sampling import EpochSampler, RandomWindowDataset
from glacier.data.loading.windows import WindowDataset, collate_windows

__all__ = [
    "LABEL_KEY",
    "Augment",
    "BatchLayout",
    "EpochSampler",
    "GlacierDataModule",
    "RandomWindowDataset",
    "WindowDataset",
    "auto_workers",
    "collate_windows",
]
