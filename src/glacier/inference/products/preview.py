"""Small RGB previews of whole scenes for overlays.

From the samples the predictor took while it read the scene
(:class:`~glacier.data.raster.RgbSample`), or read strip by strip when there are none.
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.windows import Window

from glacier.data.raster import RgbSample, SceneReader, rgb_band_indices

__all__ = ["read_rgb_sample", "rgb_band_indices", "scene_preview", "stretch"]


def read_rgb_sample(reader: SceneReader) -> RgbSample:
    """The preview samples of an open scene, read strip by strip (when none were taken)."""
    sample = RgbSample.of(reader.scene.band_names, reader.width, reader.height)
    strip = 256 * sample.step
    for row in range(0, reader.height, strip):
        height = min(strip, reader.height - row)
        sample.add(row, 0, reader.read_raw(Window(0, row, reader.width, height)))
    return sample


def stretch(rgb: np.ndarray) -> np.ndarray:
    """(3, h, w) samples as a (h, w, 3) uint8 image, percentile-stretched (2-98 %) per band."""
    rgb = rgb.transpose(1, 2, 0)
    finite = rgb[np.isfinite(rgb).all(axis=-1)]
    low, high = np.percentile(finite, [2, 98], axis=0) if len(finite) else (0.0, 1.0)
    scaled = np.clip((rgb - low) / np.maximum(high - low, 1e-6), 0, 1)
    image: np.ndarray = np.nan_to_num(scaled * 255).astype(np.uint8)
    return image


def scene_preview(
    reader: SceneReader, sample: RgbSample | None = None
) -> tuple[np.ndarray, Affine]:
    """A percentile-stretched uint8 RGB preview at most 2000 px on its long side.

    Args:
        reader: The open scene.
        sample: Its samples, taken while it was read (None: read them now).

    Returns:
        (h, w, 3) uint8 image and the preview's geotransform.
    """
    sample = sample or read_rgb_sample(reader)
    return stretch(sample.rgb), reader.transform * Affine.scale(sample.step)
