"""Burn class outlines onto a scene grid, find nodata pixels and the region's outside."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window

from glacier.data.labels.layers import choose_layer
from glacier.data.labels.outlines import ClassOutlines
from glacier.data.labels.scanline import burn_polygons
from glacier.data.raster import SceneReader
from glacier.data.spec import DataSpec, SceneSpec
from glacier.errors import GlacierInputError, require_file

STRIP_ROWS = 512


def burn_class(polygons: gpd.GeoSeries, reader: SceneReader) -> tuple[np.ndarray, int]:
    """Rasterize polygons (already in the scene CRS) onto the scene grid.

    Holes stay unburned and MultiPolygons are burned part by part; a pixel is in a polygon
    when its centre is: GDAL's rule (``rasterio.features.rasterize``), computed for all
    polygons at once by :func:`glacier.data.labels.scanline.burn_polygons`.

    Args:
        polygons: Polygons in the scene CRS.
        reader: The open scene (grid source).

    Returns:
        A (H, W) uint8 0/1 mask and the number of polygons touching the scene.
    """
    box = shapely.box(*reader.bounds)
    inside = polygons[polygons.intersects(box)]
    shape = (reader.height, reader.width)
    return burn_polygons(np.asarray(inside.values), reader.transform, shape), len(inside)


def nodata_mask(reader: SceneReader) -> np.ndarray:
    """Find pixels where any raw band is nodata, streaming row strips of the scene.

    Args:
        reader: The open scene.

    Returns:
        A (H, W) boolean array, True where nodata.
    """
    invalid = np.zeros((reader.height, reader.width), dtype=bool)
    for row in range(0, reader.height, STRIP_ROWS):
        rows = min(STRIP_ROWS, reader.height - row)
        strip = reader.read_raw(Window(0, row, reader.width, rows))
        invalid[row : row + rows] = np.isnan(strip).any(axis=0)
    return invalid


def outside_region(region: Path, reader: SceneReader, layer: str | None = None) -> np.ndarray:
    """Mark pixels outside the valid-area polygon(s) of ``region``.

    Args:
        region: Polygon file (any CRS).
        reader: The open scene.
        layer: Its layer (``data.region_layer``), required when it has several.

    Returns:
        A (H, W) boolean array, True outside the region.
    """
    what = "region polygon file (data.region)"
    require_file(region, what)
    layer = choose_layer(region, layer, "data.region_layer", what)
    shapes = gpd.read_file(region, layer=layer).geometry.to_crs(reader.crs)
    inside = np.zeros((reader.height, reader.width), dtype=np.uint8)
    if len(shapes):
        rasterize(((g, 1) for g in shapes.values), out=inside, transform=reader.transform)
    outside: np.ndarray = inside == 0
    return outside


def burn_labels(
    spec: DataSpec, scene: SceneSpec, outlines: ClassOutlines, reader: SceneReader
) -> tuple[np.ndarray, dict[str, int]]:
    """Burn every class's outlines onto a scene grid: (H, W, K) uint8 0/1 labels.

    Args:
        spec: The dataset description (classes, label files for messages).
        scene: The scene.
        outlines: Loaded class polygons.
        reader: The open scene (grid source).

    Returns:
        The labels and ``polygons_{class}`` counts of polygons touching the scene.

    Raises:
        GlacierInputError: If no outline polygon overlaps the scene.
    """
    channels, counts = [], {}
    for name in spec.classes:
        burned, count = burn_class(outlines.in_crs(name, reader.crs), reader)
        channels.append(burned)
        counts[f"polygons_{name}"] = count
    if not any(counts.values()):
        raise GlacierInputError(
            f"no outline polygon of {[str(s.path) for s in spec.labels]} overlaps scene "
            f"'{scene.id}' ({scene.sources[0].path}, bounds {reader.bounds} in {reader.crs})"
        )
    return np.stack(channels, axis=-1), counts
