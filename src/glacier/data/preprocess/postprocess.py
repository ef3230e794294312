"""Filter → split → statistics over training pixels → the index (``splits.csv``) and the contract.

Nothing here rewrites a pixel: a new filter, split or statistics only rewrites ``splits.csv``
and ``dataset.json``. Normalization happens in the model (:mod:`glacier.models.normalize`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from glacier.data.contract import (
    SPLITS,
    ChannelStats,
    DatasetContract,
    DatasetInfo,
    DatasetLayout,
)
from glacier.data.preprocess.folds import FOLD, FOLD_COLUMNS
from glacier.data.preprocess.protocol import Splitter
from glacier.data.preprocess.value_ranges import RangeSample
from glacier.errors import GlacierInputError
from glacier.utils.io import write_json_atomic, write_text_atomic

INDEX_COLUMNS = ["scene", "slice", "split", "row_off", "col_off", "size"]


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
        mean = batch.mean(axis=0)
        self.merge(float(len(batch)), mean, ((batch - mean) ** 2).sum(axis=0))

    def merge(self, count: float, mean: np.ndarray, m2: np.ndarray) -> None:
        """Add a part's count, mean and sum of squared deviations per channel (Chan et al.).

        Args:
            count: Samples in the part (> 0).
            mean: (C,) their mean.
            m2: (C,) their sum of squared deviations from that mean.
        """
        delta = mean - self.mean
        total = self.count + count
        self.mean += delta * count / total
        self.m2 += m2 + delta**2 * self.count * count / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per channel."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1))

    def channel_stats(self, channels: Sequence[str]) -> ChannelStats:
        """The statistics of ``channels`` (stored order); a constant channel gets std 1.

        Raises:
            GlacierInputError: If no sample was added (no valid training pixels).
        """
        if not self.count.max():
            raise GlacierInputError("no valid training pixels: every training slice is nodata")
        std = self.std
        std[~(std > 0)] = 1.0
        return ChannelStats(
            mean=dict(zip(channels, self.mean.tolist(), strict=True)),
            std=dict(zip(channels, std.tolist(), strict=True)),
            pixels=int(self.count[0]),
        )


class PixelSource(Protocol):
    """What statistics need from a store: valid training pixels, block by block."""

    def training_pixels(self, train: pd.DataFrame, progress: bool) -> Iterator[np.ndarray]:
        """(N, C) float64 values of valid pixels inside the training windows."""


def channel_stats(
    source: PixelSource, train: pd.DataFrame, channels: Sequence[str], progress: bool = True
) -> ChannelStats:
    """Mean, std and value range per channel over the valid pixels of the training windows.

    Each pixel counts once even where training windows overlap. The range is the 0.1-99.9 %
    quantile interval of an evenly spaced sample of those pixels (:class:`RangeSample`).

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
    sample = RangeSample()
    for values in source.training_pixels(train, progress):
        valid = values[np.isfinite(values).all(axis=1)]
        stats.update(valid)
        sample.update(valid)
        del valid  # not held while the next block is read
    return replace(stats.channel_stats(channels), ranges=sample.quantiles(channels))


def assign_splits(
    slices: pd.DataFrame, keep: np.ndarray, splitter: Splitter, total: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Kept slices with their split (dropped ones removed), fold columns, the count per split.

    Args:
        slices: Every slice's record (footprint, fractions...).
        keep: The filter's choice.
        splitter: The ``split/`` rule; its fold columns (cross-validation) join the index.
        total: Slices sliced (for the message).

    Raises:
        GlacierInputError: If no training slice is left.
    """
    chosen = slices[keep].copy()
    chosen["split"] = splitter.assign(slices).loc[chosen.index].to_numpy()
    chosen = chosen[chosen["split"] != ""]
    folds = splitter.fold_columns(chosen)
    if folds is not None:
        chosen = chosen.join(folds)
    counts = {name: int((chosen["split"] == name).sum()) for name in SPLITS}
    if not counts["train"]:
        raise GlacierInputError(
            f"no training slices left after filter and split ({total} sliced); loosen filter/ "
            "or check split/ regions"
        )
    return chosen, counts


def index_columns(index: pd.DataFrame) -> list[str]:
    """The columns ``splits.csv`` keeps: :data:`INDEX_COLUMNS`, plus the fold columns if any."""
    return [*INDEX_COLUMNS, *(name for name in FOLD_COLUMNS if name in index.columns)]


def fold_info(index: pd.DataFrame, splitter: Splitter) -> tuple[int | None, tuple[int, ...]]:
    """A cross-validation index's fold count and slices per fold (None, () without folds)."""
    if FOLD not in index.columns:
        return None, ()
    folds = int(getattr(splitter, "folds", int(index[FOLD].max()) + 1))
    sizes = index.loc[index[FOLD] >= 0, FOLD].value_counts()
    return folds, tuple(int(sizes.get(i, 0)) for i in range(folds))


def write_dataset(
    processed_dir: Path,
    index: pd.DataFrame,
    contract: DatasetContract,
    extra: DatasetInfo | Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``splits.csv`` (the index) and ``dataset.json`` (the contract + counts).

    Args:
        processed_dir: Output root.
        index: Kept slices with their split and window (plus store-specific columns).
        contract: The contract, with statistics.
        extra: The rest of ``dataset.json`` (counts, storage kind...): a :class:`DatasetInfo`
            (or, from older callers, its keys as a plain mapping).

    Returns:
        The ``dataset.json`` content.
    """
    layout = DatasetLayout(processed_dir)
    write_text_atomic(layout.index, index.to_csv(index=False))
    keys = extra.to_dict() if isinstance(extra, DatasetInfo) else dict(extra)
    info = {**contract.to_dict(), **keys}
    write_json_atomic(layout.info, info)
    return info
