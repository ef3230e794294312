"""How a processed dataset stores its pixels: once per scene, raw values, compact dtypes.

Each scene is kept as a few memory-mappable arrays in scene pixel order (row 0 = the scene's top
row), one per stored dtype, channels last::

    scenes/{id}/image_uint8.npy     (H, W, C1) raw digital numbers (nodata: 0 / the nodata value)
    scenes/{id}/image_float16.npy   (H, W, C2) derived indices (NaN = nodata)
    masks/mask_{id}.npy             (H, W, K) uint8 labels: 0/1 per class, 255 = nodata

A training slice is a window of these arrays named by the index (``splits.csv``): no pixel is
written twice (overlapping slices share their pixels), nothing is normalized on disk, and a new
split, filter or statistics rewrites no pixel. Windows anywhere inside a scene can be read, which
the random-window sampler uses. Why not one file per slice: with overlapping slices that stores
pixels several times, and 10⁴–10⁵ small files cost more in file-system overhead than a memory
map of a few arrays per scene (measured in ``benchmarks/``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from glacier.data.contract import (
    IGNORE_INDEX,
    Channel,
    fill_value,
    image_path,
    mask_path,
    storage_groups,
)
from glacier.errors import GlacierInputError


def read_window(
    array: np.ndarray,
    row: int,
    col: int,
    height: int,
    width: int,
    fill: float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Copy a window of an (H, W, C) array; parts outside it hold ``fill``.

    Args:
        array: A scene array (usually a memory map).
        row: Top row of the window (may be negative or past the edge).
        col: Left column.
        height: Window rows.
        width: Window columns.
        fill: Value of pixels outside the array.
        out: A (height, width, C) array of the array's dtype to fill (default: a new one).

    Returns:
        The (height, width, C) window: ``out`` when given.
    """
    rows, cols = array.shape[:2]
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + height, rows), min(col + width, cols)
    inside = (r0, c0, r1, c1) == (row, col, row + height, col + width)
    if out is None:
        if inside:
            return np.array(array[r0:r1, c0:c1])  # the common case: one copy, no fill
        out = np.empty((height, width, array.shape[2]), dtype=array.dtype)
    if not inside:
        out.fill(fill)
    if r1 > r0 and c1 > c0:
        out[r0 - row : r1 - row, c0 - col : c1 - col] = array[r0:r1, c0:c1]
    return out


def read_label_window(mask: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    """A (size, size, K) label window; outside the scene is nodata."""
    return read_window(mask, row, col, size, size, IGNORE_INDEX)


def read_npy_header(handle: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """Shape, Fortran order and dtype of an open ``.npy`` file, leaving it at the data.

    Raises:
        ValueError: If the file is not a ``.npy`` file.
    """
    major, _ = np.lib.format.read_magic(handle)
    if major == 1:
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def complete_npy(path: Path) -> bool:
    """Whether ``path`` is a ``.npy`` file holding every byte its header announces."""
    try:
        with open(path, "rb") as handle:
            shape, _, dtype = read_npy_header(handle)
            offset = handle.tell()
    except (OSError, ValueError):
        return False
    expected = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
    return path.stat().st_size == expected


def open_arrays(paths: Sequence[Path]) -> list[np.ndarray]:
    """Memory-map ``.npy`` arrays read-only."""
    return [np.load(path, mmap_mode="r") for path in paths]


class SceneStore:
    """Read windows of the scenes of a processed dataset (memory maps opened lazily).

    Picklable before first use, so each DataLoader worker opens its own memory maps.

    Args:
        root: The processed dataset folder.
        channels: The contract's channels (they define the storage groups).
        roots: Scenes read from another folder of the same layout instead of ``root`` (a
            staging folder: statistics of a new generation are computed before it is
            published).
    """

    def __init__(
        self, root: Path, channels: Sequence[Channel], roots: Mapping[str, Path] | None = None
    ) -> None:
        self.root = Path(root)
        self.groups = storage_groups(channels)
        self.roots = {scene: Path(folder) for scene, folder in (roots or {}).items()}
        self._open: dict[str, tuple[list[np.ndarray], np.ndarray]] = {}

    def __getstate__(self) -> dict[str, object]:
        return {"root": self.root, "groups": self.groups, "roots": self.roots, "_open": {}}

    @property
    def group_keys(self) -> list[str]:
        """Batch key of each image array."""
        return [group.key for group in self.groups]

    def paths(self, scene_id: str) -> list[Path]:
        """Every file of a scene: its image arrays, then its labels."""
        root = self.roots.get(scene_id, self.root)
        images = [image_path(root, scene_id, group) for group in self.groups]
        return [*images, mask_path(root, scene_id)]

    def arrays(self, scene_id: str) -> tuple[list[np.ndarray], np.ndarray]:
        """The scene's image arrays (one per group) and labels, memory-mapped."""
        if scene_id not in self._open:
            paths = self.paths(scene_id)
            try:
                *images, labels = open_arrays(paths)
            except (ValueError, OSError, EOFError) as error:
                raise GlacierInputError(
                    f"cannot read scene {scene_id!r} in {self.roots.get(scene_id, self.root)}: "
                    f"{error} (files {paths}); "
                    "re-run `glacier preprocess` to rebuild it"
                ) from error
            self._open[scene_id] = (images, labels)
        return self._open[scene_id]

    def window(
        self, scene_id: str, row: int, col: int, size: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Raw image windows (one (size, size, C) array per group) and the (size, size, K) labels.

        Parts outside the scene are padding: nodata labels, NaN or 0 image values.
        """
        images, labels = self.arrays(scene_id)
        windows = [
            read_window(array, row, col, size, size, fill_value(group.dtype))
            for group, array in zip(self.groups, images, strict=True)
        ]
        return windows, read_label_window(labels, row, col, size)

    def window_into(
        self,
        scene_id: str,
        row: int,
        col: int,
        size: int,
        images: list[np.ndarray],
        label: np.ndarray,
    ) -> None:
        """:meth:`window`, read straight into ``images`` (one per group) and ``label``."""
        arrays, labels = self.arrays(scene_id)
        for group, array, out in zip(self.groups, arrays, images, strict=True):
            read_window(array, row, col, size, size, fill_value(group.dtype), out)
        read_window(labels, row, col, size, size, IGNORE_INDEX, label)

    def slice_image(
        self, scene_id: str, row: int, col: int, size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """A window as one (size, size, C) float32 image in channel order, NaN at nodata.

        For inspection (notebooks, tests); training reads :meth:`window` and assembles on the
        device instead.

        Returns:
            The image and its (size, size, K) labels.
        """
        windows, labels = self.window(scene_id, row, col, size)
        channels = sum(len(group.channels) for group in self.groups)
        image = np.empty((size, size, channels), dtype=np.float32)
        for group, window in zip(self.groups, windows, strict=True):
            image[..., list(group.channels)] = window
        image[labels[..., 0] == IGNORE_INDEX] = np.nan
        return image, labels

    def missing(self, scene_ids: Sequence[str]) -> list[Path]:
        """Files of these scenes that are missing or damaged (shorter than their header says)."""
        return [path for scene in scene_ids for path in self.paths(scene) if not complete_npy(path)]
