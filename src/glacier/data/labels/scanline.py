"""Polygons burned onto a north-up grid by pixel centre: GDAL's scan-line rule, vectorized.

GDAL's rasterizer (``rasterio.features.rasterize``, ``all_touched=False``) walks, for every
polygon, every row of its extent and every edge of its rings: rows × vertices per polygon, and
a Python tuple per vertex to hand it the geometry. Here every edge meets only the rows it
crosses, all polygons at once, with the same arithmetic:

- vertices go to pixel coordinates through GDAL's inverse geotransform (``GDALInvGeoTransform``
  for a north-up grid: ``x_px = -c / a + x * (1 / a) + y * 0``);
- an edge crosses row ``y`` when ``y1 <= y + 0.5 < y2`` (its ends sorted by y), at
  ``x = (y + 0.5 - y1) * (x2 - x1) / (y2 - y1) + x1``, which rounds to column
  ``floor(x + 0.5)``;
- per polygon (its exterior and holes together) and row, the sorted crossings pair up, and
  each pair ``(a, b)`` burns columns ``a … b - 1``; an odd last crossing burns nothing;
- an edge lying on a row's centre line, walked right to left, burns its own columns; GDAL
  walks every ring clockwise in the CRS (it reverses the others), so that is each ring's
  bottom edge.

GDAL computes the same with the scene cut into row chunks when it does not fit its cache
(``GDAL_CACHEMAX``); there, a vertex far above a chunk may round differently after the shift.
The tests burn real and generated outlines both ways and compare every pixel.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import shapely
from affine import Affine

BAND_ROWS = 256  # rows burned at a time (their +1/-1 marks: 8 bytes a pixel)
BATCH_VERTICES = 1 << 20  # vertices burned at a time (their edges' crossings: ~100 B each)


def is_north_up(transform: Affine) -> bool:
    """Whether ``transform`` has no rotation (what :func:`burn_polygons` handles)."""
    return transform.b == 0 and transform.d == 0 and transform.a != 0 and transform.e != 0


def burn_polygons(
    polygons: np.ndarray,
    transform: Affine,
    shape: tuple[int, int],
    batch_vertices: int = BATCH_VERTICES,
) -> np.ndarray:
    """(H, W) uint8 mask: 1 where a pixel's centre is inside one of ``polygons``.

    Args:
        polygons: Shapely Polygons (MultiPolygons burned part by part), in the grid's CRS.
        transform: The grid's north-up transform.
        shape: The grid's rows and columns.
        batch_vertices: Polygons are burned in batches of about this many vertices (memory
            stays bounded for a region's whole inventory).

    Returns:
        The mask, as ``rasterize(polygons, out_shape=shape, transform=transform)`` makes it.

    Raises:
        ValueError: If ``transform`` is rotated.
    """
    if not is_north_up(transform):
        raise ValueError(f"burn_polygons needs a north-up transform, got {transform!r}")
    height, width = shape
    mask = np.zeros(shape, dtype=np.uint8)
    parts = shapely.get_parts(np.asarray(polygons, dtype=object))
    parts = parts[~shapely.is_empty(parts)]
    ends = np.cumsum(shapely.get_num_coordinates(parts))
    first = 0
    while first < len(parts):  # a batch: at least one polygon, about batch_vertices vertices
        last = max(first + 1, int(np.searchsorted(ends, ends[first] + batch_vertices)))
        x, y, polygon, turned = _pixel_vertices(parts[first:last], transform)
        rows, columns, horizontal = _crossings(x, y, polygon, turned, height)
        _burn_spans(mask, *_paired_spans(rows, columns, width))
        _burn_spans(mask, *horizontal)
        first = last
    return mask


def _pixel_vertices(
    parts: np.ndarray, transform: Affine
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every ring's vertices in pixel coordinates, each vertex's polygon, the turned rings.

    Returns:
        ``(x, y, polygon, turned)``: the last vertex of every ring has polygon ``-1`` (no
        edge starts there); ``turned`` marks the vertices of rings GDAL walks backwards (it
        walks every ring clockwise in the CRS; only edges on a centre line notice).
    """
    _, coords, (ring_offsets, part_offsets) = shapely.to_ragged_array(parts, include_z=False)
    a, _, c, _, e, f = transform[:6]
    inverse = (-c / a, 1.0 / a, 0.0, -f / e, 0.0, 1.0 / e)  # GDALInvGeoTransform, north-up
    world_x, world_y = coords[:, 0], coords[:, 1]
    x = inverse[0] + world_x * inverse[1] + world_y * inverse[2]
    y = inverse[3] + world_x * inverse[4] + world_y * inverse[5]
    ring_sizes = np.diff(ring_offsets)
    part_of_ring = np.repeat(np.arange(len(part_offsets) - 1), np.diff(part_offsets))
    polygon = np.repeat(part_of_ring, ring_sizes)
    polygon[ring_offsets[1:] - 1] = -1  # a ring's last vertex closes it: no edge starts there
    start = np.flatnonzero(polygon >= 0)
    ring = np.repeat(np.arange(len(ring_sizes)), ring_sizes)[start]
    twice_area = np.bincount(
        ring, x[start] * y[start + 1] - x[start + 1] * y[start], minlength=len(ring_sizes)
    )
    clockwise = twice_area * np.sign(a * e) < 0  # in the CRS: the grid may flip y
    turned = np.repeat(~clockwise, ring_sizes)
    return x, y, polygon, turned


def _crossings(
    x: np.ndarray, y: np.ndarray, polygon: np.ndarray, turned: np.ndarray, height: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Row keys and columns of every edge's crossings; the horizontal edges' spans.

    Returns:
        ``(keys, columns, (rows, starts, stops))``: each crossing's ``polygon * height +
        row`` and rounded column; the rows and column spans (``start … stop - 1``) of edges
        lying on a row's centre line, walked right to left.
    """
    start = np.flatnonzero(polygon >= 0)
    x1, y1, x2, y2 = x[start], y[start], x[start + 1], y[start + 1]
    owner = polygon[start]
    flat = y1 == y2
    leftward = np.where(turned[start], x2 > x1, x1 > x2)[flat]
    horizontal = _horizontal_spans(x1[flat], y1[flat], x2[flat], leftward, height)
    down = y1 > y2  # order each edge's ends by y, as GDAL does
    low_y, high_y = np.where(down, y2, y1), np.where(down, y1, y2)
    low_x, high_x = np.where(down, x2, x1), np.where(down, x1, x2)
    keep = ~flat & (high_y > 0.5) & (low_y <= height - 0.5)
    low_y, high_y, low_x, high_x, owner = (v[keep] for v in (low_y, high_y, low_x, high_x, owner))
    first = np.clip(np.floor(low_y - 0.5), 0, height - 1).astype(np.int64)
    last = np.clip(np.ceil(high_y - 0.5), 0, height - 1).astype(np.int64)
    count = last - first + 1
    edge = np.repeat(np.arange(len(count)), count)
    row = first[edge] + (np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count))
    centre = row + 0.5
    crossing = (low_y[edge] <= centre) & (centre < high_y[edge])
    edge, centre, row = edge[crossing], centre[crossing], row[crossing]
    dy1, dx1 = low_y[edge], low_x[edge]
    at = (centre - dy1) * (high_x[edge] - dx1) / (high_y[edge] - dy1) + dx1
    columns = np.floor(at + 0.5)
    return owner[edge] * height + row, columns, horizontal


def _horizontal_spans(
    x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, leftward: np.ndarray, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spans of edges on a row's centre line walked right to left (GDAL fills those alone)."""
    row = y1 - 0.5
    on_centre = leftward & (row == np.floor(row)) & (row >= 0) & (row < height)
    low, high = np.minimum(x1, x2)[on_centre], np.maximum(x1, x2)[on_centre]
    return row[on_centre].astype(np.int64), np.floor(low + 0.5), np.floor(high + 0.5)


def _paired_spans(
    keys: np.ndarray, columns: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and column spans of each polygon row's sorted crossings, taken in pairs."""
    # clipped to [-1, width + 1] (order kept), the columns fit one sort key with the row
    clipped = np.clip(columns, -1, width + 1).astype(np.int64) + 1
    order = np.sort(keys * (width + 3) + clipped)
    keys, clipped = np.divmod(order, width + 3)
    group_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    position = np.arange(len(keys)) - np.repeat(group_start, np.diff(np.r_[group_start, len(keys)]))
    first = np.flatnonzero((position % 2 == 0)[:-1] & (keys[1:] == keys[:-1]))
    return keys[first], clipped[first] - 1.0, clipped[first + 1] - 1.0


def _burn_spans(mask: np.ndarray, keys: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> None:
    """Set columns ``start … stop - 1`` (clipped to the grid) of each span's row to 1.

    ``keys`` are rows, or ``polygon * height + row`` (the row is the remainder). Spans are
    summed as +1/-1 marks along each row, :data:`BAND_ROWS` rows at a time.
    """
    height, width = mask.shape
    rows = keys % height
    first = np.maximum(starts, 0).astype(np.int64)
    stop = np.minimum(stops, width).astype(np.int64)
    burned = (starts <= width - 1) & (stops > 0) & (first < stop)
    order = np.argsort(rows[burned], kind="stable")
    rows, first, stop = rows[burned][order], first[burned][order], stop[burned][order]
    bounds = np.searchsorted(rows, np.arange(0, height + BAND_ROWS, BAND_ROWS))
    for top, (a, b) in zip(range(0, height, BAND_ROWS), pairwise(bounds), strict=True):
        if a == b:
            continue
        size = min(BAND_ROWS, height - top) * (width + 1)
        local = (rows[a:b] - top) * (width + 1)
        marks = np.bincount(local + first[a:b], minlength=size)
        marks -= np.bincount(local + stop[a:b], minlength=size)
        inside = np.cumsum(marks.reshape(-1, width + 1), axis=1)[:, :width] > 0
        mask[top : top + len(inside)] |= inside.view(np.uint8)
