"""Footprints of raster grids and vector layers, and how much of a scene grid they cover."""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as transform_points

from glacier.data.raster.headers import RasterHeader, grid_box
from glacier.errors import GlacierFileError

_EDGE_POINTS = 21  # points per footprint edge when reprojecting it


def reproject_box(
    bounds: tuple[float, float, float, float], source: CRS | None, crs: CRS
) -> shapely.Geometry:
    """A (left, bottom, right, top) box of ``source`` as a polygon in ``crs``.

    Edges are densified before reprojection; points that cannot be projected are left out.

    Args:
        bounds: The box in ``source`` coordinates.
        source: Its CRS (None or equal to ``crs``: returned as it is).
        crs: Target CRS.

    Returns:
        A polygon (empty when fewer than three points could be projected).
    """
    box = shapely.box(*bounds)
    if source is None or source == crs or box.area == 0:
        return box
    ring = shapely.segmentize(box.exterior, box.length / (4 * _EDGE_POINTS))
    xy = shapely.get_coordinates(ring)
    xs, ys = transform_points(source, crs, xy[:, 0].tolist(), xy[:, 1].tolist())
    points = np.column_stack([xs, ys])
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < 3:
        return shapely.Polygon()
    return shapely.make_valid(shapely.Polygon(points))


def footprint_in(header: RasterHeader, crs: CRS) -> shapely.Geometry:
    """The raster's footprint in ``crs`` (see :func:`reproject_box`).

    Args:
        header: A georeferenced raster header.
        crs: Target CRS.

    Returns:
        A polygon.
    """
    box = grid_box(header.affine, header.width, header.height)
    return reproject_box(box.bounds, header.crs_object, crs)


def coverage(header: RasterHeader, crs: CRS, transform: Affine, width: int, height: int) -> float:
    """Fraction of a grid's area that a raster's footprint covers, from headers only.

    Args:
        header: The raster (e.g. a band file or a DEM).
        crs: Grid CRS.
        transform: Grid transform (north-up).
        width: Grid columns.
        height: Grid rows.

    Returns:
        A fraction in [0, 1]; 0 when they do not overlap.
    """
    grid = grid_box(transform, width, height)
    if grid.area == 0:
        return 0.0
    shared = footprint_in(header, crs).intersection(grid).area
    return float(min(1.0, shared / grid.area))


def on_grid(header: RasterHeader, grid: RasterHeader) -> bool:
    """Whether a file lies exactly on a scene grid (same CRS, transform and size)."""
    return (
        header.crs_object == grid.crs_object
        and header.affine.almost_equals(grid.affine)
        and (header.width, header.height) == (grid.width, grid.height)
    )


def band_file_coverage(header: RasterHeader, grid: RasterHeader, scene_id: str) -> float:
    """Fraction of a scene grid a band file covers; refuse a file that covers none of it.

    Args:
        header: The band file (georeferenced).
        grid: The file that sets the scene grid (the scene's first band file).
        scene_id: The scene, for messages.

    Returns:
        The covered fraction in (0, 1] (1 for a file on the grid).

    Raises:
        GlacierFileError: If the file does not overlap the scene grid at all.
    """
    if on_grid(header, grid):
        return 1.0
    crs = grid.crs_object
    assert crs is not None
    covered = coverage(header, crs, grid.affine, grid.width, grid.height)
    if covered <= 0:
        raise GlacierFileError(
            f"scene '{scene_id}' band file {header.path} does not overlap the scene grid set "
            f"by {grid.path} (bounds {grid_box(grid.affine, grid.width, grid.height).bounds} in "
            f"{crs.to_string()}); list band files of the same place and time in one scene"
        )
    return covered
