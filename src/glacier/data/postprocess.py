"""Filter → split → statistics (train only) → normalize + impute: ``train/ dev/ test/``."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from glacier.data.masks import NODATA_LABEL
from glacier.data.splits import SPLITS
from glacier.errors import GlacierInputError
from glacier.utils.io import replace_directory, save_npy_atomic, write_json_atomic


class RunningStats:
    """Per-channel mean and variance accumulated in float64 (Chan et al. pairwise merge)."""

    def __init__(self, channels: int) -> None:
        self.count = np.zeros(channels, dtype=np.float64)
        self.mean = np.zeros(channels, dtype=np.float64)
        self.m2 = np.zeros(channels, dtype=np.float64)

    def update(self, values: np.ndarray) -> None:
        """Add samples.

        Args:
            values: (N, C) valid pixel values.
        """
        if not len(values):
            return
        batch = values.astype(np.float64)
        n = float(len(batch))
        mean = batch.mean(axis=0)
        m2 = ((batch - mean) ** 2).sum(axis=0)
        delta = mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per channel."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1))


def valid_pixels(image: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Boolean (S, S) mask of pixels with data in the label and every image channel.

    Args:
        image: (S, S, C) float image.
        label: (S, S, K) uint8 label.

    Returns:
        True where the pixel is valid.
    """
    return (label[..., 0] != NODATA_LABEL) & np.isfinite(image).all(axis=-1)


def channel_stats(
    processed_dir: Path, train: pd.DataFrame, channels: list[str]
) -> dict[str, list[Any]]:
    """Mean and std per channel over the valid pixels of training slices.

    Args:
        processed_dir: Root holding ``slices/``.
        train: Metadata rows of the training slices.
        channels: Channel names.

    Returns:
        ``{"channels", "means", "stds", "pixels"}``.

    Raises:
        GlacierInputError: If there are no valid training pixels.
    """
    stats = RunningStats(len(channels))
    for row in tqdm(train.itertuples(), total=len(train), desc="stats", leave=False):
        image = np.load(processed_dir / str(row.image), mmap_mode="r")
        label = np.load(processed_dir / str(row.label), mmap_mode="r")
        stats.update(np.asarray(image)[valid_pixels(image, label)])
    if not stats.count.max():
        raise GlacierInputError(f"no valid training pixels in {processed_dir}/slices")
    std = stats.std
    std[std == 0] = 1.0
    return {
        "channels": channels,
        "means": stats.mean.tolist(),
        "stds": std.tolist(),
        "pixels": int(stats.count[0]),
    }


def normalize_slice(image: np.ndarray, label: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """Normalize one slice and impute nodata to 0 (the channel mean after normalization).

    Args:
        image: (S, S, C) raw image.
        label: (S, S, K) label (255 = nodata).
        stats: Output of :func:`channel_stats`.

    Returns:
        (S, S, C) float32 normalized image without NaN.
    """
    means = np.asarray(stats["means"], dtype=np.float32)
    stds = np.asarray(stats["stds"], dtype=np.float32)
    out = (np.asarray(image, dtype=np.float32) - means) / stds
    out[~valid_pixels(image, label)] = 0.0
    return out


def write_splits(
    processed_dir: Path, slices: pd.DataFrame, stats: dict[str, Any], staging: Path
) -> None:
    """Write normalized slice pairs of every split into ``staging/{train,dev,test}``.

    Args:
        processed_dir: Root holding ``slices/``.
        slices: Kept slices with a ``split`` column.
        stats: Normalization statistics.
        staging: Empty staging folder.
    """
    for name in SPLITS:
        (staging / name).mkdir(parents=True)
    rows: Iterable[Any] = slices.itertuples()
    for row in tqdm(rows, total=len(slices), desc="normalize", leave=False):
        image = np.load(processed_dir / str(row.image))
        label = np.load(processed_dir / str(row.label))
        folder = staging / str(row.split)
        save_npy_atomic(folder / Path(str(row.image)).name, normalize_slice(image, label, stats))
        shutil.copyfile(processed_dir / str(row.label), folder / Path(str(row.label)).name)


def finalize(
    processed_dir: Path, staging: Path, stats: dict[str, Any], info: dict[str, Any]
) -> None:
    """Swap the staged split folders into place and write ``stats.json``/``dataset.json``.

    Args:
        processed_dir: Output root.
        staging: Folder with complete ``train/ dev/ test/``.
        stats: Normalization statistics.
        info: Dataset description (channels, classes, counts).
    """
    for name in SPLITS:
        replace_directory(staging / name, processed_dir / name)
    write_json_atomic(processed_dir / "stats.json", stats)
    write_json_atomic(processed_dir / "dataset.json", info)
    shutil.rmtree(staging, ignore_errors=True)
