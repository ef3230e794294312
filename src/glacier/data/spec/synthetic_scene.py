"""What the synthetic scene looks like: outline shapes, pixels, DEM and the points tests look at.

Everything here is drawn in memory; :mod:`glacier.data.spec.synthetic` writes it to files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.transform import from_origin

BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
REFLECTANCE = {  # class id -> mean reflectance per band
    0: (0.09, 0.11, 0.13, 0.26, 0.23, 0.16),  # rock, soil, sparse vegetation
    1: (0.78, 0.74, 0.70, 0.56, 0.07, 0.05),  # clean ice / snow
    2: (0.16, 0.18, 0.20, 0.20, 0.33, 0.29),  # debris-covered ice
}


def pixel_geometries(width: int, height: int) -> dict[str, Any]:
    """Outline shapes in pixel coordinates (col, row)."""
    w, h, r = width, height, min(width, height)
    ring = shapely.Point(0.25 * w, 0.3 * h).buffer(0.17 * r)
    hole = shapely.Point(0.25 * w, 0.3 * h).buffer(0.06 * r)
    ellipse = shapely.affinity.scale(shapely.Point(0.62 * w, 0.2 * h).buffer(0.07 * r), 1.4, 1.0)
    return {
        "hole_ring": ring.difference(hole),
        "multi": shapely.MultiPolygon([ellipse, shapely.Point(0.72 * w, 0.4 * h).buffer(0.06 * r)]),
        "edge": shapely.box(0.86 * w, 0.5 * h, 1.2 * w, 0.7 * h),
        "outside": shapely.box(1.5 * w, 0.2 * h, 1.7 * w, 0.4 * h),
        "bowtie": shapely.Polygon(
            [(0.08 * w, 0.72 * h), (0.28 * w, 0.95 * h), (0.28 * w, 0.72 * h), (0.08 * w, 0.95 * h)]
        ),
        "old": shapely.box(0.4 * w, 0.8 * h, 0.5 * w, 0.93 * h),
        "debris": shapely.Polygon(
            [(0.42 * w, 0.45 * h), (0.62 * w, 0.47 * h), (0.6 * w, 0.68 * h), (0.44 * w, 0.66 * h)]
        ),
    }


def to_map(geometry: Any, transform: Affine) -> Any:
    """Pixel (col, row) coordinates → map coordinates."""
    return shapely.transform(geometry, lambda xy: np.column_stack(transform @ xy.T))


def class_map(shapes: dict[str, Any], width: int, height: int) -> np.ndarray:
    """0 background, 1 clean ice (valid, current-year polygons), 2 debris; in pixel space."""
    ice = [shapely.make_valid(shapes[k]) for k in ("hole_ring", "multi", "edge", "bowtie", "old")]
    classes = rasterize(((g, 1) for g in ice), out_shape=(height, width), dtype=np.uint8)
    debris = rasterize([(shapes["debris"], 2)], out_shape=(height, width), dtype=np.uint8)
    labels: np.ndarray = np.where(debris == 2, debris, classes)
    return labels


def scene_pixels(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(6, H, W) float32 reflectance with smooth texture, SLC-off stripes (0) and a NaN patch."""
    from scipy.ndimage import gaussian_filter  # here: `glacier preprocess` starts without SciPy

    height, width = classes.shape
    texture = gaussian_filter(rng.normal(0, 1, (height, width)), sigma=6)
    texture /= max(float(np.abs(texture).max()), 1e-6)
    image = np.empty((len(BANDS), height, width), dtype=np.float32)
    for band in range(len(BANDS)):
        means = np.array([REFLECTANCE[c][band] for c in range(3)], dtype=np.float32)
        image[band] = means[classes] * (1 + 0.12 * texture) + rng.normal(0, 0.01, classes.shape)
    image = np.clip(image, 0.001, 1.0)
    rows, cols = np.mgrid[0:height, 0:width]
    stripes = ((cols + 0.35 * rows) % 53) < 2
    image[:, stripes] = 0.0
    image[:, 4:12, 4:14] = np.nan
    return image


def dem_grid(width: int, height: int, transform: Affine) -> tuple[np.ndarray, Affine]:
    """Smooth terrain on a 60 m grid offset by 15 m, covering the scene with a margin."""
    x0, y0 = transform.c - 90 + 15, transform.f + 90 - 15
    cols, rows = width // 2 + 4, height // 2 + 4
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    elevation = 4200 + 900 * np.sin(3 * xx) * np.cos(2 * yy) + 400 * yy
    return elevation[None].astype(np.float32), from_origin(x0, y0, 60.0, 60.0)


def check_points(width: int, height: int, transform: Affine) -> dict[str, tuple[float, float]]:
    """Map points tests look at: inside a hole, on a ring, debris, outside the region..."""
    pixel_points = {
        "hole": (0.25 * width, 0.3 * height),
        "ring": (0.25 * width + 0.11 * min(width, height), 0.3 * height),
        "debris": (0.52 * width, 0.56 * height),
        "outside_region": (0.95 * width, 0.1 * height),
        "background": (0.45 * width, 0.2 * height),
    }
    points = {}
    for name, pixel in pixel_points.items():
        x, y = transform @ pixel
        points[name] = (float(x), float(y))
    return points
