"""Derived channels: spectral indices from named bands, elevation and slope from a DEM.

Indices are normalized differences of two bands found by *role* (``red``, ``green``, ``nir``,
``swir1``). A band named like its role fills it; ``data.band_roles`` maps roles to other names
(e.g. ``{nir: B4, swir1: B5}`` for raw Landsat band numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from glacier.data.contract import DEM_CHANNELS, INDEX_BANDS, role_band
from glacier.data.raster.footprints import coverage
from glacier.data.raster.headers import (
    check_georeferenced,
    grid_box,
    header_of,
    open_raster,
    representable_nodata,
)
from glacier.errors import GlacierFileError, GlacierInputError


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``(a - b) / (a + b)`` as float32; 0 where the sum is 0, NaN where an input is NaN.

    Args:
        a: First band.
        b: Second band.

    Returns:
        The index, in [-1, 1] for non-negative inputs.
    """
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    total = a + b
    index: np.ndarray = a - b
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN where an input is NaN
        np.divide(index, total, out=index)
    zero = total == 0
    if zero.any():
        index[zero] = 0.0
    return index


def compute_index(
    name: str, bands: Mapping[str, np.ndarray], band_roles: Mapping[str, str]
) -> np.ndarray:
    """Compute a spectral index from named band arrays.

    Args:
        name: ``ndvi``, ``ndwi`` or ``ndsi``.
        bands: Raw band arrays by band name.
        band_roles: Role → band name mapping.

    Returns:
        The index as float32.

    Raises:
        GlacierInputError: For an unknown index or missing bands.
    """
    if name not in INDEX_BANDS:
        raise GlacierInputError(f"unknown index '{name}'; known: {sorted(INDEX_BANDS)}")
    names = [role_band(role, list(bands), band_roles) for role in INDEX_BANDS[name]]
    if None in names:
        raise GlacierInputError(
            f"{name} needs bands for roles {INDEX_BANDS[name]}; bands: {list(bands)}, "
            f"band_roles: {dict(band_roles)}"
        )
    first, second = (bands[str(n)] for n in names)
    return normalized_difference(first, second)


def validate_derived(
    derived: Sequence[str],
    band_names: Sequence[str],
    band_roles: Mapping[str, str],
    has_dem: bool,
) -> None:
    """Check up front that every derived channel can be computed for a scene.

    Args:
        derived: Requested derived channel names.
        band_names: The scene's raw band names.
        band_roles: Role → band name mapping.
        has_dem: Whether a DEM is configured.

    Raises:
        GlacierInputError: Naming the channel and what it lacks.
    """
    for name in derived:
        if name in DEM_CHANNELS:
            if not has_dem:
                raise GlacierInputError(f"derived channel '{name}' needs data.dem (a DEM GeoTIFF)")
            continue
        if name not in INDEX_BANDS:
            raise GlacierInputError(
                f"unknown derived channel '{name}'; known: {[*INDEX_BANDS, *DEM_CHANNELS]}"
            )
        missing = [r for r in INDEX_BANDS[name] if role_band(r, band_names, band_roles) is None]
        if missing:
            raise GlacierInputError(
                f"derived channel '{name}' needs band role(s) {missing}; the scene has bands "
                f"{list(band_names)} (map roles with data.band_roles, e.g. {{{missing[0]}: B5}})"
            )


def slope_degrees(elevation: np.ndarray, x_size: float, y_size: float) -> np.ndarray:
    """Slope in degrees with Horn's method (edges replicated, NaN propagates).

    Args:
        elevation: (H, W) elevation in metres.
        x_size: Pixel width in metres.
        y_size: Pixel height in metres.

    Returns:
        (H, W) float32 slope.
    """
    z = np.pad(elevation.astype(np.float64), 1, mode="edge")
    dz_dx = (
        (z[:-2, 2:] + 2 * z[1:-1, 2:] + z[2:, 2:]) - (z[:-2, :-2] + 2 * z[1:-1, :-2] + z[2:, :-2])
    ) / (8 * x_size)
    dz_dy = (
        (z[2:, :-2] + 2 * z[2:, 1:-1] + z[2:, 2:]) - (z[:-2, :-2] + 2 * z[:-2, 1:-1] + z[:-2, 2:])
    ) / (8 * y_size)
    return np.degrees(np.arctan(np.hypot(dz_dx, dz_dy))).astype(np.float32)


class DemOnGrid:
    """A DEM resampled (bilinear) onto a scene grid, read window by window.

    Scene pixels the DEM does not cover, and its nodata pixels, read as NaN elevation (so they
    become nodata in every channel).

    Args:
        dem_path: DEM GeoTIFF (any CRS and resolution covering the scene).
        crs: Scene CRS.
        transform: Scene geotransform.
        width: Scene width in pixels.
        height: Scene height in pixels.
        scene: Scene id, for messages.

    Raises:
        GlacierFileNotFoundError: If the DEM file is missing.
        GlacierFileError: If the DEM is unreadable, has no CRS, a rotated transform, or does
            not overlap the scene at all.
    """

    def __init__(
        self,
        dem_path: Path,
        crs: CRS,
        transform: Affine,
        width: int,
        height: int,
        scene: str = "",
    ) -> None:
        what = "DEM (data.dem)"
        self.path = Path(dem_path)
        self._dataset = open_raster(self.path, what)
        try:
            header = header_of(self._dataset, self.path)
            check_georeferenced(header, what)
            self.coverage = coverage(header, crs, transform, width, height)
            if self.coverage <= 0:
                raise GlacierFileError(
                    f"{what} {self.path} does not overlap scene '{scene}' (bounds "
                    f"{grid_box(transform, width, height).bounds} in {crs.to_string()}); "
                    "give a DEM that covers the scenes"
                )
        except GlacierInputError:
            self._dataset.close()
            raise
        self._vrt = WarpedVRT(
            self._dataset,
            crs=crs,
            transform=transform,
            width=width,
            height=height,
            resampling=Resampling.bilinear,
            src_nodata=representable_nodata(header.nodata, header.dtypes[0]),
            nodata=np.nan,
            dtype="float32",
        )
        self._pixel = (abs(transform.a), abs(transform.e))
        self._metres = 1.0 if crs.is_projected else 111_320.0

    def read_elevation(self, window: Window) -> np.ndarray:
        """Elevation (h, w) float32 for a window; NaN outside the DEM or the scene."""
        out = np.full((int(window.height), int(window.width)), np.nan, dtype=np.float32)
        row0, col0 = int(window.row_off), int(window.col_off)
        r0, c0 = max(row0, 0), max(col0, 0)
        r1 = min(row0 + int(window.height), self._vrt.height)
        c1 = min(col0 + int(window.width), self._vrt.width)
        if r1 > r0 and c1 > c0:
            inner = Window(c0, r0, c1 - c0, r1 - r0)
            data = self._vrt.read(1, window=inner, out_dtype=np.float32)
            out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = data
        return out

    def read_slope(self, window: Window) -> np.ndarray:
        """Slope in degrees (h, w) for a window, computed with a one-pixel halo (no tile seams).

        Pixels outside the scene are NaN; at the scene's border the halo replicates the edge
        elevations, whatever part of the window lies beyond it.
        """
        row0, col0 = int(window.row_off), int(window.col_off)
        height, width = int(window.height), int(window.width)
        out = np.full((height, width), np.nan, dtype=np.float32)
        r0, c0 = max(row0, 0), max(col0, 0)
        r1, c1 = min(row0 + height, self._vrt.height), min(col0 + width, self._vrt.width)
        if r1 <= r0 or c1 <= c0:
            return out
        halo = Window(c0 - 1, r0 - 1, c1 - c0 + 2, r1 - r0 + 2)
        elevation = self.read_elevation(halo)
        # fill the halo outside the DEM or scene with edge values so border slopes stay finite
        valid = np.isfinite(elevation)
        if valid.any() and not valid.all():
            elevation = _fill_edges(elevation)
        x_size, y_size = (p * self._metres for p in self._pixel)
        slope = slope_degrees(elevation, x_size, y_size)[1:-1, 1:-1]
        out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = slope
        return out

    def close(self) -> None:
        """Close the DEM."""
        self._vrt.close()
        self._dataset.close()


def _fill_edges(elevation: np.ndarray) -> np.ndarray:
    """Replace NaN border rows/columns by their nearest finite neighbour row/column."""
    filled = elevation.copy()
    for axis in (0, 1):
        view = filled if axis == 0 else filled.T
        for index in (0, -1):
            line = view[index]
            neighbour = view[1] if index == 0 else view[-2]
            missing = ~np.isfinite(line)
            line[missing] = neighbour[missing]
    return filled
