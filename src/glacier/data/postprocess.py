"""Filter → split → statistics over training pixels → the index (``splits.csv``) and the contract.

Nothing here rewrites a pixel: a new filter, split or statistics only rewrites ``splits.csv``
and ``dataset.json``. Normalization happens in the model (:mod:`glacier.models.normalize`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from glacier.data.schema import IGNORE_INDEX, SPLITS, ChannelStats, DatasetContract
from glacier.errors import GlacierInputError
from glacier.utils.io import write_json_atomic, write_text_atomic

INDEX_COLUMNS = ["scene", "slice", "split", "row_off", "col_off", "size"]
STATS_ROWS = 256  # rows of a scene read at a time while accumulating statistics


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
        batch = values.astype(np.float64, copy=False)
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


class PixelSource(Protocol):
    """What statistics need from a store: valid training pixels, block by block."""

    def training_pixels(self, train: pd.DataFrame, progress: bool) -> Iterator[np.ndarray]:
        """(N, C) float64 values of valid pixels inside the training windows."""


def channel_stats(
    source: PixelSource, train: pd.DataFrame, channels: Sequence[str], progress: bool = True
) -> ChannelStats:
    """Mean and std per channel over the valid pixels of the training windows.

    Each pixel counts once even where training windows overlap.

    Args:
        source: The store of the processed dataset.
        train: Index rows of the training slices.
        channels: Channel names, in stored order.
        progress: Show a progress bar.

    Returns:
        The statistics (a constant channel gets std 1).

    Raises:
        GlacierInputError: If there are no valid training pixels.
    """
    stats = RunningStats(len(channels))
    for values in source.training_pixels(train, progress):
        stats.update(values[np.isfinite(values).all(axis=1)])
    if not stats.count.max():
        raise GlacierInputError("no valid training pixels: every training slice is nodata")
    std = stats.std
    std[~(std > 0)] = 1.0
    return ChannelStats(
        mean=dict(zip(channels, stats.mean.tolist(), strict=True)),
        std=dict(zip(channels, std.tolist(), strict=True)),
        pixels=int(stats.count[0]),
    )


def training_area(shape: tuple[int, int], windows: pd.DataFrame) -> np.ndarray:
    """(H, W) mask of the pixels inside any of a scene's windows (clipped to the scene)."""
    area = np.zeros(shape, dtype=bool)
    for row, col, size in windows[["row_off", "col_off", "size"]].itertuples(index=False):
        area[max(row, 0) : row + size, max(col, 0) : col + size] = True
    return area


def scene_training_pixels(
    images: Sequence[np.ndarray],
    channel_groups: Sequence[Sequence[int]],
    labels: np.ndarray,
    windows: pd.DataFrame,
) -> Iterator[np.ndarray]:
    """Valid pixels of one stored scene inside its training windows, a few rows at a time.

    Args:
        images: The scene's arrays, one per storage group.
        channel_groups: Contract positions of each array's channels.
        labels: The scene's (H, W, K) labels (255 = nodata).
        windows: The scene's training windows.

    Yields:
        (N, C) float64 pixel values.
    """
    height, width = labels.shape[:2]
    area = training_area((height, width), windows)
    channels = sum(len(group) for group in channel_groups)
    for top in range(0, height, STATS_ROWS):
        rows = slice(top, top + STATS_ROWS)
        chosen = area[rows] & (labels[rows, :, 0] != IGNORE_INDEX)
        count = int(chosen.sum())
        if not count:
            continue
        values = np.empty((count, channels), dtype=np.float64)
        for group, array in zip(channel_groups, images, strict=True):
            values[:, list(group)] = array[rows][chosen]
        yield values


def assign_splits(
    slices: pd.DataFrame, keep: np.ndarray, split: pd.Series, total: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Kept slices with their split (dropped ones removed) and the count per split.

    Raises:
        GlacierInputError: If no training slice is left.
    """
    chosen = slices[keep].copy()
    chosen["split"] = split.loc[chosen.index].to_numpy()
    chosen = chosen[chosen["split"] != ""]
    counts = {name: int((chosen["split"] == name).sum()) for name in SPLITS}
    if not counts["train"]:
        raise GlacierInputError(
            f"no training slices left after filter and split ({total} sliced); loosen filter/ "
            "or check split/ regions"
        )
    return chosen, counts


def write_dataset(
    processed_dir: Path,
    index: pd.DataFrame,
    contract: DatasetContract,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Write ``splits.csv`` (the index) and ``dataset.json`` (the contract + counts).

    Args:
        processed_dir: Output root.
        index: Kept slices with their split and window (plus store-specific columns).
        contract: The contract, with statistics.
        extra: More keys for ``dataset.json`` (counts, storage kind...).

    Returns:
        The ``dataset.json`` content.
    """
    write_text_atomic(processed_dir / "splits.csv", index.to_csv(index=False))
    info = {**contract.to_dict(), **extra}
    write_json_atomic(processed_dir / "dataset.json", info)
    return info


def progress_bar(items: Any, total: int, desc: str, enabled: bool) -> Any:
    """``tqdm`` unless progress bars are off."""
    return tqdm(items, total=total, desc=desc, leave=False, disable=not enabled)
