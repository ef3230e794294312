"""The training area of a stored scene and its valid pixels, for statistics and random windows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from glacier.data.contract import IGNORE_INDEX

STATS_ROWS = 256  # rows of a scene read at a time while accumulating statistics


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
