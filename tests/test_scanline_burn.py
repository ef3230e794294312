"""Outlines burned by pixel centre with the vectorized scan line equal GDAL's, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import rasterize

from glacier.data.labels.scanline import burn_polygons

GRIDS = {
    "utm": Affine(30.0, 0.0, 478000.0, 0.0, -30.0, 3108140.0),
    "odd_origin": Affine(30.0, 0.0, 478013.37, 0.0, -30.0, 3108141.91),
    "degrees": Affine(0.000269494585236, 0.0, 86.123456789, 0.0, -0.000269494585236, 28.98765),
    "south_up": Affine(10.0, 0.0, 500000.0, 0.0, 10.0, 100000.0),
}


def gdal_burn(
    polygons: list[shapely.Geometry], transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """What ``rasterize`` burns (the shapely geometries handed over as they are)."""
    out = np.zeros(shape, dtype=np.uint8)
    shapes = [(p, 1) for p in polygons if not p.is_empty]
    if shapes:
        rasterize(shapes, out=out, transform=transform, dtype=np.uint8)
    return out


def snapped(rng: np.random.Generator, count: int, extent: float, step: float) -> np.ndarray:
    """Pixel coordinates on a grid of ``step`` (centres, edges and quarter pixels: ties)."""
    return np.round(rng.uniform(-0.1 * extent, 1.1 * extent, count) / step) * step


def random_polygons(
    rng: np.random.Generator, transform: Affine, shape: tuple[int, int], count: int
) -> list[shapely.Geometry]:
    """Stars, boxes with holes, MultiPolygons, slivers and rings on the centre lines."""
    height, width = shape
    polygons: list[shapely.Geometry] = []
    for k in range(count):
        step = [0.5, 0.25, 1.0, 0.0][k % 4]  # 0: anywhere
        n = int(rng.integers(3, 14))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.3, 0.4 * max(shape)) * rng.uniform(0.5, 1.0, n)
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        xs, ys = cx + radius * np.cos(angles), cy + radius * np.sin(angles)
        if step:
            xs, ys = np.round(xs / step) * step, np.round(ys / step) * step
        ring = [transform @ (x, y) for x, y in zip(xs, ys, strict=True)]
        polygon = shapely.Polygon(ring)
        if k % 5 == 0:  # a box on the centre lines with a hole, both with horizontal edges
            x0, y0 = snapped(rng, 2, min(width, height), 0.5)
            box = shapely.box(x0, y0, x0 + rng.integers(2, 20) + 0.5, y0 + rng.integers(2, 20))
            hole = shapely.box(x0 + 1, y0 + 0.5, x0 + 2.5, y0 + 1.5)
            polygon = shapely.Polygon(box.exterior.coords, [hole.exterior.coords])
            polygon = shapely.affinity.affine_transform(polygon, transform.to_shapely())
        if k % 7 == 0:
            moved = shapely.affinity.translate(polygon, 3 * transform.a)
            polygon = shapely.MultiPolygon([polygon, moved])
        polygons.append(shapely.make_valid(polygon) if not polygon.is_valid else polygon)
    return [p for p in polygons if p.geom_type in ("Polygon", "MultiPolygon")]


@pytest.mark.parametrize("grid", sorted(GRIDS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_outlines_burn_as_gdal_burns_them(grid: str, seed: int) -> None:
    transform, shape = GRIDS[grid], (61, 83)
    rng = np.random.default_rng(seed)
    polygons = random_polygons(rng, transform, shape, 60)
    for polygon in polygons:  # one by one: a mismatch names its polygon
        expected = gdal_burn([polygon], transform, shape)
        got = burn_polygons(np.array([polygon], dtype=object), transform, shape)
        assert np.array_equal(got, expected), polygon.wkt
    together = burn_polygons(np.array(polygons, dtype=object), transform, shape)
    assert np.array_equal(together, gdal_burn(polygons, transform, shape))
    assert 0 < together.mean() < 1


def test_edge_cases_burn_as_gdal_burns_them() -> None:
    transform, shape = GRIDS["utm"], (20, 30)
    on_grid = Affine.identity()
    cases = [
        shapely.box(0, 0, 30, 20),  # the whole grid, edges on pixel edges
        shapely.box(-100, -100, 100, 100),  # covering it from outside
        shapely.box(2.5, 2.5, 7.5, 7.5),  # every edge on a centre line
        shapely.Polygon([(5, 5.5), (5, 5.5), (9, 5.5), (9, 9), (5, 5.5)]),  # repeated vertex
        shapely.Polygon([(1, 1), (1.2, 1), (1.2, 1.2)]),  # smaller than a pixel
        shapely.box(10, 10, 10.5, 19),  # half a pixel wide: a column of ties
        shapely.box(40, 5, 50, 10),  # outside
    ]
    for polygon in cases:
        world = shapely.affinity.affine_transform(polygon, (transform * on_grid).to_shapely())
        expected = gdal_burn([world], transform, shape)
        got = burn_polygons(np.array([world], dtype=object), transform, shape)
        assert np.array_equal(got, expected), polygon.wkt
    empty = burn_polygons(np.array([shapely.Polygon()], dtype=object), transform, shape)
    assert not empty.any()
    with pytest.raises(ValueError, match="north-up"):
        burn_polygons(np.array(cases[:1], dtype=object), Affine(30, 1, 0, 0, -30, 0), shape)


def test_burning_in_small_batches_burns_the_same() -> None:
    transform, shape = GRIDS["utm"], (61, 83)
    polygons = np.array(random_polygons(np.random.default_rng(5), transform, shape, 40))
    whole = burn_polygons(polygons, transform, shape)
    assert np.array_equal(burn_polygons(polygons, transform, shape, batch_vertices=7), whole)
    assert np.array_equal(whole, gdal_burn(list(polygons), transform, shape))
