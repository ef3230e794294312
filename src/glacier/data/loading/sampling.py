"""Random training windows drawn anywhere inside each scene's training area.

torchgeo's ``RandomGeoSampler`` idea on our stored scenes: instead of only the fixed slices of the
index, every training sample is a window at a random position inside the *training area*, the union
of the scene's training-slice windows (:func:`glacier.data.store.training_pixels.training_area`),
eroded by ``margin`` pixels away from every dev/test window so no training window comes within
``margin`` pixels (the network's receptive field) of a held-out pixel, as ``drop_straddling`` does
for slices.

Positions are a pure function of ``(seed, epoch, index)``: the sampler yields
``(epoch, index)`` keys and the dataset turns each key into a window, so the draws do not
depend on worker processes, and Lightning's ``DistributedSamplerWrapper`` shards the keys
between ranks (it forwards ``set_epoch``) without two ranks drawing the same window.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from glacier.data.loading.batch import LABEL_KEY
from glacier.data.loading.windows import Sample, read_batch, read_checked
from glacier.data.store import PixelStore, training_area
from glacier.errors import GlacierInputError

Key = tuple[int, int]  # (epoch, index)


class WholeSceneStore(PixelStore, Protocol):
    """A store of whole scenes (:class:`~glacier.data.store.scene_store.SceneStore`)."""

    def arrays(self, scene_id: str) -> tuple[list[np.ndarray], np.ndarray]:
        """The scene's image arrays and (H, W, K) labels."""


def _integral(mask: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row and column: ``S[r, c] = mask[:r, :c].sum()``."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    return table


def box_sums(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sum of ``mask`` over every ``height`` × ``width`` box fully inside it, by top-left corner.

    Returns:
        (H - height + 1, W - width + 1) counts (empty when the box does not fit).
    """
    table = _integral(mask)
    rows, cols = mask.shape[0] - height + 1, mask.shape[1] - width + 1
    if rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0)), dtype=np.int64)
    sums: np.ndarray = (
        table[height:, width:] - table[:rows, width:] - table[height:, :cols] + table[:rows, :cols]
    )
    return sums


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (Chebyshev distance) of a True pixel."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    padded = np.pad(mask, radius)
    return box_sums(padded, 2 * radius + 1, 2 * radius + 1) > 0


def allowed_area(
    shape: tuple[int, int], train: pd.DataFrame, held_out: pd.DataFrame, margin: int
) -> np.ndarray:
    """(H, W) pixels a training window may cover in one scene.

    Args:
        shape: The scene's (rows, columns).
        train: The scene's training windows (``row_off``, ``col_off``, ``size``).
        held_out: The scene's dev and test windows.
        margin: Minimum distance in pixels between a training pixel and a held-out pixel.

    Returns:
        The training area minus everything within ``margin`` of a held-out window.
    """
    area = training_area(shape, train)
    if len(held_out):
        area &= ~dilate(training_area(shape, held_out), margin)
    return area


@dataclass(frozen=True)
class ScenePositions:
    """Valid top-left corners of one scene's windows, for uniform draws.

    Attributes:
        scene: Scene id.
        valid: (rows, cols) True where a window fits wholly inside the allowed area.
        row_ends: Cumulative count of valid corners per row (for ``searchsorted``).
    """

    scene: str
    valid: np.ndarray
    row_ends: np.ndarray

    @classmethod
    def of(cls, scene: str, area: np.ndarray, size: int) -> ScenePositions:
        """The positions of ``size`` windows inside ``area``."""
        valid = box_sums(area, size, size) == size * size
        return cls(scene, valid, np.cumsum(valid.sum(axis=1)))

    @property
    def count(self) -> int:
        """Number of valid corners."""
        return int(self.row_ends[-1]) if len(self.row_ends) else 0

    def region(self, size: int) -> tuple[int, int, int, int]:
        """(row, col, height, width) of the smallest box holding every window."""
        rows, cols = np.flatnonzero(self.valid.any(axis=1)), np.flatnonzero(self.valid.any(axis=0))
        return (
            int(rows[0]),
            int(cols[0]),
            int(rows[-1] - rows[0]) + size,
            int(cols[-1] - cols[0]) + size,
        )

    def corner(self, k: int) -> tuple[int, int]:
        """The ``k``-th valid corner in row-major order."""
        row = int(np.searchsorted(self.row_ends, k, side="right"))
        before = int(self.row_ends[row - 1]) if row else 0
        col = int(np.flatnonzero(self.valid[row])[k - before])
        return row, col


class EpochSampler(Sampler[Key]):
    """Yield ``(epoch, index)`` keys for ``length`` samples; Lightning calls :meth:`set_epoch`.

    Args:
        length: Samples per epoch.
    """

    def __init__(self, length: int) -> None:
        self.length = length
        self.epoch = 0
        self._start = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next epoch's windows."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Key]:
        start, self._start = self._start, 0
        return ((self.epoch, index) for index in range(start, self.length))

    def state_dict(self) -> dict[str, int]:
        """The current epoch (its windows are a function of the epoch and the index)."""
        return {"epoch": self.epoch}

    def replay(self, state: dict[str, int], start: int) -> None:
        """Continue the epoch of ``state`` from window ``start`` (the next iteration only)."""
        self.epoch, self._start = int(state["epoch"]), start


class RandomWindowDataset(Dataset[Sample]):
    """Windows at random positions inside each scene's training area (see the module doc).

    A window is drawn uniformly among every valid position of every scene, so larger training
    areas give more windows. Samples have the same keys as
    :class:`~glacier.data.loading.windows.WindowDataset`'s.

    Args:
        store: A :class:`~glacier.data.store.scene_store.SceneStore` (the scenes must be stored
        whole).
        index: The whole index (``splits.csv``): training windows define the area, dev/test
            windows are kept ``margin`` away.
        size: Window edge in pixels.
        length: Windows per epoch.
        margin: Minimum distance in pixels from any dev/test window.
        seed: Seed of the draws.
        batched: Read whole batches at once (the loader needs ``collate_fn=collate_windows``).

    Raises:
        GlacierInputError: For a store without whole scenes, or if no window fits.
    """

    def __init__(
        self,
        store: PixelStore,
        index: pd.DataFrame,
        size: int,
        length: int,
        margin: int = 0,
        seed: int = 0,
        batched: bool = False,
    ) -> None:
        if size < 1 or length < 1 or margin < 0:
            raise GlacierInputError(
                f"random windows: need window_size >= 1, windows_per_epoch >= 1 and margin >= 0, "
                f"got {size}, {length}, {margin}"
            )
        if not hasattr(store, "arrays"):
            raise GlacierInputError(
                "datamodule.sampler=random_windows needs whole stored scenes; this dataset "
                f"({type(store).__name__}) stores fixed patches: use sampler=slices"
            )
        self.store = cast(WholeSceneStore, store)
        self.size, self.length, self.margin, self.seed = size, length, margin, seed
        self.batched = batched
        self.scenes = self._positions(index)
        self.ends = np.cumsum([scene.count for scene in self.scenes])
        if not len(self.ends) or not self.ends[-1]:
            raise GlacierInputError(
                f"no {size}-pixel window fits inside the training area {margin} px away from "
                "dev/test windows: lower datamodule.window_size or window_margin"
            )

    def subset(self, scenes: Collection[str], length: int) -> RandomWindowDataset:
        """The same draws restricted to some scenes (a rank's shard), ``length`` per epoch."""
        part = copy.copy(self)
        part.scenes = [s for s in self.scenes if s.scene in scenes and s.count]
        part.ends = np.cumsum([scene.count for scene in part.scenes])
        part.length = length
        return part

    def regions(self) -> dict[str, tuple[int, int, int, int]]:
        """Per scene with windows: the (row, col, height, width) box they all lie in."""
        return {s.scene: s.region(self.size) for s in self.scenes if s.count}

    def _positions(self, index: pd.DataFrame) -> list[ScenePositions]:
        positions = []
        held_out = index[index["split"] != "train"]
        for scene, train in index[index["split"] == "train"].groupby("scene", sort=True):
            _, labels = self.store.arrays(str(scene))
            others = held_out[held_out["scene"] == scene]
            area = allowed_area(labels.shape[:2], train, others, self.margin)
            positions.append(ScenePositions.of(str(scene), area, self.size))
        return positions

    def __len__(self) -> int:
        return self.length

    def position(self, epoch: int, index: int) -> tuple[str, int, int]:
        """The window of sample ``index`` in ``epoch``: (scene, top row, left column)."""
        rng = np.random.default_rng([self.seed, epoch, index])
        k = int(rng.integers(int(self.ends[-1])))
        number = int(np.searchsorted(self.ends, k, side="right"))
        scene = self.scenes[number]
        row, col = scene.corner(k - (int(self.ends[number - 1]) if number else 0))
        return scene.scene, row, col

    def __getitem__(self, key: Key | int) -> Sample:
        epoch, index = key if isinstance(key, tuple) else (0, int(key))
        scene, row, col = self.position(int(epoch), int(index))
        images, label = read_checked(self.store, scene, row, col, self.size)
        keys = self.store.group_keys
        sample = {name: torch.from_numpy(image) for name, image in zip(keys, images, strict=True)}
        sample[LABEL_KEY] = torch.from_numpy(label)
        return sample

    def __getitems__(self, keys: list[Key | int]) -> Sample | list[Sample]:
        """A batch: one dict of batch tensors when ``batched`` (as :class:`WindowDataset`)."""
        if not self.batched:
            return [self[key] for key in keys]
        positions = []
        for key in keys:
            epoch, index = key if isinstance(key, tuple) else (0, int(key))
            positions.append((*self.position(int(epoch), int(index)), self.size))
        return read_batch(self.store, positions)
