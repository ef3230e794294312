"""A cross-validation through the real commands: folds, the policy, the ensemble, the report."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from test_report import glacier

from glacier.tasks.cv import fold_runs, is_cross_validation
from glacier.tasks.cv_summary import summarize_sweep

EPOCHS = 4
TINY = [
    "data=synthetic",
    "split=folds",
    "split.folds=3",
    "model.depth=3",
    "model.base_filters=8",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.prediction_panels=null",
    "callbacks.progress_bar=null",
    "callbacks.early_stopping=null",
    "threads=1",
    "tta=true",
    "checkpoint=cv",
]


@pytest.mark.slow
def test_a_fold_sweep_trains_tests_ensembles_maps_and_reports(tmp_path: Path) -> None:
    region = tmp_path / "test_region.gpkg"  # the synthetic scene's western 60 px
    box = shapely.box(470_000, 3.09e6, 479_800, 3.12e6)
    gpd.GeoDataFrame(geometry=[box], crs="EPSG:32645").to_file(region)
    split = [f"split.test_regions=[{region}]"]
    glacier(["preprocess", *TINY[:3], *split], tmp_path)
    processed = tmp_path / "data" / "processed" / "synthetic"
    before = {
        p: p.stat().st_mtime_ns for p in (processed / "splits.csv", processed / "dataset.json")
    }
    sweep = tmp_path / "run" / "train"
    out = glacier(
        ["train", "-m", *TINY, *split, "split.fold=0,1,2", f"hydra.sweep.dir={sweep}"], tmp_path
    )
    assert before == {p: p.stat().st_mtime_ns for p in before}  # folds never re-preprocess
    assert "CROSS-VALIDATION: 3 folds" in out and "ensemble of the 3 last checkpoints" in out
    runs = fold_runs(sweep)
    assert is_cross_validation(runs) and [r.fold for r in runs] == [0, 1, 2]
    for run in runs:
        metrics = run.metrics
        assert set(metrics["tests"]) == {"best", "last"} and len(metrics["dev_curve"]) == EPOCHS
        assert metrics["test"] == metrics["tests"]["best"]["test"]  # cv reports best as `test`
        assert metrics["tests"]["last"]["calibration"]["temperature"] > 0
    summary = json.loads((sweep / "cv.json").read_text())
    chosen = summary["policy"]["chosen"]
    assert chosen in ("best", "last") and summary["folds"] == [0, 1, 2]
    values = [r.metrics["tests"][chosen]["test"]["test/iou_mean"] for r in runs]
    single = summary["single"][chosen]["test/iou_mean"]
    assert single["values"] == values and single["std"] == pytest.approx(np.std(values, ddof=1))
    ensemble = summary["ensemble"][chosen]
    assert ensemble["uncertainty"]["passes"]["members"] == 3
    assert ensemble["members"] == [str(r.checkpoint(chosen)) for r in runs]
    assert summary["calibration"]["pooled_temperature"] > 0
    assert summarize_sweep(sweep / "0") is None  # a single run is no cross-validation
    maps = tmp_path / "run" / "predict"
    predict = ["predict", "data=synthetic", f"ckpt_path={sweep}", "labels=data", "mc_samples=2"]
    predict += ["tile_size=64", "overlap=16", f"out_dir={maps}", f"hydra.run.dir={maps}"]
    glacier(predict, tmp_path)
    with rasterio.open(maps / "synthetic_uncertainty.tif") as src:
        assert src.tags()["members"] == "3" and src.tags()["passes"] == "6"
    stac = json.loads((maps / "synthetic.stac.json").read_text())
    names = [f"{r.path.name}/{chosen}.ckpt" for r in runs]
    assert stac["properties"]["glacier:checkpoint"] == names
    report = glacier(["report", f"run_dir={tmp_path / 'run'}"], tmp_path)
    assert "Checkpoint policy: " + chosen.upper() in report
    assert "ENSEMBLE MAP, HELD-OUT TEST REGION" in report and "3 members" in report
