"""Torch datasets over processed slice pairs, with channel/class selection at load time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from glacier.errors import GlacierInputError

IGNORE_INDEX = 255


def select_channels(
    requested: str | Sequence[str] | None,
    available: Sequence[str],
    channel_sets: dict[str, list[str]],
) -> list[str]:
    """Resolve ``channels=`` (a set name, a list of band names, or None for all).

    Args:
        requested: The user's selection.
        available: Channels stored in the processed dataset.
        channel_sets: Named subsets from the data config.

    Returns:
        Channel names in the requested order.

    Raises:
        GlacierInputError: For an unknown set or band name.
    """
    if requested is None:
        return list(available)
    if isinstance(requested, str):
        if requested not in channel_sets:
            raise GlacierInputError(
                f"channels={requested!r} is neither a channel set of this dataset "
                f"({sorted(channel_sets)}) nor a list of bands ({list(available)})"
            )
        requested = channel_sets[requested]
    unknown = [c for c in requested if c not in available]
    if unknown:
        raise GlacierInputError(
            f"unknown channel(s) {unknown} in channels=; this dataset has {list(available)}"
        )
    return list(requested)


def select_classes(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """Resolve ``classes=`` (a list of class names, or None for all).

    Args:
        requested: The user's selection.
        available: Classes stored in the processed dataset.

    Returns:
        Class names in the requested order.

    Raises:
        GlacierInputError: For an unknown or empty selection.
    """
    if requested is None:
        return list(available)
    if isinstance(requested, str):
        requested = [requested]
    unknown = [c for c in requested if c not in available]
    if unknown or not requested:
        raise GlacierInputError(
            f"unknown class(es) {unknown or requested} in classes=; this dataset has "
            f"{list(available)}"
        )
    return list(requested)


def label_to_target(label: np.ndarray, class_indices: Sequence[int]) -> np.ndarray:
    """Turn a stored (S, S, K) 0/1/255 label into an index map for the selected classes.

    Background is 0, the i-th selected class is i + 1 (a later class wins where classes
    overlap) and nodata is :data:`IGNORE_INDEX`. Unselected classes become background.

    Args:
        label: Stored label slice.
        class_indices: Stored channel of each selected class.

    Returns:
        (S, S) int64 targets.
    """
    target = np.zeros(label.shape[:2], dtype=np.int64)
    for position, channel in enumerate(class_indices, start=1):
        target[label[..., channel] == 1] = position
    target[label[..., 0] == IGNORE_INDEX] = IGNORE_INDEX
    return target


def augment_pair(
    image: np.ndarray, target: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random horizontal/vertical flips and 90° rotations of a (C, H, W) image and its target.

    Args:
        image: (C, H, W) image.
        target: (H, W) target.
        rng: Random generator.

    Returns:
        The transformed pair (contiguous copies).
    """
    turns = int(rng.integers(4))
    image, target = np.rot90(image, turns, axes=(1, 2)), np.rot90(target, turns)
    if rng.random() < 0.5:
        image, target = image[:, :, ::-1], target[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(target)


class SliceDataset(Dataset[dict[str, torch.Tensor]]):
    """Normalized slice pairs of one split, with channels and classes chosen by index.

    Args:
        folder: A split folder (``train/``, ``dev/``, ``test/``).
        channel_indices: Stored channels to feed the model, in order.
        class_indices: Stored classes to learn, in order.
        augment: Apply random flips/rotations.
    """

    def __init__(
        self,
        folder: Path,
        channel_indices: Sequence[int],
        class_indices: Sequence[int],
        augment: bool = False,
    ) -> None:
        self.images = sorted(folder.glob("slice_*_img_*.npy"), key=_slice_sort_key)
        self.labels = [p.with_name(p.name.replace("_img_", "_label_")) for p in self.images]
        missing = [str(p) for p in self.labels if not p.is_file()]
        if missing:
            raise GlacierInputError(f"label slices missing for {missing[:3]} in {folder}")
        self.channel_indices = list(channel_indices)
        self.class_indices = list(class_indices)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Load one pair as a (C, S, S) float32 image and (S, S) int64 target.

        Args:
            index: Sample index.

        Returns:
            The image and target arrays.

        Raises:
            GlacierInputError: If a slice file is truncated or corrupt.
        """
        try:
            image = np.load(self.images[index], mmap_mode="r")[..., self.channel_indices]
            label = np.load(self.labels[index])
        except (ValueError, OSError, EOFError) as error:
            raise GlacierInputError(
                f"cannot read slice {self.images[index]} / {self.labels[index]}: {error}"
            ) from error
        image = np.moveaxis(np.asarray(image, dtype=np.float32), -1, 0)
        return image, label_to_target(label, self.class_indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, target = self.load(index)
        if self.augment:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
            image, target = augment_pair(image, target, rng)
        return {"image": torch.from_numpy(image), "mask": torch.from_numpy(target)}


def _slice_sort_key(path: Path) -> tuple[str, int]:
    """Sort ``slice_{scene}_img_{k}.npy`` by scene, then numerically by k."""
    scene, _, k = path.stem.removeprefix("slice_").rpartition("_img_")
    return scene, int(k) if k.isdigit() else -1
