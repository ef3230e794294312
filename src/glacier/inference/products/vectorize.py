"""Class map → polygons per class with areas in km² (GeoPackage for QGIS)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.features import shapes
from rasterio.windows import Window

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.evaluation import pixel_area_km2
from glacier.utils.io import write_gpkg_atomic

EQUAL_AREA = "EPSG:6933"  # WGS 84 / NSIDC EASE-Grid 2.0 Global (equal area)
COLUMNS = ["class", "class_id", "area_km2", "geometry"]


def _area_crs(crs: rasterio.crs.CRS) -> rasterio.crs.CRS | str:
    """The scene CRS when projected (areas in its units), else a global equal-area CRS."""
    return crs if crs.is_projected else EQUAL_AREA


def vectorize_class_map(
    class_tif: Path,
    class_names: Sequence[str],
    min_area_km2: float = 0.0,
    simplify_tolerance_m: float = 0.0,
) -> gpd.GeoDataFrame:
    """Polygons of every predicted class (holes kept), with their area in km².

    The class map (uint8, one byte per pixel) is read whole; ``rasterio.features.shapes``
    traces pixel edges exactly, so polygon areas equal the raster's class areas before
    simplification.

    Args:
        class_tif: ``<scene>_classes.tif`` (0 background, i class i, 255 nodata).
        class_names: Class names in output order (background excluded).
        min_area_km2: Polygons smaller than this are dropped.
        simplify_tolerance_m: Simplification tolerance in metres (0 = exact pixel edges).

    Returns:
        Columns ``class``, ``class_id``, ``area_km2`` and ``geometry`` in the raster CRS.
    """
    with rasterio.open(class_tif) as src:
        classes = src.read(1)
        transform, crs = src.transform, src.crs
    records: list[tuple[str, int, shapely.Geometry]] = []
    wanted = (classes > 0) & (classes != IGNORE_INDEX)
    for geometry, value in shapes(classes, mask=wanted, transform=transform, connectivity=4):
        class_id = int(value)
        records.append((class_names[class_id - 1], class_id, shapely.geometry.shape(geometry)))
    frame = gpd.GeoDataFrame(
        {"class": [r[0] for r in records], "class_id": [r[1] for r in records]},
        geometry=[r[2] for r in records],
        crs=crs,
    )
    if frame.empty:
        return gpd.GeoDataFrame({c: [] for c in COLUMNS[:-1]}, geometry=[], crs=crs)[COLUMNS]
    projected = frame.to_crs(_area_crs(crs))
    if simplify_tolerance_m > 0:
        projected["geometry"] = projected.geometry.simplify(
            simplify_tolerance_m, preserve_topology=True
        )
    factor = projected.crs.axis_info[0].unit_conversion_factor if projected.crs else 1.0
    projected["area_km2"] = projected.geometry.area * factor**2 / 1e6
    projected = projected[projected["area_km2"] >= min_area_km2]
    result = projected.to_crs(crs) if projected.crs != crs else projected
    return result[COLUMNS].reset_index(drop=True)


def write_polygons(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write polygons as a GeoPackage (layer ``glaciers``) under a temporary name, then rename.

    Args:
        frame: Polygons from :func:`vectorize_class_map`.
        path: Output ``.gpkg``.

    Returns:
        ``path``.
    """
    return write_gpkg_atomic(frame, path, "glaciers")


def class_areas_km2(class_tif: Path, class_names: Sequence[str]) -> dict[str, float]:
    """Area of each class from pixel counts (read block by block).

    Args:
        class_tif: A class map GeoTIFF.
        class_names: Class names in output order (background excluded).

    Returns:
        ``{class: km²}``.
    """
    counts = np.zeros(256, dtype=np.int64)
    with rasterio.open(class_tif) as src:
        for _, window in src.block_windows(1):
            block_window: Window = window
            counts += np.bincount(src.read(1, window=block_window).ravel(), minlength=256)
        pixel = pixel_area_km2(src.transform, src.crs)
    return {name: float(counts[i] * pixel) for i, name in enumerate(class_names, start=1)}
