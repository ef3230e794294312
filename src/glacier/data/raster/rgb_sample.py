"""A decimated RGB sample of a scene, taken from raw reads as they happen.

The overlay preview of a mapped scene needs every ``step``-th pixel of three bands. The
predictor reads every row of the scene anyway: it hands each raw read to :meth:`RgbSample.add`
(:meth:`SceneReader.read_with_mask`'s ``raw_seen``), so the preview costs no second read of the
scene. Reads may overlap and come in any order (several reader threads): a pixel's sample is
the same whichever read carries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RGB_NAMES = (("red", "green", "blue"), ("B3", "B2", "B1"))
PREVIEW_SIZE = 2000  # longest side of an overlay preview, in samples


def rgb_band_indices(band_names: Sequence[str]) -> list[int]:
    """Indices of the red, green and blue bands (or the first three bands).

    Args:
        band_names: The scene's raw band names.

    Returns:
        Three indices.
    """
    for names in RGB_NAMES:
        if all(n in band_names for n in names):
            return [list(band_names).index(n) for n in names]
    return [min(i, len(band_names) - 1) for i in range(3)]


def sample_step(width: int, height: int, max_size: int = PREVIEW_SIZE) -> int:
    """Pixels between samples so that the longest side has at most ``max_size`` samples."""
    return max(1, int(np.ceil(max(width, height) / max_size)))


@dataclass
class RgbSample:
    """Every ``step``-th raw pixel (rows and columns from 0) of the RGB bands, NaN until read.

    Attributes:
        bands: Raw band indices of red, green, blue.
        step: Pixels between samples.
        width: Scene width.
        height: Scene height.
        rgb: (3, ceil(height / step), ceil(width / step)) float32 samples.
    """

    bands: list[int]
    step: int
    width: int
    height: int
    rgb: np.ndarray

    @classmethod
    def of(cls, band_names: Sequence[str], width: int, height: int) -> RgbSample:
        """An empty sample of a scene with these raw bands and size."""
        step = sample_step(width, height)
        shape = (3, -(-height // step), -(-width // step))
        rgb = np.full(shape, np.nan, dtype=np.float32)
        return cls(rgb_band_indices(band_names), step, width, height, rgb)

    def add(self, top: int, left: int, raw: np.ndarray) -> None:
        """Take the samples of a raw (bands, h, w) read whose first pixel is (``top``, ``left``).

        Parts of the read outside the scene (padding) are ignored.
        """
        step = self.step
        bottom, right = min(top + raw.shape[1], self.height), min(left + raw.shape[2], self.width)
        first_row, first_col = top + (-top) % step, left + (-left) % step  # first sampled ones
        if first_row >= bottom or first_col >= right:
            return
        taken = raw[self.bands, first_row - top : bottom - top : step]
        taken = taken[:, :, first_col - left : right - left : step]
        row0, col0 = first_row // step, first_col // step
        self.rgb[:, row0 : row0 + taken.shape[1], col0 : col0 + taken.shape[2]] = taken
