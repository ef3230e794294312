"""Training data for Lightning.

the DataModule, window datasets, random-window sampling, a training order that resumes inside an
epoch, batch assembly and augmentation on the device.
"""

from glacier.data.loading.augment import Augment
from glacier.data.loading.batch import LABEL_KEY, BatchLayout
from glacier.data.loading.datamodule import GlacierDataModule, auto_workers
from glacier.data.loading.resume import ResumableLoader, ShuffledOrder
from glacier.data.loading.sampling import EpochSampler, RandomWindowDataset
from glacier.data.loading.windows import WindowDataset, collate_windows

__all__ = [
    "LABEL_KEY",
    "Augment",
    "BatchLayout",
    "EpochSampler",
    "GlacierDataModule",
    "RandomWindowDataset",
    "ResumableLoader",
    "ShuffledOrder",
    "WindowDataset",
    "auto_workers",
    "collate_windows",
]
