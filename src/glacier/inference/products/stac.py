"""A STAC Item per predicted scene: ``<scene>.stac.json`` listing the maps, polygons and reports.

The item is read from the written files (grid, data types, nodata, band names), not from the
prediction's arguments, so it describes what is on disk. Asset hrefs are relative to the item
and it has no self link: the output folder can be moved or uploaded as a whole.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform as transform_points

from glacier.data.contract import BACKGROUND
from glacier.inference.engine import PredictionOutputs
from glacier.inference.output_names import CLASSES, STAC_ITEM
from glacier.inference.products.stac_assets import (
    StacAsset,
    add_file_asset,
    add_raster_assets,
    scene_files,
    scene_rasters,
    set_projection,
)
from glacier.utils.io import write_json_atomic

#: Lower bound of ``start_datetime`` when the acquisition date is unknown: Landsat 7's launch.
LANDSAT7_LAUNCH = datetime(1999, 4, 15, tzinfo=UTC)
EDGE_POINTS = 16  # points per footprint edge before reprojection to EPSG:4326
DECIMALS = 7  # of longitudes and latitudes in the item: about a centimetre

# Landsat Collection product ids (LE07_L1TP_140041_20001020_20170208_01_T1) and pre-collection
# scene ids (LE71400412000294SGS00: year and day of year)
_PRODUCT_ID = re.compile(r"L[COTEM]0\d_[A-Z0-9]{4}_\d{6}_(\d{8})_")
_SCENE_ID = re.compile(r"L[COTEM]\d\d{6}(\d{4})(\d{3})[A-Z]{3}\d{2}")


def scene_datetime(scene_id: str) -> datetime | None:
    """The acquisition date (UTC midnight) in a Landsat product or scene id, else None.

    Args:
        scene_id: A scene identifier, e.g. ``LE07_L1TP_140041_20001020_20170208_01_T1``.

    Returns:
        The date, or None when the id holds none.
    """
    try:
        if match := _PRODUCT_ID.search(scene_id):
            return datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
        if match := _SCENE_ID.search(scene_id):
            return datetime.strptime(match.group(1) + match.group(2), "%Y%j").replace(tzinfo=UTC)
    except ValueError:  # digits that are no date
        return None
    return None


def footprint_wgs84(
    crs: CRS, transform: rasterio.Affine, width: int, height: int, points: int = EDGE_POINTS
) -> shapely.Polygon:
    """The raster's outline in EPSG:4326, each edge densified to ``points`` before reprojecting.

    Args:
        crs: The raster's CRS.
        transform: Its geotransform.
        width: Columns.
        height: Rows.
        points: Points per edge.

    Returns:
        The footprint polygon (longitude, latitude), counterclockwise as GeoJSON wants.
    """
    up = np.linspace(0.0, 1.0, points, endpoint=False)  # along an edge, corner excluded
    down, zeros, ones = 1 - up, np.zeros(points), np.ones(points)
    cols = np.concatenate([up, ones, down, zeros]) * width  # top, right, bottom, left edges
    rows = np.concatenate([zeros, up, ones, down]) * height
    xs, ys = transform @ (cols, rows)
    lons, lats = transform_points(crs, "EPSG:4326", list(xs), list(ys))
    ring = shapely.Polygon(zip(lons, lats, strict=True))
    return shapely.geometry.polygon.orient(ring, sign=1.0)


def _rounded(coordinates: np.ndarray) -> np.ndarray:
    return np.round(coordinates, DECIMALS)


def _outward(bounds: tuple[float, float, float, float]) -> list[float]:
    """``bounds`` rounded to ``DECIMALS`` away from the box's centre: they still contain it."""
    scale = 10.0**DECIMALS
    west, south, east, north = bounds
    return [
        math.floor(west * scale) / scale,
        math.floor(south * scale) / scale,
        math.ceil(east * scale) / scale,
        math.ceil(north * scale) / scale,
    ]


def write_stac_item(
    scene_id: str,
    outputs: PredictionOutputs,
    polygons_path: Path | str,
    overlay_path: Path | str | None,
    metrics_path: Path | str | None,
    class_names: list[str],
    properties: Mapping[str, Any] | None = None,
    *,
    acquired: datetime | None = None,
    uncertainty_figure: Path | str | None = None,
    extra: Sequence[StacAsset] = (),
) -> Path:
    """Write ``<scene>.stac.json`` beside the outputs: a STAC Item listing them.

    The item's geometry and bbox are the raster footprint in EPSG:4326 (edges densified). Its
    ``datetime`` is ``acquired``, or the date in a Landsat scene id; when neither is known it is
    null and ``start_datetime``/``end_datetime`` bound the acquisition (Landsat 7's launch, the
    prediction time). ``created`` is always the prediction time.

    Args:
        scene_id: Scene identifier (the item id).
        outputs: The written rasters (COGs).
        polygons_path: The glacier polygons (GeoPackage).
        overlay_path: The overlay preview (PNG), if written.
        metrics_path: The evaluation metrics (JSON), if written.
        class_names: Predicted classes (value ``i + 1`` in the class map; 0 is background).
        properties: Extra item properties, e.g. ``glacier:checkpoint``, ``glacier:mc_samples``.
        acquired: Acquisition time of the scene, if known.
        uncertainty_figure: The uncertainty-quality figure (PNG), if drawn.
        extra: Further files to list (per-glacier tables...).

    Returns:
        The item's path.
    """
    folder = outputs.classes.parent
    item_path = folder / (outputs.classes.name.removesuffix(CLASSES) + STAC_ITEM)
    names = [BACKGROUND, *class_names]
    rasters = scene_rasters(outputs, names)
    grid = rasters["classes"].grid
    footprint = footprint_wgs84(grid["crs"], grid["transform"], grid["shape"][1], grid["shape"][0])
    created = datetime.now(UTC).replace(microsecond=0)
    acquired = acquired or scene_datetime(scene_id)
    item = pystac.Item(
        id=scene_id,
        geometry=shapely.geometry.mapping(shapely.transform(footprint, _rounded)),
        bbox=_outward(footprint.bounds),
        datetime=acquired,
        start_datetime=None if acquired else LANDSAT7_LAUNCH,
        end_datetime=None if acquired else created,
        properties={"glacier:classes": list(class_names), **(properties or {})},
    )
    item.common_metadata.created = created
    set_projection(item, grid)
    add_raster_assets(item, rasters, folder, names)
    files = scene_files(polygons_path, overlay_path, uncertainty_figure, metrics_path)
    for listed in [*files, *extra]:
        add_file_asset(item, listed, folder)
    write_json_atomic(item_path, item.to_dict(include_self_link=False))
    return item_path
