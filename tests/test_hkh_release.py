"""The HKH release read as published: patches in place, true footprints, raw tiles, formulas."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from conftest import compose_config
from omegaconf import DictConfig

from glacier.data.contract import load_contract
from glacier.data.hkh import RELEASE_FORMULAS, estimated_utm_epsg, slice_statistics
from glacier.data.hkh.release import RELEASE_BANDS
from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.tasks.predict import load_segmenter, run_predict
from glacier.tasks.preprocess import run_preprocess
from glacier.tasks.train import run_train
from tests.data.hkh_release import (
    HkhReleaseFiles,
    parse_slice_name,
    true_footprint,
    write_hkh_release,
)

Compose = Callable[[str, list[str] | None], DictConfig]
PATCH, STEP = 64, 58  # the release's 512/506 geometry, shrunk


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> HkhReleaseFiles:
    return write_hkh_release(tmp_path_factory.mktemp("release"), patch_size=PATCH, step=STEP)


def lila(root: Path, release: HkhReleaseFiles, *extra: str) -> DictConfig:
    return compose_config(
        "preprocess",
        ["data=hkh_lila", f"data.root={release.root}", "preprocessor.progress=false", *extra],
        root,
    )


@pytest.fixture(scope="module")
def processed(
    tmp_path_factory: pytest.TempPathFactory, release: HkhReleaseFiles
) -> tuple[Path, HkhReleaseFiles]:
    root = tmp_path_factory.mktemp("processed")
    run_preprocess(lila(root, release))
    return root / "data" / "processed" / "hkh_lila", release


def test_patches_are_indexed_in_place_without_a_copy(
    processed: tuple[Path, HkhReleaseFiles],
) -> None:
    out, release = processed
    assert not list(out.rglob("*.npy"))  # no patch copied
    index = pd.read_csv(out / "splits.csv")
    assert set(index.columns) >= {"image", "mask", "scene", "split"}
    every = {p.name for p in release.slice_images}
    kept = {Path(p).name for p in index["image"]}
    assert kept == every - set(release.all_nan_slices)  # filter=none drops only all-nodata
    info = json.loads((out / "dataset.json").read_text())
    assert info["storage"] == "release" and Path(info["root"]) == release.root.resolve()
    assert info["classes"] == ["glacier", "clean_ice", "debris"]
    formulas = {c["name"]: c["formula"] for c in info["channels"]}
    assert formulas["ndsi"] == "(B5-B2)/(B5+B2)" and formulas["ndwi"] == "(B4-B5)/(B4+B5)"
    assert info["nodata"] == {"value": None, "all_zero": True}
    _, typed = load_contract(out)
    assert typed.in_release and typed.release_root == release.root.resolve()
    assert typed.to_dict() == {k: info[k] for k in ("counts", "storage", "root", "generation")}


def test_footprints_are_the_true_ones_in_each_tile_crs(
    processed: tuple[Path, HkhReleaseFiles],
) -> None:
    out, release = processed
    slices = gpd.read_file(out / "slices" / "slices.geojson")
    assert slices.crs.to_epsg() == 4326
    assert len({row for row in slices["crs"]}) == 3  # three UTM zones, not one declared 32643
    for _, row in slices.iterrows():
        tile_index = next(t.spec.index for t in release.tiles if t.spec.name == row["scene"])
        image = f"slice_{tile_index}_img_{int(row['slice']):03}.npy"
        truth = true_footprint(
            release.tile(row["scene"]).path, int(row["slice"]), patch_size=PATCH, step=STEP
        )
        assert row["crs"] == truth.crs and parse_slice_name(image)[2] == row["slice"]
        np.testing.assert_allclose([row.x_min, row.y_min, row.x_max, row.y_max], truth.bounds)
        back = gpd.GeoSeries([row.geometry], crs=4326).to_crs(truth.crs).iloc[0]
        assert back.symmetric_difference(shapely.box(*truth.bounds)).area < 1e-3 * back.area


def test_metadata_boxes_are_unmirrored_when_the_tiles_are_missing(
    tmp_path: Path, release: HkhReleaseFiles, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "glacier_data"
    shutil.copytree(release.root, copy)
    shutil.rmtree(copy / "raster_data")
    with caplog.at_level(logging.WARNING, logger="glacier"):
        run_preprocess(lila(tmp_path, release, f"data.root={copy}"))
    assert any("approximate" in r.getMessage() for r in caplog.records)
    index = pd.read_csv(tmp_path / "data" / "processed" / "hkh_lila" / "splits.csv")
    slices = gpd.read_file(
        tmp_path / "data" / "processed" / "hkh_lila" / "slices" / "slices.geojson"
    )
    for _, row in slices.iterrows():
        truth = true_footprint(
            release.tile(row["scene"]).path, int(row["slice"]), patch_size=PATCH, step=STEP
        )
        box, true_box = (
            shapely.box(row.x_min, row.y_min, row.x_max, row.y_max),
            shapely.box(*truth.bounds),
        )
        assert row["crs"] == truth.crs  # the zone estimated from the WRS-2 path
        assert box.intersection(true_box).area / box.union(true_box).area > 0.8
    assert len(index) == len(release.slice_images) - len(release.all_nan_slices)


def test_nodata_is_nan_or_zero_in_every_channel_never_one_channel() -> None:
    image = np.ones((4, 4, 15), dtype=np.float32)
    image[0, 0] = np.nan  # outside the HKH border
    image[0, 1] = 0.0  # outside the Landsat scene
    image[1, 1, 10] = 0.0  # ndvi = 0 on saturated snow: valid
    image[1, 2, 14] = 0.0  # flat ground, slope 0: valid
    mask = np.zeros((4, 4, 3), dtype=np.uint8)
    mask[0, 1] = 1  # labelled glacier over the off-scene zeros (the release has such pixels)
    mask[1, 1] = 1
    stats = slice_statistics(image, mask, ("glacier", "clean_ice", "debris"))
    assert stats["nodata_frac"] == 2 / 16
    assert stats["mask_mean_glacier"] == 1 / 14


def test_the_normalized_splits_are_refused(tmp_path: Path, release: HkhReleaseFiles) -> None:
    with pytest.raises(GlacierInputError, match=r"splits/.*z-scored.*glacier_data/"):
        run_preprocess(lila(tmp_path, release, f"data.root={release.root}/splits/train"))
    with pytest.raises(GlacierFileNotFoundError, match="no slices/ folder"):
        run_preprocess(lila(tmp_path, release, f"data.root={tmp_path}"))


def test_estimated_zones_agree_with_the_known_tiles() -> None:
    assert estimated_utm_epsg("LE07_149036_20071102") == 32643
    assert estimated_utm_epsg("LE07_148036_20050902") == 32643
    assert estimated_utm_epsg("LE07_134040_20070922") == 32647
    assert estimated_utm_epsg("LE07_140041_20071221") == 32645


@pytest.fixture(scope="module")
def trained(
    processed: tuple[Path, HkhReleaseFiles], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out, release = processed
    root = out.parents[2]
    cfg = compose_config(
        "train",
        [
            "data=hkh_lila",
            f"data.root={release.root}",
            "classes=[clean_ice,debris]",
            "debug=limit",
            "model.depth=2",
            "model.base_filters=4",
            "callbacks.prediction_panels=null",
            "callbacks.progress_bar=null",
            "trainer.enable_progress_bar=false",
        ],
        root,
    )
    run_train(cfg)
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["classes"] == ["clean_ice", "debris"] and "test/iou_mean" in metrics["test"]
    return Path(metrics["best_checkpoint"])


def test_a_model_trained_on_the_patches_maps_a_raw_tile(
    trained: Path, release: HkhReleaseFiles, compose_in: Compose, tmp_path: Path
) -> None:
    cfg = compose_in(
        "predict",
        [
            f"ckpt_path={trained}",
            "data=hkh_2005",
            f"data.root={release.root}",
            f"out_dir={tmp_path}",
        ],
    )
    contract = load_segmenter(trained).contract  # the input check runs on the tiles, and passes
    assert contract.channel("B1").source_dtypes == ("float32",)
    assert contract.stats is not None and set(contract.stats.ranges) == set(RELEASE_BANDS)
    results = run_predict(cfg)
    assert len(results) == len(release.tiles)
    tile = release.tile("LE07_149036_20071102")
    with (
        rasterio.open(tile.path) as src,
        rasterio.open(tmp_path / f"{tile.spec.name}_classes.tif") as out,
    ):
        assert out.crs == src.crs and out.transform == src.transform
        classes, bands = out.read(1), src.read()
    off_scene = (bands == 0).all(axis=0)
    assert off_scene.any() and (classes[off_scene] == 255).all()
    assert (classes[~off_scene] != 255).all()


def test_a_scene_whose_ndsi_means_something_else_is_refused(
    trained: Path, release: HkhReleaseFiles, compose_in: Compose, tmp_path: Path
) -> None:
    cfg = compose_in(
        "predict",
        [
            f"ckpt_path={trained}",
            "data=hkh_2005",
            f"data.root={release.root}",
            f"+data.formulas.ndsi='{RELEASE_FORMULAS['ndsi'].replace('B5-B2', 'B2-B5')}'",
            f"out_dir={tmp_path}",
        ],
    )
    with pytest.raises(
        GlacierInputError, match=r"channel 'ndsi' is \(B2-B5\).*trained on \(B5-B2\)/\(B5\+B2\)"
    ):
        run_predict(cfg)
    assert not list(tmp_path.iterdir())


def test_raw_tiles_are_stored_compactly(
    release: HkhReleaseFiles, compose_in: Compose, tmp_path: Path
) -> None:
    cfg = compose_in(
        "preprocess",
        [
            "data=hkh_2005",
            f"data.root={release.root}",
            f"data.slice_size={PATCH}",
            "preprocessor.progress=false",
        ],
    )
    run_preprocess(cfg)
    out = Path(cfg.paths.processed_dir)
    scene = out / "scenes" / "LE07_134040_20070922"
    assert sorted(p.name for p in scene.iterdir()) == [
        "generation.json",  # the stamp readers compare with dataset.json
        "image_float16.npy",
        "image_float32.npy",
        "image_uint16.npy",
        "image_uint8.npy",
    ]
    bands = np.load(scene / "image_uint8.npy", mmap_mode="r")
    with rasterio.open(release.tile("LE07_134040_20070922").path) as src:
        tile = src.read()
    valid = np.load(out / "masks" / "mask_LE07_134040_20070922.npy")[..., 0] != 255
    np.testing.assert_array_equal(bands[..., 0][valid], tile[0][valid].astype(np.uint8))
    off_scene = (tile == 0).all(axis=0)
    assert off_scene.any() and not valid[off_scene].any()


@pytest.mark.parametrize("name", ["nepal_2000", "nepal_2010", "bhutan_2000", "bhutan_2010"])
def test_icimod_configs_point_at_the_downloads(
    name: str, compose_in: Compose, tmp_path: Path, release: HkhReleaseFiles
) -> None:
    from hydra.utils import instantiate

    cfg = compose_in("preprocess", [f"data={name}", f"data.root={tmp_path}"])
    country, year = name.split("_")
    label = cfg.data.labels[0]
    assert (
        label.path
        == f"{tmp_path}/Glaciers of {country.capitalize()} {year}/data/Glacier_{year}.shp"
    )
    assert label.class_column == "Glaciers"
    shutil.copytree(release.root / "raster_data", tmp_path / "raster_data")
    spec = instantiate(cfg.data, _convert_="all")
    assert spec.name == name and len(spec.scenes) == len(release.tiles)
    assert spec.formulas["ndsi"] == "(B5-B2)/(B5+B2)" and spec.nodata_all_zero


def test_batched_reads_of_patches_equal_the_files(
    processed: tuple[Path, HkhReleaseFiles],
) -> None:
    from glacier.data.hkh import ReleaseStore
    from glacier.data.loading import WindowDataset

    out, _ = processed
    info = json.loads((out / "dataset.json").read_text())
    index = pd.read_csv(out / "splits.csv").head(3)
    store = ReleaseStore(Path(info["root"]), index)
    batch = WindowDataset(store, index, batched=True).__getitems__([0, 1, 2])
    assert isinstance(batch, dict)
    for i, (_, row) in enumerate(index.iterrows()):
        image = np.load(store.root / row["image"])
        np.testing.assert_array_equal(batch[store.group_keys[0]][i].numpy(), image)
        np.testing.assert_array_equal(batch["label"][i].numpy(), np.load(store.root / row["mask"]))
