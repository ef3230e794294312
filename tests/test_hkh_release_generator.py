"""The HKH release miniature (tests/data/hkh_release.py) has the release's real properties."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from tests.data.hkh_release import (
    BAND_NAMES,
    DEFAULT_TILES,
    SLICE_PROPERTIES,
    HkhReleaseFiles,
    parse_slice_name,
    release_boxes,
    tile_shape,
    true_footprint,
    window_count,
    window_position,
    write_hkh_release,
)

PATCH, STEP = 64, 58
B = {name: i for i, name in enumerate(BAND_NAMES)}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> HkhReleaseFiles:
    return write_hkh_release(tmp_path_factory.mktemp("hkh"), patch_size=PATCH, step=STEP)


def read_tile(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_tiles_are_15_band_float32_native_utm_in_several_zones(release: HkhReleaseFiles) -> None:
    zones = set()
    for tile in release.tiles:
        assert tile.path.parent.name == "raster_data"
        assert tile.path.name == f"{tile.spec.name}.tif"
        with rasterio.open(tile.path) as src:
            assert src.count == 15 and src.dtypes == ("float32",) * 15
            assert src.descriptions == BAND_NAMES
            assert src.res == (30.0, 30.0) and src.nodata is None
            assert src.crs.to_epsg() == tile.spec.epsg
            zones.add(src.crs.to_epsg())
    assert {32643, 32645, 32647} <= zones


def test_tiles_zero_outside_scene_no_nan_and_release_index_formulas(
    release: HkhReleaseFiles,
) -> None:
    for tile in release.tiles:
        bands = read_tile(tile.path)
        assert not np.isnan(bands).any()  # NaN only appears in the slices (HKH border clip)
        zero = (bands == 0).all(axis=0)
        assert zero[0, 0] and zero[-1, -1] and zero.mean() > 0.1  # off-scene wedges
        valid = ~zero
        b2, b3, b4, b5 = (bands[B[n]][valid] for n in ("B2", "B3", "B4", "B5"))
        np.testing.assert_array_equal(bands[B["ndvi"]][valid], (b4 - b3) / (b4 + b3))
        np.testing.assert_array_equal(bands[B["ndsi"]][valid], (b5 - b2) / (b5 + b2))
        np.testing.assert_array_equal(bands[B["ndwi"]][valid], (b4 - b5) / (b4 + b5))
        dns = bands[: B["B8"] + 1][:, valid]
        assert dns.min() > 0 and dns.max() == 255 and (dns == np.round(dns)).all()
        assert np.isin(
            np.unique(bands[B["BQA"]][valid]),
            [672, 704, 752, 756, 760, 928, 932, 936, 960, 1696, 1700, 1704, 1728, 1732, 1736],
        ).all()
        # valid pixels that look like nodata in one channel: saturated snow, a flat lake
        assert ((bands[B["ndvi"]] == 0) & valid).any()
        assert ((bands[B["slope"]] == 0) & valid).any()
        assert bands[B["elevation"]][valid].min() > 3000


def test_slices_are_row_major_release_windows_with_nan_outside_hkh(
    release: HkhReleaseFiles,
) -> None:
    assert len(release.slice_images) == sum(t.n_rows * t.n_cols for t in release.tiles)
    by_index = {t.spec.index: t for t in release.tiles}
    for image_path, mask_path in zip(release.slice_images, release.slice_masks, strict=True):
        index, kind, k = parse_slice_name(image_path.name)
        assert kind == "img" and image_path.name == f"slice_{index}_img_{k:03}.npy"
        assert mask_path.name == f"slice_{index}_mask_{k:03}.npy"
        img, mask = np.load(image_path), np.load(mask_path)
        assert img.dtype == np.float32 and img.shape == (PATCH, PATCH, 15)
        assert mask.dtype == np.uint8 and mask.shape == (PATCH, PATCH, 3)
        tile = by_index[index]
        row, col = window_position(k, tile.width, PATCH, STEP)
        window = np.moveaxis(read_tile(tile.path)[:, row : row + PATCH, col : col + PATCH], 0, -1)
        nan = np.isnan(img)
        assert (nan == nan[..., :1]).all()  # NaN in every channel at once
        np.testing.assert_array_equal(img[~nan], window[~nan])
        assert ((mask[nan[..., 0]]) == 0).all()  # labels zeroed outside the HKH border
        np.testing.assert_array_equal(mask[..., 0], mask[..., 1] | mask[..., 2])
    assert release.all_nan_slices == ("slice_22_img_001.npy",)
    assert "slice_6_img_000.npy" in release.zero_corner_slices
    corners = np.load(release.root / "slices" / "slice_6_img_000.npy")[
        [0, 0, -1, -1], [0, -1, 0, -1]
    ]
    assert (corners == 0).all()
    # the release's labels are not masked by the scene edge: glacier over all-zero pixels
    img = np.load(release.root / "slices" / "slice_30_img_000.npy")
    mask = np.load(release.root / "slices" / "slice_30_mask_000.npy")
    assert (mask[..., 0][(img == 0).all(axis=-1)] == 1).any()


def test_slices_geojson_has_release_properties_and_defects(release: HkhReleaseFiles) -> None:
    raw = json.loads(release.slices_geojson.read_text())
    assert raw["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32643"
    assert "\\/datadrive\\/glaciers\\/" in release.slices_geojson.read_text()
    frame = gpd.read_file(release.slices_geojson)
    assert frame.crs.to_epsg() == 32643
    assert list(frame.columns) == [*SLICE_PROPERTIES, "geometry"]
    assert len(frame) == len(release.slice_images)
    by_index = {t.spec.index: t for t in release.tiles}
    for row, image_path in zip(frame.itertuples(), release.slice_images, strict=True):
        assert row.img_slice == f"/datadrive/glaciers/processed/slices/{image_path.name}"
        index, _, k = parse_slice_name(row.img_slice)
        tile = by_index[index]
        assert row.img_source == f"/datadrive/glaciers/unique_tiles/{tile.spec.name}.tif"
        assert row.mask_source == f"/datadrive/glaciers/processed/masks/mask_{index:02}.npy"
        img, mask = (
            np.load(image_path),
            np.load(release.slice_masks[0].parent / Path(row.mask_slice).name),
        )
        assert row.img_mean == pytest.approx(float(np.nan_to_num(img).mean()), rel=1e-6)
        for c in range(3):
            assert getattr(row, f"mask_mean_{c}") == pytest.approx(mask[..., c].mean())
        true = true_footprint(tile.path, k, patch_size=PATCH, step=STEP)
        assert true.crs == tile.crs
        declared = row.geometry.bounds
        assert not np.allclose(declared, true.bounds, atol=30)  # mirrored, step-sized, stretched
        with rasterio.open(tile.path) as src:
            expected = release_boxes(tuple(src.bounds), src.width, src.height, STEP)[k]
        np.testing.assert_allclose(declared, expected, rtol=0, atol=1e-6)
        # read in the declared EPSG:32643, boxes of tiles in other zones land far away
        declared_at = gpd.GeoSeries([row.geometry], crs=32643).to_crs(4326).iloc[0].centroid
        true_at = gpd.GeoSeries([shapely.box(*true.bounds)], crs=true.crs).to_crs(4326)
        distance = declared_at.distance(true_at.iloc[0].centroid)  # degrees
        assert (distance > 3) == (tile.spec.epsg != 32643)
    # mirrored north–south: the first row of boxes sits at the tile's south edge
    tile = release.tile("LE07_134040_20070922")
    first = frame[frame.img_slice.str.contains("slice_30_img_000")].geometry.iloc[0].bounds
    with rasterio.open(tile.path) as src:
        assert first[1] == pytest.approx(src.bounds.bottom)
        assert true_footprint(tile.path, 0, patch_size=PATCH, step=STEP).bounds[3] == src.bounds.top


def test_vectors_are_icimod_style_outlines_in_wgs84(release: HkhReleaseFiles) -> None:
    hkh = gpd.read_file(release.hkh_shp)
    assert hkh.crs.to_epsg() == 4326
    assert {"Glaciers", "GLIMS_ID"} <= set(hkh.columns)
    assert set(hkh["Glaciers"]) == {"Clean Ice", "Debris covered"}
    assert hkh["GLIMS_ID"].str.fullmatch(r"G\d{6}E\d{5}N").all()
    for name in ("hkh", "clean", "debris"):
        for ext in (".shp", ".dbf", ".shx", ".prj"):
            assert (release.hkh_shp.parent / f"{name}{ext}").exists()
    clean, debris = gpd.read_file(release.clean_shp), gpd.read_file(release.debris_shp)
    assert (clean["Glaciers"] == "Clean Ice").all() and (
        debris["Glaciers"] == "Debris covered"
    ).all()
    assert len(clean) + len(debris) == len(hkh)
    assert set(clean["GLIMS_ID"]) & set(debris["GLIMS_ID"])  # clean part + debris tongue
    assert (hkh.geom_type == "MultiPolygon").any()
    assert any(len(g.interiors) for g in hkh.geometry if g.geom_type == "Polygon")
    for tile in release.tiles:  # every tile has outlines over it
        with rasterio.open(tile.path) as src:
            footprint = gpd.GeoSeries([shapely.box(*src.bounds)], crs=src.crs).to_crs(4326)
        assert hkh.intersects(footprint.iloc[0]).any()
    with (release.masks_dir / "mask_metadata.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == [t.spec.index for t in release.tiles]


def test_splits_are_imputed_normalized_copies(release: HkhReleaseFiles) -> None:
    assert set(release.splits) == {"train", "dev", "test"}
    for split, images in release.splits.items():
        assert images
        for path in images:
            assert path.parent == release.root / "splits" / split
            assert (release.root / "slices" / path.name).exists()  # same basename as the slice
            img = np.load(path)
            mask = np.load(Path(str(path).replace("_img_", "_mask_")))
            raw = np.load(release.root / "slices" / path.name)
            assert img.shape == raw.shape and not np.isnan(img).any()
            assert img.min() < 0 and abs(float(img.mean())) < abs(float(np.nanmean(raw)))
            assert mask.shape == (PATCH, PATCH, 3) and (mask.sum(axis=-1) == 1).all()
            raw_mask = np.load(release.root / "slices" / path.name.replace("_img_", "_mask_"))
            np.testing.assert_array_equal(mask[..., :2], raw_mask[..., 1:])


def test_release_box_formula_reproduces_real_slices_geojson_features() -> None:
    # The two real features of stactools-packages/lila-hkh-glacier (feature/slices,
    # tests/data-files/slices.geojson); tile grids recovered from them (odd multiples of 15 m).
    real = {
        (361425.0, 3723705.0, 7849, 7123, 72): (
            543608.211009174352512,
            3784433.525695029646158,
            558790.14525993890129,
            3799615.657118787057698,
        ),
        (506055.0, 3725775.0, 7771, 7036, 62): (
            536418.907335907337256,
            3786503.631130063906312,
            551600.861003861064091,
            3801685.78891257988289,
        ),
    }
    for (left, bottom, width, height, k), box in real.items():
        bounds = (left, bottom, left + 30 * width, bottom + 30 * height)
        np.testing.assert_allclose(release_boxes(bounds, width, height)[k], box, atol=1e-6)
        assert window_count(width) == 15  # k → (row, col) = divmod(k, 15)


def test_default_layout_is_the_release_windowing() -> None:
    spec = DEFAULT_TILES[1]
    assert tile_shape(spec) == (1030, 1100)
    assert window_count(1030) == window_count(1100) == 2
    assert window_position(3, 1100) == (506, 506)
    assert [t.epsg for t in DEFAULT_TILES] == [32643, 32645, 32647]
