"""Small RGB previews of whole scenes for overlays, read strip by strip."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from affine import Affine
from rasterio.windows import Window

from glacier.data.raster import SceneReader

RGB_NAMES = (("red", "green", "blue"), ("B3", "B2", "B1"))


def rgb_band_indices(band_names: Sequence[str]) -> list[int]:
    """Indices of the red, green and blue bands (or the first three bands).

    Args:
        band_names: The scene's channel names.

    Returns:
        Three indices.
    """
    for names in RGB_NAMES:
        if all(n in band_names for n in names):
            return [list(band_names).index(n) for n in names]
    return [min(i, len(band_names) - 1) for i in range(3)]


def scene_preview(reader: SceneReader, max_size: int = 2000) -> tuple[np.ndarray, Affine]:
    """A percentile-stretched uint8 RGB preview at most ``max_size`` px on its long side.

    Args:
        reader: The open scene.
        max_size: Longest side of the preview.

    Returns:
        (h, w, 3) uint8 image and the preview's geotransform.
    """
    step = max(1, int(np.ceil(max(reader.width, reader.height) / max_size)))
    indices = rgb_band_indices(reader.scene.band_names)
    rows = []
    strip = 256 * step
    for row in range(0, reader.height, strip):
        height = min(strip, reader.height - row)
        block = reader.read_raw(Window(0, row, reader.width, height))
        rows.append(block[indices, ::step, ::step])
    rgb = np.concatenate(rows, axis=1).transpose(1, 2, 0)
    finite = rgb[np.isfinite(rgb).all(axis=-1)]
    low, high = np.percentile(finite, [2, 98], axis=0) if len(finite) else (0.0, 1.0)
    scaled = np.clip((rgb - low) / np.maximum(high - low, 1e-6), 0, 1)
    image = np.nan_to_num(scaled * 255).astype(np.uint8)
    return image, reader.transform * Affine.scale(step)
