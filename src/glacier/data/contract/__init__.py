"""The dataset contract: what a processed dataset is and what a model was trained on.

The bottom of ``glacier.data``: the typed contract (channels with their formulas and stored
dtypes, classes, band layout, nodata rule, statistics), the derived-channel registry, the
processed folder's file layout, and how format-1 checkpoints are read. Imports nothing above.
"""

from glacier.data.contract.channels import (
    DEM_CHANNELS,
    DERIVED,
    INDEX_BANDS,
    DerivedChannel,
    build_contract,
    check_compatible,
    derived_channel,
    promote,
    raw_channels,
    role_band,
)
from glacier.data.contract.dataset_file import load_contract
from glacier.data.contract.generations import (
    check_published,
    generation_stamp,
    scene_generation,
)
from glacier.data.contract.info import STORAGE_RELEASE, STORAGE_SCENES, DatasetInfo
from glacier.data.contract.layout import (
    DATASET_FILE,
    INDEX_FILE,
    INDEX_FILES,
    SCENE_TABLE_FILE,
    SLICES_FILE,
    DatasetLayout,
    StorageGroup,
    fill_value,
    generation_path,
    image_path,
    mask_path,
    scene_dir,
    storage_groups,
)
from glacier.data.contract.legacy import checkpoint_contract
from glacier.data.contract.nodata import NodataRule
from glacier.data.contract.qa import DEFAULT_FLAGS, QA_BITS, QaMask
from glacier.data.contract.schema import (
    BACKGROUND,
    FORMAT_VERSION,
    IGNORE_INDEX,
    REBUILD_HINT,
    SPLITS,
    Channel,
    ChannelStats,
    DatasetContract,
)

__all__ = [
    "BACKGROUND",
    "DATASET_FILE",
    "DEFAULT_FLAGS",
    "DEM_CHANNELS",
    "DERIVED",
    "FORMAT_VERSION",
    "IGNORE_INDEX",
    "INDEX_BANDS",
    "INDEX_FILE",
    "INDEX_FILES",
    "QA_BITS",
    "REBUILD_HINT",
    "SCENE_TABLE_FILE",
    "SLICES_FILE",
    "SPLITS",
    "STORAGE_RELEASE",
    "STORAGE_SCENES",
    "Channel",
    "ChannelStats",
    "DatasetContract",
    "DatasetInfo",
    "DatasetLayout",
    "DerivedChannel",
    "NodataRule",
    "QaMask",
    "StorageGroup",
    "build_contract",
    "check_compatible",
    "check_published",
    "checkpoint_contract",
    "derived_channel",
    "fill_value",
    "generation_path",
    "generation_stamp",
    "image_path",
    "load_contract",
    "mask_path",
    "promote",
    "raw_channels",
    "role_band",
    "scene_dir",
    "scene_generation",
    "storage_groups",
]
