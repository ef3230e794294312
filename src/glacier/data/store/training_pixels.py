"""The training area of a stored scene: the pixels inside its training windows."""

from __future__ import annotations

import numpy as np
import pandas as pd


def training_area(shape: tuple[int, int], windows: pd.DataFrame) -> np.ndarray:
    """(H, W) mask of the pixels inside any of a scene's windows (clipped to the scene)."""
    area = np.zeros(shape, dtype=bool)
    for row, col, size in windows[["row_off", "col_off", "size"]].itertuples(index=False):
        area[max(row, 0) : row + size, max(col, 0) : col + size] = True
    return area
