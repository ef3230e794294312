"""``glacier report``: held-out and full-scene metrics, labelled, end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_cli import glacier as run_glacier

from glacier.tasks.report_tables import (
    EVALUATIONS,
    expected_rows,
    format_seed_summary,
    parse_readme_table,
    readme_table,
    seed_summary,
)
from glacier.tasks.report_uncertainty import REFERENCE_NOTES, UNCERTAINTY_REGIONS

TINY = [
    "data=synthetic",
    "model.depth=3",
    "model.base_filters=8",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.prediction_panels=null",
    "callbacks.progress_bar=null",
    "callbacks.early_stopping=null",
    "threads=1",
    "trainer.max_time=00:00:10:00",
    "tta=true",
]


def glacier(args: list[str], cwd: Path) -> str:
    """Run the console script's module in ``cwd``; return stdout (fail with its stderr)."""
    done = run_glacier(args, cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo folder (train/ and predict/) made by the real commands, as make demo does."""
    cwd = tmp_path_factory.mktemp("demo")
    run = cwd / "logs" / "demo" / "run"
    glacier(["train", *TINY, f"hydra.run.dir={run}/train"], cwd)
    ckpt = run / "train" / "checkpoints" / "best.ckpt"
    glacier(
        [
            "predict",
            "data=synthetic",
            f"ckpt_path={ckpt}",
            "labels=data",
            "mc_samples=2",
            "tile_size=64",
            "overlap=16",
            f"out_dir={run}/predict",
            f"hydra.run.dir={run}/predict",
        ],
        cwd,
    )
    return run


def test_report_labels_held_out_and_full_scene_metrics(demo_run: Path) -> None:
    cwd = demo_run.parents[2]
    text = glacier(["report", f"run_dir={demo_run}", "json_out=metrics.json"], cwd)
    for label in EVALUATIONS.values():
        assert label.upper() in text
    assert "not a held-out score" in text and "max_time" in text and "did not fire" in text
    for name in ("background", "clean_ice", "debris", "mean IoU", "pred km2", "ref km2"):
        assert name in text
    metrics = json.loads((cwd / "metrics.json").read_text())
    assert set(metrics["evaluations"]) == set(EVALUATIONS)
    assert metrics["training"]["max_time_fired"] is False
    assert metrics["training"]["tta"] is True and metrics["training"]["threads"] == 1
    full = metrics["evaluations"]["full_scene"]
    assert full["areas_km2"]["reference"]["clean_ice"] > 0
    assert metrics["evaluations"]["test_split"]["areas_km2"] is None  # overlapping slices
    region = metrics["evaluations"]["test_region_map"]
    region_ref = sum(region["areas_km2"]["reference"].values())
    assert 0 < region_ref < sum(full["areas_km2"]["reference"].values())
    assert 0 <= metrics["evaluations"]["test_split"]["metrics"]["iou_mean"] <= 1
    assert expected_rows(metrics) == parse_readme_table(f"intro\n\n{readme_table(metrics)}\n\n")


def test_report_scores_the_uncertainty_of_every_region(demo_run: Path) -> None:
    cwd = demo_run.parents[2]
    text = glacier(["report", f"run_dir={demo_run}", "json_out=metrics.json"], cwd)
    metrics = json.loads((cwd / "metrics.json").read_text())
    block = metrics["uncertainty"]
    assert set(block["regions"]) == set(UNCERTAINTY_REGIONS)
    assert block["written"] == ["one_minus_max"] and block["note"] is None  # synthetic data
    assert block["calibration"]["temperature"] == metrics["training"]["temperature"] > 0
    for key, label in UNCERTAINTY_REGIONS.items():
        region = block["regions"][key]
        assert label.upper() in text and region["pixels"] > 0
        assert 0 <= region["error_rate"] <= 1 and len(region["calibration"]["bins"]) == 10
    # the test step's uncertainty comes from its 8 TTA views, the map's from 2 MC passes
    assert block["regions"]["test_split"]["passes"]["views"] == 8
    assert block["regions"]["full_scene"]["passes"]["mc_samples"] == 2
    dev, test = (block["regions"][k]["pixels"] for k in ("dev_region_map", "test_region_map"))
    assert dev + test < block["regions"]["full_scene"]["pixels"]
    assert "AUROC" in text and "mutual_information" in text and "Temperature" in text


def test_the_reference_note_of_the_everest_sample_is_true() -> None:
    import geopandas as gpd

    from glacier.data.spec import sample_path

    years = gpd.read_file(sample_path("glacier_outlines.gpkg"))["BgnDate"].astype(str).str[:4]
    later = int(years.isin(["2002", "2010"]).sum())
    assert f"{later} of the {len(years)} RGI 6.0 outlines" in REFERENCE_NOTES["everest"]
    assert "2000-10-30" in REFERENCE_NOTES["everest"]


def test_max_time_firing_is_loud(demo_run: Path, tmp_path: Path) -> None:
    from glacier.tasks.report import demo_metrics
    from glacier.tasks.report_tables import format_summary

    metrics = demo_metrics(demo_run)
    metrics["training"]["max_time_fired"] = True
    text = format_summary(metrics)
    assert "WARNING: max_time stopped training" in text and "FIRED" in text


def fake_run(seed: int, iou: float) -> dict[str, Any]:
    evaluation = {
        "label": EVALUATIONS["test_split"],
        "classes": ["background", "glacier"],
        "metrics": {"iou/background": iou, "iou/glacier": iou, "iou_mean": iou},
        "areas_km2": None,
    }
    return {
        "run_dir": f"seed_{seed}",
        "training": {"seed": seed, "max_time_fired": False},
        "evaluations": {"test_split": evaluation},
    }


def test_seed_summary_is_mean_and_sample_std() -> None:
    summary = seed_summary([fake_run(1, 0.7), fake_run(2, 0.8), fake_run(3, 0.9)])
    test = summary["evaluations"]["test_split"]
    assert test["mean"]["iou_mean"] == pytest.approx(0.8)
    assert test["std"]["iou_mean"] == pytest.approx(0.1)
    assert summary["seeds"] == [1, 2, 3]
    assert "0.800 ± 0.100" in format_seed_summary(summary)


def test_a_folder_of_seed_runs_is_summarized_as_mean_and_std(
    demo_run: Path, tmp_path: Path
) -> None:
    import shutil

    seeds = tmp_path / "seeds"
    for seed in (1, 2):
        shutil.copytree(demo_run, seeds / f"seed_{seed}", symlinks=True)
    (seeds / "preprocess").mkdir()  # what make demo-seeds also leaves there: not a run
    text = glacier(["report", f"run_dir={seeds}", "json_out=seeds.json"], demo_run.parents[2])
    summary = json.loads((demo_run.parents[2] / "seeds.json").read_text())
    assert "2 runs" in text and len(summary["runs"]) == 2
    test = summary["evaluations"]["test_split"]
    assert test["std"]["iou_mean"] == pytest.approx(0.0, abs=1e-12)  # the same run twice
    assert test["values"]["iou_mean"][0] == test["mean"]["iou_mean"]
    assert set(summary["evaluations"]) == set(EVALUATIONS)
    quality = summary["uncertainty"]["regions"]["test_region_map"]
    assert quality["std"]["auroc/one_minus_max"] == pytest.approx(0.0, abs=1e-12)
    assert len(quality["values"]["ece"]) == 2 and "UNCERTAINTY" in text


def test_an_empty_folder_is_refused_by_name(tmp_path: Path) -> None:
    done = run_glacier(["report", f"run_dir={tmp_path}"], tmp_path)
    assert done.returncode == 2 and str(tmp_path) in done.stderr
