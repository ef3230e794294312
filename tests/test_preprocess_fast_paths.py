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

    from glacier.data.labels.scanline import burn_polygons
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
    np.testing.assert_array_equal(burn_polygons(polygons, data.transform, shape), expected)
    assert 0 < expected.mean() < 1


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


def test_column_totals_summing_integer_channels_first_are_the_float64_ones() -> None:
    from glacier.data.preprocess.strips import _column_totals, integer_lead

    rng = np.random.default_rng(3)
    strip = rng.integers(0, 256, (6, 64, 90)).astype(np.float32)
    strip[2] = rng.integers(0, 65536, (64, 90))  # a 16-bit channel among the leading ones
    strip[4:] = rng.normal(0.0, 0.4, (2, 64, 90))  # indices: float32 values
    valid = rng.random((64, 90)) > 0.1
    strip[:, ~valid] = np.nan
    lead = integer_lead(["uint8", "uint8", "uint16", "uint8", "float16", "float16"])
    assert lead == 4
    count, image = _column_totals(strip, valid, lead)
    expected_count, expected_image = _column_totals(strip, valid)
    np.testing.assert_array_equal(count, expected_count)
    np.testing.assert_array_equal(image, expected_image)  # bit for bit
    assert integer_lead(["float32", "uint8"]) == 0
    assert integer_lead(["uint16"] * 300) == 256  # 257 × 65535 would pass 2²⁴


def test_range_sample_of_rows_at_once_is_the_sample_of_row_after_row() -> None:
    from glacier.data.preprocess.value_ranges import RangeSample

    rng = np.random.default_rng(4)
    lengths = rng.integers(0, 900, 400).tolist()
    pixels = rng.normal(size=(sum(lengths), 3))
    one_by_one, at_once = RangeSample(limit=500), RangeSample(limit=500)
    start = 0
    for block in range(0, len(lengths), 64):
        rows = lengths[block : block + 64]
        values = pixels[start : start + sum(rows)]
        at_once.update_rows(values, rows)
        offset = 0
        for row in rows:
            one_by_one.update(values[offset : offset + row])
            offset += row
        start += sum(rows)
    assert at_once.step == one_by_one.step > 1
    assert (at_once.seen, at_once.rows) == (one_by_one.seen, one_by_one.rows)
    np.testing.assert_array_equal(np.concatenate(at_once.parts), np.concatenate(one_by_one.parts))


def test_reader_says_which_channels_it_reads_as_stored_integers(tmp_path: Path) -> None:
    from raster_inputs import write_raster

    on_grid = write_raster(tmp_path / "a.tif", count=2, dtype="uint8")
    shifted = write_raster(tmp_path / "b.tif", dtype="uint8", transform=grid(0.5, 0.5))
    with_nodata = write_raster(tmp_path / "c.tif", value=51, dtype="uint16", nodata=51)
    sources = (BandSource(on_grid, ("red", "green")), BandSource(shifted, ("nir",)))
    scene = SceneSpec(id="s", sources=sources)
    with SceneReader(scene, derived=["ndvi"]) as reader:
        assert reader.integer_channels == [True, True, False, False]  # warped; derived
        assert not reader._never_nan
    scene = SceneSpec(id="s", sources=(BandSource(on_grid, ("red", "nir")),))
    with SceneReader(scene) as reader:
        assert reader.integer_channels == [True, True] and reader._never_nan
        stack, valid = reader.read_with_mask(Window(60, 50, 30, 30))  # past two edges
        np.testing.assert_array_equal(valid, finite_everywhere(stack))
        assert valid.sum() == 20 * 10
    scene = SceneSpec(id="s", sources=(BandSource(with_nodata, ("red",)),))
    with SceneReader(scene) as reader:  # band 1 holds 51, the nodata value: all invalid
        stack, valid = reader.read_with_mask(Window(0, 0, 8, 8))
        assert reader.integer_channels == [True] and not reader._never_nan and not valid.any()
