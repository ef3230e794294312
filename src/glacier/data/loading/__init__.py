"""Training data for Lightning.

the DataModule, window datasets, random-window sampling, the training cache (windows resident on
the device or in pinned host memory), a training order that resumes inside an epoch, batch
assembly and augmentation on the device.
"""

from glacier.data.loading.augment import Augment
from glacier.data.loading.batch import LABEL_KEY, BatchLayout
from glacier.data.loading.cache_budget import CacheChoice, MemoryProbes
from glacier.data.loading.datamodule import GlacierDataModule
from glacier.data.loading.resume import ResumableLoader, ShuffledOrder
from glacier.data.loading.sampling import EpochSampler, RandomWindowDataset
from glacier.data.loading.window_cache import CACHE_KEYS, WindowCache
from glacier.data.loading.windows import WindowDataset, collate_windows
from glacier.data.loading.workers import auto_workers

__all__ = [
    "CACHE_KEYS",
    "LABEL_KEY",
    "Augment",
    "BatchLayout",
    "CacheChoice",
    "EpochSampler",
    "GlacierDataModule",
    "MemoryProbes",
    "RandomWindowDataset",
    "ResumableLoader",
    "ShuffledOrder",
    "WindowCache",
    "WindowDataset",
    "auto_workers",
    "collate_windows",
]
