"""The processed folder's layout: every file name in it, and how scene arrays are grouped.

:class:`DatasetLayout` is the one home of the processed folder's file names: the index
(``splits.csv``), the contract (``dataset.json``), the slice footprints
(``slices/slices.geojson``), the scene table (``mask_metadata.csv``) and the scene and mask
arrays. Code outside this module asks a layout for a path instead of spelling a name.

Channels are stored in one array per dtype (a storage group); padding and nodata pixels of an
array hold its dtype's fill value. Each scene folder carries the generation stamp of the run that
published it (``scenes/{id}/generation.json``); ``dataset.json`` names the generation it expects
for every scene (see :mod:`glacier.data.contract.generations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from glacier.data.contract.schema import Channel

SCENES_DIR = "scenes"
MASKS_DIR = "masks"
GENERATION_FILE = "generation.json"
DATASET_FILE = "dataset.json"
INDEX_FILE = "splits.csv"
SLICES_FILE = "slices/slices.geojson"
SCENE_TABLE_FILE = "mask_metadata.csv"
INDEX_FILES = (SCENE_TABLE_FILE, SLICES_FILE, INDEX_FILE)
"""The index files a generation publishes beside ``dataset.json`` (relative to the root)."""


@dataclass(frozen=True)
class StorageGroup:
    """Channels stored together in one array (they share a dtype).

    Attributes:
        dtype: NumPy dtype name.
        channels: Positions of the group's channels in the contract's channel order.
    """

    dtype: str
    channels: tuple[int, ...]

    @property
    def key(self) -> str:
        """Batch key and file stem of the group (``image_uint8``)."""
        return f"image_{self.dtype}"


def storage_groups(channels: Sequence[Channel]) -> list[StorageGroup]:
    """Group channels by stored dtype, in order of each dtype's first channel.

    Args:
        channels: The contract's channels.

    Returns:
        One group per dtype.
    """
    order: dict[str, list[int]] = {}
    for index, channel in enumerate(channels):
        order.setdefault(channel.dtype, []).append(index)
    return [StorageGroup(dtype, tuple(members)) for dtype, members in order.items()]


def scene_dir(root: Path, scene_id: str) -> Path:
    """Folder of one scene's image arrays."""
    return root / SCENES_DIR / scene_id


def image_path(root: Path, scene_id: str, group: StorageGroup) -> Path:
    """The array file of one storage group of a scene."""
    return scene_dir(root, scene_id) / f"{group.key}.npy"


def mask_path(root: Path, scene_id: str) -> Path:
    """The label array of a scene."""
    return root / MASKS_DIR / f"mask_{scene_id}.npy"


def generation_path(root: Path, scene_id: str) -> Path:
    """The generation stamp of a scene's stored arrays."""
    return scene_dir(root, scene_id) / GENERATION_FILE


def fill_value(dtype: str) -> float:
    """What padding and nodata pixels hold in an array of ``dtype`` (NaN for floats)."""
    return float("nan") if np.dtype(dtype).kind == "f" else 0.0


@dataclass(frozen=True)
class DatasetLayout:
    """Where each file of one processed folder lives.

    Attributes:
        root: The processed folder.
    """

    root: Path

    @property
    def info(self) -> Path:
        """The contract and the dataset's other keys (``dataset.json``)."""
        return self.root / DATASET_FILE

    @property
    def index(self) -> Path:
        """Every kept slice with its split and window (``splits.csv``)."""
        return self.root / INDEX_FILE

    @property
    def slices(self) -> Path:
        """Footprints and statistics of every slice (``slices/slices.geojson``)."""
        return self.root / SLICES_FILE

    @property
    def scene_table(self) -> Path:
        """One row per scene (``mask_metadata.csv``)."""
        return self.root / SCENE_TABLE_FILE

    def index_files(self) -> list[Path]:
        """The index files and ``dataset.json``, as a published generation holds them."""
        return [self.root / name for name in (*INDEX_FILES, DATASET_FILE)]

    def scene_dir(self, scene_id: str) -> Path:
        """Folder of one scene's image arrays."""
        return scene_dir(self.root, scene_id)

    def image(self, scene_id: str, group: StorageGroup) -> Path:
        """The array file of one storage group of a scene."""
        return image_path(self.root, scene_id, group)

    def mask(self, scene_id: str) -> Path:
        """The label array of a scene."""
        return mask_path(self.root, scene_id)
