"""predict.py end to end on the synthetic scene, and its failures on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import compose_config
from omegaconf import DictConfig

from glacier.data.spec import sample_path
from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.tasks.predict import run_predict
from glacier.tasks.train import run_train
from glacier.utils.names import sanitize_name


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A checkpoint trained for a few epochs on the synthetic data, and its data root."""
    root = tmp_path_factory.mktemp("ckpt")
    cfg = compose_config(
        "train",
        [
            "data=synthetic",
            "logger=none",
            "callbacks=default",
            "callbacks.prediction_panels=null",
            "callbacks.progress_bar=null",
            "trainer.enable_progress_bar=false",
            "trainer.max_epochs=4",
            "model.depth=3",
            "model.base_filters=8",
            "test=false",
        ],
        root,
    )
    run_train(cfg)
    return root / "run" / "checkpoints" / "best.ckpt", root


def predict_cfg(tmp_path: Path, data_root: Path, overrides: list[str]) -> DictConfig:
    return compose_config(
        "predict",
        [
            "data=synthetic",
            f"paths.data_dir={data_root}/data",
            f"out_dir={tmp_path}/maps",
            "tile_size=64",
            "overlap=16",
            *overrides,
        ],
        tmp_path,
    )


def test_predict_writes_georeferenced_maps_and_metrics(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    ckpt, root = trained
    cfg = predict_cfg(tmp_path, root, [f"ckpt_path={ckpt}", "labels=data", "mc_samples=3"])
    (result,) = run_predict(cfg)
    scene = root / "data" / "raw" / "synthetic" / "scene.tif"
    with rasterio.open(scene) as src:
        grid = (src.crs, src.transform, src.width, src.height)
    for key in ("classes", "probs", "uncertainty"):
        with rasterio.open(getattr(result, key)) as out:
            assert (out.crs, out.transform, out.width, out.height) == grid
    polygons = gpd.read_file(result.polygons)
    assert polygons.crs == grid[0] and set(polygons["class"]) <= {"clean_ice", "debris"}
    metrics = json.loads(Path(result.metrics_json).read_text())
    assert 0.0 <= metrics["metrics"]["iou_mean"] <= 1.0
    assert metrics["areas_km2"]["reference"]["clean_ice"] > 0
    assert Path(result.overlay).stat().st_size > 10_000
    with rasterio.open(result.classes) as out:
        classes = out.read(1)
    with rasterio.open(scene) as src:
        nodata = (src.read() == 0).all(axis=0) | np.isnan(src.read()).any(axis=0)
    assert (classes[nodata] == 255).all() and (classes[~nodata] != 255).all()
    record = json.loads((tmp_path / "maps" / "synthetic_prediction.json").read_text())
    assert record["scene"] == "synthetic" and record["metrics"] == metrics
    assert record["classes"] == str(result.classes) and record["fingerprint"]
    item = json.loads(Path(result.stac).read_text())
    assert Path(result.stac) == tmp_path / "maps" / "synthetic.stac.json"
    keys = ("classes", "probs", "uncertainty", "measures", "polygons", "overlay")
    files = {key: getattr(result, key) for key in (*keys, "uncertainty_figure")}
    files["metrics"] = result.metrics_json
    hrefs = {key: asset["href"] for key, asset in item["assets"].items()}
    assert hrefs == {key: f"./{Path(path).name}" for key, path in files.items()}
    assert item["properties"]["glacier:checkpoint"] == "best.ckpt"
    assert item["properties"]["glacier:mc_samples"] == 3
    # the default measure is written, described; every measure is scored against the labels
    with rasterio.open(result.uncertainty) as out:
        assert out.descriptions == ("one_minus_max",) and out.count == 1
        assert out.tags()["mc_samples"] == "3" and out.tags()["views"] == "1"
        assert "largest mean class probability" in out.tags(1)["description"]
    measures = ["one_minus_max", "entropy", "mutual_information", "spread"]
    with rasterio.open(result.measures) as out:
        names = list(out.descriptions)
        temperature = float(out.tags()["temperature"])
    assert names == measures + (["confidence_uncalibrated"] if temperature != 1 else [])
    quality = metrics["uncertainty"]
    assert sorted(quality["measures"]) == sorted(measures)
    assert quality["pixels"] == sum(map(sum, metrics["confusion"]))
    assert quality["passes"] == {
        "views": 1,
        "mc_samples": 3,
        "temperature": temperature,
        "members": 1,
        "member_temperatures": [],
    }
    assert len(quality["measures"]["spread"]["error_by_decile"]) == 10
    assert len(quality["calibration"]["bins"]) == 10
    assert Path(result.uncertainty_figure).stat().st_size > 10_000
    bands = item["assets"]["uncertainty"]["raster:bands"]
    assert [band["name"] for band in bands] == ["one_minus_max"]


def test_probability_encoding_is_chosen_in_the_config(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    ckpt, root = trained
    cfg = predict_cfg(tmp_path, root, [f"ckpt_path={ckpt}", "probabilities=float16"])
    with pytest.raises(GlacierInputError, match="probabilities='float16'"):
        run_predict(cfg)
    assert not (tmp_path / "maps").exists()
    cfg = predict_cfg(tmp_path, root, [f"ckpt_path={ckpt}", "probabilities=float32"])
    (result,) = run_predict(cfg)
    with rasterio.open(result.probs) as out:
        assert out.dtypes[0] == "float32" and np.isnan(out.nodata)
        probs = out.read()
    valid = np.isfinite(probs).all(axis=0)
    np.testing.assert_allclose(probs[:, valid].sum(axis=0), 1.0, atol=1e-5)


def test_missing_checkpoint_is_named(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    cfg = predict_cfg(tmp_path, trained[1], [f"ckpt_path={tmp_path}/nope.ckpt"])
    with pytest.raises(GlacierFileNotFoundError, match=r"nope\.ckpt"):
        run_predict(cfg)


def test_wrong_band_count_for_the_checkpoint(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    rgb = sample_path("LE71400412000304SGS00_RGB.TIF")
    cfg = predict_cfg(tmp_path, trained[1], [f"ckpt_path={trained[0]}", f"input={rgb}"])
    with pytest.raises(GlacierInputError, match=r"RGB\.TIF"):
        run_predict(cfg)


def test_labels_without_the_checkpoint_classes(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    outlines = sample_path("glacier_outlines.gpkg")
    cfg = predict_cfg(
        tmp_path,
        trained[1],
        [f"ckpt_path={trained[0]}", f"labels={outlines}", "label_class=glacier"],
    )
    with pytest.raises(GlacierInputError, match="clean_ice"):
        run_predict(cfg)


def test_a_data_config_of_another_kind_is_refused_at_the_door(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    # data=hkh_lila is the release read in place for training: nothing predict can map, and
    # its mandatory data.root is not even asked for before the refusal
    cfg = compose_config(
        "predict",
        ["data=hkh_lila", f"ckpt_path={trained[0]}", f"out_dir={tmp_path}/maps"],
        tmp_path,
    )
    with pytest.raises(GlacierInputError, match=r"makes a HkhRelease, not a DataSpec") as error:
        run_predict(cfg)
    assert "\n" not in str(error.value) and "data=everest" in str(error.value)


def test_corrupt_checkpoint_is_named(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(trained[0].read_bytes()[:1000])
    cfg = predict_cfg(tmp_path, trained[1], [f"ckpt_path={bad}"])
    with pytest.raises(GlacierInputError, match=r"bad\.ckpt"):
        run_predict(cfg)


def test_scene_names_cannot_escape_the_output_directory(tmp_path: Path) -> None:
    for name in ("../../etc/passwd", "/abs/path", "..", "a/../../b", ".hidden"):
        target = (tmp_path / sanitize_name(name)).resolve()
        assert target.parent == tmp_path.resolve() and target.name not in ("", ".", "..")


def test_a_glob_maps_several_scenes_in_one_call(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    ckpt, root = trained
    scene = root / "data" / "raw" / "synthetic" / "scene.tif"
    folder = tmp_path / "scenes"
    folder.mkdir()
    for name in ("north.tif", "south.tif"):
        (folder / name).write_bytes(scene.read_bytes())
    cfg = predict_cfg(tmp_path, root, [f"ckpt_path={ckpt}", f"input={folder}/*.tif"])
    results = run_predict(cfg)
    assert [r.scene for r in results] == ["north", "south"]
    maps = [rasterio.open(r.classes).read(1) for r in results]
    np.testing.assert_array_equal(maps[0], maps[1])  # same pixels, same map


def test_band_files_of_one_scene_are_combined(tmp_path: Path) -> None:
    """An Everest checkpoint takes the RGB file and the B4 file as one 4-band scene."""
    cfg = compose_config(
        "train",
        [
            "logger=none",
            "callbacks=default",
            "callbacks.prediction_panels=null",
            "callbacks.progress_bar=null",
            "trainer.enable_progress_bar=false",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "model.depth=2",
            "model.base_filters=4",
            "test=false",
        ],
        tmp_path,
    )
    run_train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    rgb = sample_path("LE71400412000304SGS00_RGB.TIF")
    nir = sample_path("LE71400412000304SGS00_B4_crop.TIF")
    predict = compose_config(
        "predict",
        [f"ckpt_path={ckpt}", f"input=[{rgb},{nir}]", f"out_dir={tmp_path}/maps"],
        tmp_path,
    )
    (result,) = run_predict(predict)
    assert result.scene == "LE71400412000304SGS00_RGB"
    with rasterio.open(result.probs) as out, rasterio.open(rgb) as src:
        assert (out.crs, out.transform, out.shape) == (src.crs, src.transform, src.shape)
        assert out.descriptions == ("background", "glacier")


def test_an_inventory_gives_per_glacier_tables_per_scene_and_per_run(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    ckpt, root = trained
    inventory = [
        "inventory=data",
        "per_glacier.id_column=name",
        "per_glacier.area_column=null",
        "per_glacier.date_column=date",
    ]
    cfg = predict_cfg(tmp_path, root, [f"ckpt_path={ckpt}", "labels=data", *inventory])
    (result,) = run_predict(cfg)
    table = gpd.read_file(result.per_glacier)
    csv = pd.read_csv(result.per_glacier_csv)
    assert list(csv["glacier_id"]) == list(table["glacier_id"]) and len(table) >= 2
    outlines = gpd.read_file(root / "data" / "raw" / "synthetic" / "clean_ice.gpkg")
    assert set(table["glacier_id"]) <= set(outlines["name"])
    assert table.crs == outlines.crs
    metrics = json.loads(Path(result.metrics_json).read_text())
    # the clean-ice outlines are the inventory: their in-scene area is the reference's
    assert table["reference_km2"].sum() == pytest.approx(
        metrics["areas_km2"]["reference"]["clean_ice"], rel=1e-3
    )
    assert {"mapped_clean_ice_km2", "mapped_debris_km2", "boundary_low_km2"} <= set(table.columns)
    item = json.loads(Path(result.stac).read_text())
    assert {"per_glacier", "per_glacier_csv", "passes"} <= set(item["assets"])
    with rasterio.open(result.passes) as passes, rasterio.open(result.classes) as classes:
        assert passes.count == 1  # deterministic: one pass, the class map itself
        assert np.array_equal(passes.read(1), classes.read(1))
    assert (table["passes"] == 1).all()
    assert np.allclose(table["passes_low_km2"], table["mapped_km2"])
    assert np.allclose(table["passes_high_km2"], table["mapped_km2"])
    run_table = pd.read_csv(tmp_path / "maps" / "per_glacier.csv")
    assert run_table["reference_km2"].sum() == pytest.approx(csv["reference_km2"].sum())
    # a rerun skips the scene and still writes the run's table from its sums
    (tmp_path / "maps" / "per_glacier.csv").unlink()
    (again,) = run_predict(cfg)
    assert again.skipped and (tmp_path / "maps" / "per_glacier.csv").is_file()
    # another buffer changes the per-glacier outputs: the scene is redone
    (redone,) = run_predict(
        predict_cfg(
            tmp_path,
            root,
            [f"ckpt_path={ckpt}", "labels=data", *inventory, "per_glacier.buffer_m=0"],
        )
    )
    assert not redone.skipped


def test_per_glacier_intervals_come_from_every_mc_pass(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    ckpt, root = trained
    overrides = [
        f"ckpt_path={ckpt}",
        "mc_samples=3",
        "inventory=data",
        "per_glacier.id_column=name",
        "per_glacier.area_column=null",
        "per_glacier.date_column=date",
    ]
    (result,) = run_predict(predict_cfg(tmp_path, root, overrides))
    with rasterio.open(result.passes) as passes, rasterio.open(result.classes) as classes:
        assert passes.count == 3 and passes.descriptions == ("pass 1", "pass 2", "pass 3")
        maps, mean_map = passes.read(), classes.read(1)
    nodata = mean_map == 255
    assert ((maps == 255) == nodata).all()  # every pass is nodata exactly where the map is
    table = pd.read_csv(result.per_glacier_csv)
    assert (table["passes"] == 3).all()
    assert (table["passes_low_km2"] <= table["passes_high_km2"]).all()
