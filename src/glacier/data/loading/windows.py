"""Torch datasets that only read bytes: windows of the stored arrays, in their stored dtypes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, default_collate

from glacier.data.loading.batch import LABEL_KEY
from glacier.data.store import PixelStore
from glacier.errors import GlacierInputError

Sample = dict[str, torch.Tensor]


class WindowDataset(Dataset[Sample]):
    """Fixed windows (the index's slices) of a store.

    Each sample maps every storage group's key (``image_uint8``...) to a (S, S, C) tensor of raw
    values and ``label`` to the (S, S, K) uint8 labels;
    :class:`glacier.data.loading.batch.BatchLayout` turns a batch of them into model inputs on the
    device.

    Args:
        store: Where the pixels are.
        windows: Index rows with ``scene``, ``row_off``, ``col_off``, ``size``.
        batched: Read whole batches at once (:meth:`__getitems__`).
    """

    def __init__(self, store: PixelStore, windows: pd.DataFrame, batched: bool = False) -> None:
        self.store = store
        self.batched = batched
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

    def __getitems__(self, indices: list[int]) -> Sample | list[Sample]:
        """A batch of samples, or (``batched``) one dict of batch tensors.

        Batched, each window is read straight into its slot (:func:`read_batch`); the loader
        then needs ``collate_fn=collate_windows``.
        """
        if not self.batched:
            return [self[i] for i in indices]
        positions = [self.windows[i] for i in indices]
        return read_batch(
            self.store, [(str(s), int(r), int(c), int(z)) for s, r, c, z in positions]
        )


def read_checked(
    store: PixelStore, scene: str, row: int, col: int, size: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """``store.window`` with truncated or corrupt files reported by name.

    Raises:
        GlacierInputError: Naming the scene and the problem.
    """
    try:
        return store.window(scene, row, col, size)
    except (ValueError, OSError, EOFError) as error:
        raise _unreadable(scene, error) from error


def _unreadable(scene: str, error: Exception) -> GlacierInputError:
    return GlacierInputError(
        f"cannot read scene {scene!r} of the processed dataset: {error}; re-run "
        "`glacier preprocess` to rebuild it"
    )


Position = tuple[str, int, int, int]


def read_batch(store: PixelStore, positions: Sequence[Position]) -> Sample:
    """Read windows into one batch: each window is copied once, into its row of the batch.

    Reading samples and then stacking them copies every byte twice; here the first window
    is read to learn the shapes and dtypes, the batch tensors are allocated, and every other
    window is read straight into its slot.

    Args:
        store: Where the pixels are.
        positions: ``(scene, row, col, size)`` of each window (one size for all).

    Returns:
        Every group key and ``label`` mapped to a (B, S, S, C) tensor.
    """
    scene, row, col, size = positions[0]
    images, label = read_checked(store, scene, row, col, size)
    arrays = [*images, label]
    batch = [torch.empty((len(positions), *a.shape), dtype=_torch_dtype(a)) for a in arrays]
    for tensor, array in zip(batch, arrays, strict=True):
        tensor[0].numpy()[...] = array
    for slot, (scene, row, col, size) in enumerate(positions[1:], start=1):
        views = [tensor[slot].numpy() for tensor in batch]
        try:
            store.window_into(scene, row, col, size, views[:-1], views[-1])
        except (ValueError, OSError, EOFError) as error:
            raise _unreadable(scene, error) from error
    keys = [*store.group_keys, LABEL_KEY]
    return dict(zip(keys, batch, strict=True))


def _torch_dtype(array: np.ndarray) -> torch.dtype:
    return torch.from_numpy(array[:0]).dtype


def collate_windows(data: Any) -> Any:
    """The loaders' collate function: batches from ``__getitems__`` pass as they are."""
    return data if isinstance(data, dict) else default_collate(data)
