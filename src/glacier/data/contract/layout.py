"""The processed folder's layout: where each scene's stored arrays live and how they are grouped.

Channels are stored in one array per dtype (a storage group); padding and nodata pixels of an
array hold its dtype's fill value. Each scene folder carries the generation stamp of the run that
published it (``scenes/{id}/generation.json``); ``dataset.json`` names the generation it expects
for every scene (see :mod:`glacier.data.contract.generations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glacier.data.contract.schema import Channel

SCENES_DIR = "scenes"
MASKS_DIR = "masks"
GENERATION_FILE = "generation.json"
DATASET_FILE = "dataset.json"


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
