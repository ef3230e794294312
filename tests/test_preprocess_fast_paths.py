"""The fast paths of preprocessing write what the straightforward code wrote, byte for byte."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from raster_inputs import grid
from rasterio.windows import Window

from glacier.data.preprocess import slices_geojson
from glacier.data.raster import SceneReader, finite_everywhere
from glacier.data.spec import BandSource, SceneSpec


def geopandas_geojson(records: pd.DataFrame) -> str:
    """The footprints as GeoPandas wrote them before (boxes, segmentize, to_crs, to_json)."""
    frames = []
    for crs, group in records.groupby("crs", sort=False):
        boxes = shapely.box(group.x_min, group.y_min, group.x_max, group.y_max)
        frame = gpd.GeoDataFrame(group, geometry=list(boxes), crs=crs)
        frames.append(frame.set_geometry(frame.geometry.segmentize(1000.0)).to_crs("EPSG:4326"))
    merged = gpd.GeoDataFrame(pd.concat(frames), crs="EPSG:4326").sort_values(["scene", "slice"])
    return str(merged.to_json(drop_id=True))


def slice_records(scene: str, crs: str, x0: float, y0: float, step: float) -> pd.DataFrame:
    """Records of a 3×4 grid of windows, as the scene stage writes them."""
    rows = []
    for k in range(12):
        row, col = divmod(k, 4)
        left, top = x0 + col * step, y0 - row * step
        rows.append(
            {
                "col_off": col * 100,
                "crs": crs,
                "img_mean": 0.25 * k if k != 5 else np.nan,
                "mask_mean_glacier": k / 11,
                "nodata_frac": 0.0,
                "row_off": row * 100,
                "scene": scene,
                "size": 128,
                "slice": k,
                "x_max": left + 1.28 * step,
                "x_min": left,
                "y_max": top,
                "y_min": top - 1.28 * step,
            }
        )
    return pd.DataFrame(rows)


def test_footprints_geojson_is_what_geopandas_wrote() -> None:
    records = pd.concat(
        [
            slice_records("b_utm45", "EPSG:32645", 478000.0, 3108140.0, 3000.0),
            slice_records("a_utm44", "EPSG:32644", 300000.0, 3200000.0, 3660.0),
            slice_records("c_lonlat", "EPSG:4326", 86.5, 28.2, 0.03),
        ],
        ignore_index=True,
    ).sample(frac=1.0, random_state=0)  # records of several scenes, in no order
    text = slices_geojson(records)
    assert text == geopandas_geojson(records)
    assert '"img_mean": null' in text  # NaN as null


def test_integer_bands_read_as_gdal_converts_them_and_padding_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "rgb.tif"
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 50, 70), dtype=np.uint8)
    profile = {"driver": "GTiff", "width": 70, "height": 50, "count": 3, "dtype": "uint8"}
    profile |= {"crs": "EPSG:32645", "transform": grid(), "interleave": "pixel"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    scene = SceneSpec(id="s", sources=(BandSource(path, ("red", "green", "blue")),))
    window = Window(40, 20, 64, 64)  # reaches past the right and bottom edges
    with SceneReader(scene) as reader, rasterio.open(path) as src:
        stack, valid = reader.read_with_mask(window)
        expected = src.read(window=window, boundless=True, fill_value=0, out_dtype=np.float32)
    inside = np.zeros((64, 64), dtype=bool)
    inside[:30, :30] = True
    np.testing.assert_array_equal(stack[:, inside], expected[:, inside])
    assert np.isnan(stack[:, ~inside]).all()
    np.testing.assert_array_equal(valid, finite_everywhere(stack))
    np.testing.assert_array_equal(valid, inside)


def test_outlines_burn_as_rasterio_burns_shapely_geometries(tmp_path: Path) -> None:
    from rasterio.features import rasterize

    from glacier.data.labels.masks import polygon_shapes
    from glacier.data.spec.synthetic import generate_synthetic_dataset

    data = generate_synthetic_dataset(tmp_path, width=160, height=128, seed=0)
    outlines = shapely.make_valid(gpd.read_file(data.clean_ice).geometry.values)
    corner = [(478000.0, 3107000.0, 5.0), (479000.0, 3107000.0, 5.0), (478000.0, 3106000.0, 5.0)]
    # a hole, a MultiPolygon, one past the edge, a repaired bow-tie; an empty; a 3-D one
    polygonal = [p for p in outlines if p.geom_type in ("Polygon", "MultiPolygon")]
    polygons = np.array([*polygonal, shapely.Polygon(), shapely.Polygon(corner)], dtype=object)
    shape = (data.height, data.width)
    expected = np.zeros(shape, dtype=np.uint8)
    burnable = [(p, 1) for p in polygons if not p.is_empty]
    rasterize(burnable, out=expected, transform=data.transform, dtype=np.uint8)
    burned = np.zeros(shape, dtype=np.uint8)
    rasterize(polygon_shapes(polygons), out=burned, transform=data.transform, dtype=np.uint8)
    np.testing.assert_array_equal(burned, expected)
    assert 0 < expected.mean() < 1 and polygon_shapes(np.array([shapely.Polygon()])) == []


def test_window_bounds_are_rasterios_for_every_window_of_a_strip() -> None:
    import warnings

    from affine import Affine
    from rasterio.windows import bounds

    from glacier.data.preprocess.slicing import window_bounds

    cols = list(range(0, 5000, 122))
    transforms = [
        grid(),
        Affine(0.000269494585236, 0, 86.123456789, 0, -0.000269494585236, 28.987654321),
        Affine(30.0, 0.5, 478000.12, 0.25, -30.0, 3108140.7),  # rotated: every term counts
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # rasterio's `transform *`
        for transform in transforms:
            for row in (0, 122, 3904):
                expected = [bounds(Window(c, row, 128, 128), transform) for c in cols]
                assert window_bounds(transform, row, cols, 128) == expected
