"""Prediction outputs are Cloud-Optimized GeoTIFFs, published atomically, listed in a STAC Item."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import shapely
import torch
from rasterio.transform import from_origin
from rasterio.warp import transform_geom
from rio_cogeo.cogeo import cog_validate
from scene_files import write_scene
from torch import nn

import glacier.inference.engine.writer as outputs_module
from glacier.data.raster import SceneReader
from glacier.data.spec import BandSource, SceneSpec
from glacier.inference.engine import COG_MEDIA_TYPE, PredictionOutputs
from glacier.inference.engine.cog import to_cog
from glacier.inference.engine.mapper import predict_scene
from glacier.inference.products.stac import scene_datetime, write_stac_item
from glacier.inference.products.vectorize import vectorize_class_map, write_polygons
from glacier.models import Normalizer

BANDS = ("red", "green", "blue", "nir")
CLASSES = ["clean_ice", "debris"]
WIDTH, HEIGHT = 600, 500
LANDSAT_ID = "LE07_L1TP_140041_20001020_20170208_01_T1"


def model() -> nn.Module:
    """A 1×1-conv model with dropout: deterministic without MC, seeded with it."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(4, 8, 1), nn.ReLU(), nn.Dropout2d(0.3), nn.Conv2d(8, 3, 1)]
    return nn.Sequential(Normalizer([0.3] * 4, [0.2] * 4), *layers)


def predict(scene: Path, prefix: Path, **kwargs: object) -> PredictionOutputs:
    with SceneReader(SceneSpec(id="t", sources=(BandSource(path=scene, bands=BANDS),))) as reader:
        return predict_scene(
            model(),
            reader,
            channel_indices=[0, 1, 2, 3],
            class_names=CLASSES,
            out_prefix=prefix,
            tile_size=128,
            overlap=16,
            **kwargs,  # type: ignore[arg-type]
        )


def plain_copy(src: Path, dst: Path, resampling: str, **kwargs: object) -> Path:
    """Stands in for the COG conversion: the streamed GeoTIFF as it was."""
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_scene(tmp_path_factory.mktemp("scene") / "scene.tif", WIDTH, HEIGHT)
    with rasterio.open(path, "r+") as dst:
        data = dst.read()
        data[:, :40, :70] = np.nan  # a nodata corner
        dst.write(data)
    return path


def paths(outputs: PredictionOutputs) -> list[Path]:
    return [p for p in (outputs.classes, outputs.probs, outputs.uncertainty) if p]


def hidden_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or "partial" in p.name]


@pytest.mark.parametrize("probabilities", ["percent", "float32"])
def test_every_output_is_a_cog_identical_to_the_streamed_file(
    tmp_path: Path, scene: Path, monkeypatch: pytest.MonkeyPatch, probabilities: str
) -> None:
    cog = predict(scene, tmp_path / "cog" / "s", mc_samples=2, probabilities=probabilities)
    with monkeypatch.context() as patch:
        patch.setattr(outputs_module, "to_cog", plain_copy)
        plain = predict(scene, tmp_path / "plain" / "s", mc_samples=2, probabilities=probabilities)
    assert cog.uncertainty is not None and len(paths(cog)) == len(paths(plain)) == 3
    for path, reference in zip(paths(cog), paths(plain), strict=True):
        valid, errors, warnings = cog_validate(path, quiet=True)
        assert valid and errors == [] and warnings == [], (path.name, errors, warnings)
        # the streamed file is tiled, so it passes too, but is flagged for lacking overviews
        assert "internal overviews" in " ".join(cog_validate(reference, quiet=True)[2])
        with rasterio.open(path) as out, rasterio.open(reference) as ref:
            assert out.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert "LAYOUT" not in ref.tags(ns="IMAGE_STRUCTURE")
            assert out.compression == ref.compression == rasterio.enums.Compression.zstd
            assert out.block_shapes[0] == (256, 256)
            assert (out.crs, out.transform, out.shape) == (ref.crs, ref.transform, ref.shape)
            assert out.dtypes == ref.dtypes
            np.testing.assert_array_equal(out.nodatavals, ref.nodatavals)  # NaN == NaN here
            assert out.descriptions == ref.descriptions and out.units == ref.units
            # halving down to the first level that fits in one 256-pixel block
            assert out.overviews(1) == [2, 4] and ref.overviews(1) == []
            assert max(-(-WIDTH // 4), -(-HEIGHT // 4)) <= 256 < max(WIDTH // 2, HEIGHT // 2)
            np.testing.assert_array_equal(out.read(), ref.read())  # NaN-aware, bit for bit
    with rasterio.open(cog.probs) as out:
        assert out.descriptions == ("background", *CLASSES)
        assert out.units == (("%",) * 3 if probabilities == "percent" else (None,) * 3)
    assert hidden_leftovers(tmp_path / "cog") == []


def test_class_overviews_hold_classes_and_probability_overviews_are_means(
    tmp_path: Path, scene: Path
) -> None:
    outputs = predict(scene, tmp_path / "s", probabilities="float32")
    with rasterio.open(outputs.classes) as full, rasterio.open(outputs.probs) as probs:
        classes, floats = full.read(1), probs.read()
    with rasterio.open(outputs.classes, overview_level=0) as over:
        assert over.shape == (HEIGHT // 2, WIDTH // 2)
        coarse = over.read(1)
    assert set(np.unique(coarse)) <= {0, 1, 2, 255}  # values stay classes, never blends
    assert set(np.unique(coarse)) >= {1, 255}
    assert (coarse[:20, :35] == 255).all()  # the nodata corner stays nodata
    blocks = classes.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(HEIGHT // 2, WIDTH // 2, 4)
    uniform = (blocks == blocks[..., :1]).all(axis=-1)
    np.testing.assert_array_equal(coarse[uniform], blocks[..., 0][uniform])
    with rasterio.open(outputs.probs, overview_level=0) as over:
        coarse_probs = over.read()
    means = floats.reshape(3, HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(2, 4))
    valid = np.isfinite(means)
    np.testing.assert_allclose(coarse_probs[valid], means[valid], atol=1e-6)
    assert np.isnan(coarse_probs[:, :20, :35]).all()


def write_raster(path: Path, data: np.ndarray, nodata: float) -> Path:
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "nodata": nodata,
        "crs": "EPSG:32645",
        "transform": from_origin(478000, 3108140, 30, 30),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_class_overviews_take_the_majority_and_percent_overviews_skip_nodata(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    height, width = 512, 768
    majority = rng.integers(0, 3, (height // 2, width // 2)).astype(np.uint8)
    classes = np.repeat(np.repeat(majority, 2, axis=0), 2, axis=1)
    corner = rng.integers(0, 4, majority.shape)  # one pixel of each 2×2 block, anywhere
    rows = np.arange(height // 2)[:, None] * 2 + corner // 2
    cols = np.arange(width // 2)[None, :] * 2 + corner % 2
    classes[rows, cols] = (majority + 1) % 3  # is outvoted (nearest would keep ~1/4 of them)
    classes[:64, :64] = 255
    path = to_cog(write_raster(tmp_path / "c.tif", classes[None], 255), tmp_path / "cc.tif", "mode")
    with rasterio.open(path, overview_level=0) as over:
        coarse = over.read(1)
    np.testing.assert_array_equal(coarse[32:], majority[32:])
    assert (coarse[:32, :32] == 255).all()

    percent = rng.integers(0, 101, (2, height, width)).astype(np.uint8)
    percent[:, 10, 11] = 255  # one nodata pixel: left out of its block's mean
    source = write_raster(tmp_path / "p.tif", percent, 255)
    path = to_cog(source, tmp_path / "pc.tif", "average")
    with rasterio.open(path, overview_level=0) as over:
        coarse = over.read().astype(float)
    means = percent.reshape(2, height // 2, 2, width // 2, 2).astype(float).mean(axis=(2, 4))
    means[:, 5, 5] = percent[:, 10:12, 10:12].reshape(2, 4)[:, [0, 2, 3]].mean(axis=1)
    assert np.abs(coarse - means).max() <= 0.5 + 1e-9  # rounded to the nearest percent


def test_an_interrupted_scene_leaves_no_file_and_keeps_the_last_complete_one(
    tmp_path: Path, scene: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = tmp_path / "s"
    calls: list[Path] = []

    def killed_on_the_second_file(src: Path, dst: Path, resampling: str, **kw: object) -> Path:
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return to_cog(src, dst, resampling, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(outputs_module, "to_cog", killed_on_the_second_file)
    with pytest.raises(KeyboardInterrupt):
        predict(scene, prefix, mc_samples=2)
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []  # no final file, no leftovers

    monkeypatch.undo()
    first = predict(scene, prefix)
    before = {p: p.read_bytes() for p in paths(first)}
    monkeypatch.setattr(outputs_module, "to_cog", killed_on_the_second_file)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        predict(scene, prefix, probabilities="float32")
    assert {p: p.read_bytes() for p in paths(first)} == before  # the old maps, untouched
    assert hidden_leftovers(tmp_path) == []


def test_scene_dates_come_from_landsat_ids() -> None:
    assert scene_datetime(LANDSAT_ID) == datetime.fromisoformat("2000-10-20T00:00:00+00:00")
    assert scene_datetime("LE71400412000294SGS00") == datetime.fromisoformat(
        "2000-10-20T00:00:00+00:00"
    )
    assert scene_datetime("everest") is None
    assert scene_datetime("LE07_L1TP_140041_20001340_20170208_01_T1") is None  # no such day


def make_item(tmp_path: Path, scene: Path, scene_id: str, with_extras: bool) -> dict:
    folder = tmp_path / "maps"
    outputs = predict(scene, folder / scene_id, mc_samples=2 if with_extras else 0)
    polygons = write_polygons(
        vectorize_class_map(outputs.classes, CLASSES), folder / f"{scene_id}_glaciers.gpkg"
    )
    overlay = metrics = None
    if with_extras:
        overlay = folder / f"{scene_id}_overlay.png"
        overlay.write_bytes(b"\x89PNG")
        metrics = folder / f"{scene_id}_metrics.json"
        metrics.write_text("{}")
    item_path = write_stac_item(
        scene_id,
        outputs,
        polygons,
        overlay,
        metrics,
        CLASSES,
        {"glacier:checkpoint": "best.ckpt", "glacier:mc_samples": 2 if with_extras else 0},
    )
    assert item_path == folder / f"{scene_id}.stac.json"
    return dict(json.loads(item_path.read_text()))


def test_the_stac_item_lists_every_asset_with_its_grid_and_bands(
    tmp_path: Path, scene: Path
) -> None:
    item = make_item(tmp_path, scene, LANDSAT_ID, with_extras=True)
    folder = tmp_path / "maps"
    assert item["type"] == "Feature" and item["stac_version"] == "1.1.0"
    assert item["id"] == LANDSAT_ID and item["links"] == []  # no absolute self link
    extensions = {uri.split("/")[3]: uri for uri in item["stac_extensions"]}
    assert extensions == {
        "projection": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
        "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        "classification": "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    }
    assets = item["assets"]
    expected = {
        "classes": (f"{LANDSAT_ID}_classes.tif", COG_MEDIA_TYPE, ["data"]),
        "probs": (f"{LANDSAT_ID}_probs.tif", COG_MEDIA_TYPE, ["data"]),
        "uncertainty": (f"{LANDSAT_ID}_uncertainty.tif", COG_MEDIA_TYPE, ["data"]),
        "polygons": (f"{LANDSAT_ID}_glaciers.gpkg", "application/geopackage+sqlite3", ["data"]),
        "overlay": (f"{LANDSAT_ID}_overlay.png", "image/png", ["overview"]),
        "metrics": (f"{LANDSAT_ID}_metrics.json", "application/json", ["metadata"]),
    }
    assert set(assets) == set(expected)
    for key, (name, media_type, roles) in expected.items():
        asset = assets[key]
        assert asset["href"] == f"./{name}" and (folder / asset["href"]).is_file()
        assert asset["type"] == media_type and asset["roles"] == roles and asset["title"]

    props = item["properties"]
    assert props["datetime"] == "2000-10-20T00:00:00Z" and "start_datetime" not in props
    assert props["glacier:classes"] == CLASSES and props["glacier:checkpoint"] == "best.ckpt"
    assert props["glacier:mc_samples"] == 2 and props["created"].endswith("Z")
    with rasterio.open(folder / assets["classes"]["href"]) as src:
        crs, transform, bounds = src.crs, src.transform, src.bounds
        assert props["proj:code"] == "EPSG:32645" and crs == rasterio.crs.CRS.from_epsg(32645)
        assert props["proj:bbox"] == list(bounds)
    for key in ("classes", "probs", "uncertainty"):
        assert assets[key]["proj:shape"] == [HEIGHT, WIDTH]
        assert assets[key]["proj:transform"] == list(transform)[:6]

    (classes_band,) = assets["classes"]["raster:bands"]
    assert classes_band["data_type"] == "uint8" and classes_band["nodata"] == 255
    assert assets["classes"]["classification:classes"] == [
        {"value": 0, "name": "background", "title": "Background"},
        {"value": 1, "name": "clean_ice", "title": "Clean Ice"},
        {"value": 2, "name": "debris", "title": "Debris"},
        {"value": 255, "name": "nodata", "title": "No data", "nodata": True},
    ]
    probs_bands = assets["probs"]["raster:bands"]
    assert [band["name"] for band in probs_bands] == ["background", *CLASSES]
    assert all(
        (band["data_type"], band["nodata"], band["unit"]) == ("uint8", 255, "%")
        for band in probs_bands
    )
    (spread,) = assets["uncertainty"]["raster:bands"]
    assert spread["data_type"] == "float32" and spread["nodata"] == "nan"

    # geometry and bbox in EPSG:4326 contain the raster footprint, corners and curved edges
    geometry = shapely.geometry.shape(item["geometry"])
    assert geometry.is_valid and geometry.exterior.is_ccw
    outline = shapely.box(*bounds).segmentize((bounds[2] - bounds[0]) / 200)
    lonlat = shapely.geometry.shape(transform_geom(crs, "EPSG:4326", outline))
    west, south, east, north = item["bbox"]
    assert west <= lonlat.bounds[0] and south <= lonlat.bounds[1]
    assert east >= lonlat.bounds[2] and north >= lonlat.bounds[3]
    assert shapely.box(*item["bbox"]).area < lonlat.area * 1.01
    assert geometry.symmetric_difference(lonlat).area < 1e-4 * lonlat.area
    assert 86.7 < west < east < 87.0 and 27.9 < south < north < 28.2

    round_trip = pystac.Item.from_dict(item)
    assert round_trip.datetime is not None and set(round_trip.assets) == set(expected)


def test_the_stac_item_of_an_undated_scene_bounds_its_time(tmp_path: Path, scene: Path) -> None:
    item = make_item(tmp_path, scene, "everest", with_extras=False)
    props = item["properties"]
    assert props["datetime"] is None
    assert props["start_datetime"] == "1999-04-15T00:00:00Z"
    assert props["end_datetime"] == props["created"]
    assert set(item["assets"]) == {"classes", "probs", "polygons"}  # no MC, overlay, metrics


def test_the_stac_item_passes_the_core_schema_offline(tmp_path: Path, scene: Path) -> None:
    """pystac ships the core Item schemas; the extension schemas would have to be downloaded."""
    pytest.importorskip("jsonschema")
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    item = make_item(tmp_path, scene, LANDSAT_ID, with_extras=True)
    validator = JsonSchemaSTACValidator()
    validator.validate_core(item, pystac.STACObjectType.ITEM, "1.1.0")


def test_a_crs_without_an_epsg_code_is_given_as_wkt2(tmp_path: Path) -> None:
    albers = "+proj=aea +lat_0=0 +lon_0=85 +lat_1=25 +lat_2=47 +datum=WGS84 +units=m"
    outputs = PredictionOutputs.at(tmp_path / "s", with_uncertainty=False)
    for path, count in ((outputs.classes, 1), (outputs.probs, 3)):
        data = np.zeros((count, 300, 400), dtype=np.uint8)
        source = write_raster(tmp_path / f"{path.stem}.plain.tif", data, 255)
        with rasterio.open(source, "r+") as dst:
            dst.crs = rasterio.crs.CRS.from_proj4(albers)
        to_cog(source, path, "average")
    polygons = tmp_path / "s_glaciers.gpkg"
    polygons.touch()
    item = json.loads(write_stac_item("s", outputs, polygons, None, None, CLASSES).read_text())
    props = item["properties"]
    assert props["proj:code"] is None and "PROJCRS" in props["proj:wkt2"]
    with rasterio.open(outputs.classes) as src:
        outline = transform_geom(
            src.crs, "EPSG:4326", shapely.geometry.mapping(shapely.box(*src.bounds))
        )
    assert shapely.box(*item["bbox"]).contains(shapely.geometry.shape(outline).buffer(-1e-9))
