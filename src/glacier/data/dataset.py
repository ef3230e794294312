"""Torch datasets that only read bytes: windows of the stored arrays, in their stored dtypes."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from glacier.data.batch import LABEL_KEY
from glacier.errors import GlacierInputError

Sample = dict[str, torch.Tensor]


class WindowStore(Protocol):
    """A store of a processed dataset (see :class:`glacier.data.storage.SceneStore`)."""

    @property
    def group_keys(self) -> list[str]:
        """Batch key of each image array."""

    def window(
        self, scene_id: str, row: int, col: int, size: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Image windows (one per group) and labels."""


class WindowDataset(Dataset[Sample]):
    """Fixed windows (the index's slices) of a store.

    Each sample maps every storage group's key (``image_uint8``...) to a (S, S, C) tensor of
    raw values and ``label`` to the (S, S, K) uint8 labels; :class:`glacier.data.batch.BatchLayout`
    turns a batch of them into model inputs on the device.

    Args:
        store: Where the pixels are.
        windows: Index rows with ``scene``, ``row_off``, ``col_off``, ``size``.
    """

    def __init__(self, store: WindowStore, windows: pd.DataFrame) -> None:
        self.store = store
        self.windows = list(
            windows[["scene", "row_off", "col_off", "size"]].itertuples(index=False, name=None)
        )

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> Sample:
        scene, row, col, size = self.windows[index]
        images, label = read_checked(self.store, str(scene), int(row), int(col), int(size))
        sample = {
            key: torch.from_numpy(image)
            for key, image in zip(self.store.group_keys, images, strict=True)
        }
        sample[LABEL_KEY] = torch.from_numpy(label)
        return sample


def read_checked(
    store: WindowStore, scene: str, row: int, col: int, size: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """``store.window`` with truncated or corrupt files reported by name.

    Raises:
        GlacierInputError: Naming the scene and the problem.
    """
    try:
        return store.window(scene, row, col, size)
    except (ValueError, OSError, EOFError) as error:
        raise GlacierInputError(
            f"cannot read scene {scene!r} of the processed dataset: {error}; re-run "
            "`glacier preprocess` to rebuild it"
        ) from error
