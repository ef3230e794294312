"""Pixel areas on the ground, in an equal-area sense whatever the grid's CRS.

A projected grid (UTM, metres) has one pixel area, the determinant of its transform. On a
geographic grid (degrees) a pixel's area shrinks with the cosine of its latitude: each row's
pixels are measured on the CRS's ellipsoid (geodesic polygon area), so sums of pixel areas are
true areas.
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from pyproj import Geod
from rasterio.crs import CRS


def _geod(crs: CRS) -> Geod:
    """The ellipsoid of a geographic CRS (WGS 84 when it names none)."""
    try:
        ellipsoid = crs.to_dict().get("ellps") or crs.to_dict().get("datum")
        if ellipsoid in (None, "WGS84"):
            return Geod(ellps="WGS84")
        return Geod(ellps=str(ellipsoid))
    except (ValueError, KeyError):  # pragma: no cover - exotic CRS definitions
        return Geod(ellps="WGS84")


def row_pixel_areas_km2(transform: Affine, crs: CRS | None, height: int) -> np.ndarray:
    """Ground area of one pixel of each row, in km².

    Args:
        transform: The grid's (north-up) affine transform.
        crs: The grid's CRS (None: planar units taken as metres).
        height: Number of rows.

    Returns:
        (height,) float64 areas.
    """
    if crs is None or not crs.is_geographic:
        area = abs(transform.a * transform.e - transform.b * transform.d)
        if crs is not None and crs.linear_units_factor[1] != 1.0:
            area *= crs.linear_units_factor[1] ** 2
        return np.full(height, area / 1e6, dtype=np.float64)
    geod = _geod(crs)
    x0, width = transform.c, transform.a
    areas = np.empty(height, dtype=np.float64)
    for row in range(height):
        top = transform.f + row * transform.e
        bottom = top + transform.e
        lons = [x0, x0 + width, x0 + width, x0]
        lats = [top, top, bottom, bottom]
        area, _ = geod.polygon_area_perimeter(lons, lats)
        areas[row] = abs(area) / 1e6
    return areas


def pixel_size_m(transform: Affine, crs: CRS | None) -> tuple[float, float]:
    """(width, height) of a pixel in metres (at the grid's centre latitude when geographic).

    Args:
        transform: The grid's affine transform.
        crs: Its CRS.
    """
    if crs is None or not crs.is_geographic:
        factor = 1.0 if crs is None else crs.linear_units_factor[1]
        return abs(transform.a) * factor, abs(transform.e) * factor
    metres_per_degree = 111_320.0
    latitude = np.deg2rad(transform.f)
    return (
        abs(transform.a) * metres_per_degree * float(np.cos(latitude)),
        abs(transform.e) * metres_per_degree,
    )
