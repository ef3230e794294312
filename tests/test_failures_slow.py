"""The slower failures through the real ``glacier`` command: signals, conversions, batches.

SIGINT and SIGTERM while mapping, preprocessing and training end in one line saying what was
kept (exit 130, 143) and leave no partial file; a stated conversion maps a scene the input
check refuses; a full or read-only output folder keeps the earlier maps; a scene no outline
covers is marked "no reference" in a batch; an empty test split is said, not a silent ``{}``.
Fast cases: ``test_failures.py``.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import rasterio
from failure_cases import (
    NIR,
    RGB,
    Everest,
    error_lines,
    everest_files,
    finished_everest,
    glacier,
    interrupted,
    predict,
)
from scene_files import tree_checksums, write_disc_outline, write_scene

from glacier.data.spec import sample_path

SCENE = "LE71400412000304SGS00"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def everest(tmp_path_factory: pytest.TempPathFactory) -> Everest:
    return finished_everest(tmp_path_factory.mktemp("everest"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_mapping_ends_in_one_line_and_leaves_no_partial_file(
    everest: Everest, tmp_path: Path, signum: int
) -> None:
    before = tree_checksums(everest.maps, skip=())
    slow = predict(everest, f"out_dir={everest.maps}", "mc_samples=40", "tta=8", "overwrite=true")
    status, lines = interrupted(slow, tmp_path, everest.maps, ".staging/*/.*partial*", signum)
    name = signal.Signals(signum).name
    assert status == 128 + signum
    assert lines == [
        f"glacier predict: interrupted by {name}: 0 of 1 scene(s) mapped and published in "
        f"{everest.maps}; the scene(s) in progress left nothing behind; re-run the same command "
        "to map the rest"
    ]
    assert not [p for p in everest.maps.rglob("*") if "partial" in p.name]
    assert not (everest.maps / ".staging").exists()
    assert tree_checksums(everest.maps, skip=()) == before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_preprocessing_keeps_the_dataset_and_says_so(
    tmp_path: Path, signum: int
) -> None:
    scene = write_scene(tmp_path / "big.tif", 1536, 1536)
    outline = write_disc_outline(tmp_path / "disc.gpkg", 1536, 1536)
    out = tmp_path / "processed"
    command = [
        "preprocess",
        "preprocessor.progress=false",
        f"paths.processed_dir={out}",
        f"data.scenes=[{{id: big, sources: [{{path: '{scene}', bands: [r, g, b, n]}}]}}]",
        f"data.labels=[{{path: '{outline}', class_name: glacier}}]",
        "data.derived=[]",
        "~data.channel_sets",
        "data.slice_size=64",
        "data.overlap=0",
    ]
    assert glacier(command, tmp_path).returncode == 0
    before = tree_checksums(out, skip=())
    again = [*command, "data.overlap=16"]  # the scene is stored again
    status, lines = interrupted(again, tmp_path, out, ".staging/scene_big.*/scenes/big/*", signum)
    assert status == 128 + signum
    assert lines == [
        f"glacier preprocess: interrupted by {signal.Signals(signum).name}: the dataset in {out} "
        "is unchanged (generation 1); this run's staged files were removed"
    ]
    assert not list((out / ".staging").iterdir())
    assert tree_checksums(out, skip=()) == before


def test_a_stated_conversion_maps_the_uint16_scene_and_a_darker_scene_is_refused(
    everest: Everest, tmp_path: Path
) -> None:
    rgb, nir = everest_files(tmp_path / "uint16", scale=257, dtype="uint16")
    scale = "input_conversion={scale: 0.0038910505836575876}"  # 1/257
    maps = tmp_path / "maps"
    done = glacier(predict(everest, f"input=[{rgb},{nir}]", f"out_dir={maps}", scale), tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    converted, original = maps / f"{rgb.stem}_classes.tif", everest.maps / f"{SCENE}_classes.tif"
    with rasterio.open(converted) as ours, rasterio.open(original) as theirs:
        assert (ours.read(1) == theirs.read(1)).mean() > 0.999
    dark_rgb, dark_nir = everest_files(tmp_path / "dark", divide=4)
    done = glacier(predict(everest, f"input=[{dark_rgb},{dark_nir}]", f"out_dir={maps}"), tmp_path)
    assert done.returncode == 2
    (line,) = error_lines(done)
    assert f"{dark_rgb}: band 'red' is uint8, values " in line
    assert "was trained on uint8, values " in line  # the same dtype: refused on its range


@pytest.mark.parametrize("fault", ["enospc-write", "readonly"])
def test_a_full_or_read_only_output_folder_is_one_line_and_keeps_earlier_maps(
    everest: Everest, tmp_path: Path, fault: str
) -> None:
    before = tree_checksums(everest.maps, skip=())
    injected = [fault, str(everest.maps)] if fault == "readonly" else [fault]
    args = predict(everest, f"out_dir={everest.maps}", "mc_samples=2", "overwrite=true")
    done = glacier(args, tmp_path, fault=injected)
    assert done.returncode == 1, done.stderr[-2000:]
    (line,) = error_lines(done)
    if fault == "readonly":
        assert line.startswith(f"glacier predict: error: {everest.maps / '.staging'}")
        assert line.endswith(
            ": Permission denied; no permission to write there: write elsewhere or fix its "
            "permissions"
        )
    else:
        assert line.startswith("glacier predict: error: ") and "partial.tif: No space" in line
        assert "free space there (or write elsewhere) and re-run" in line
    assert not (everest.maps / ".staging").exists()
    assert tree_checksums(everest.maps, skip=()) == before


def everest_stack(path: Path, west_m: float = 0.0) -> Path:
    """The sample as one 4-band file (red, green, blue, nir), moved ``west_m`` metres west."""
    with rasterio.open(sample_path(RGB)) as rgb, rasterio.open(sample_path(NIR)) as nir:
        profile = rgb.profile | {"count": 4, "nodata": 0}
        profile["transform"] = rgb.transform @ rasterio.Affine.translation(-west_m / 30.0, 0)
        bands = np.concatenate([rgb.read(), nir.read()])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def test_a_scene_no_outline_covers_is_marked_no_reference_in_a_batch(
    everest: Everest, tmp_path: Path
) -> None:
    everest_stack(tmp_path / "here.tif")
    everest_stack(tmp_path / "away.tif", west_m=300_000)  # no RGI outline of the sample there
    run = tmp_path / "run"
    labels = f"labels={sample_path('glacier_outlines.gpkg')}"
    args = predict(everest, f"input={tmp_path}/*.tif", labels, f"out_dir={run}/predict")
    done = glacier(args, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    away = json.loads((run / "predict" / "away_prediction.json").read_text())
    here = json.loads((run / "predict" / "here_prediction.json").read_text())
    assert "metrics" not in away and "overlaps scene 'away'" in away["no_reference"]
    assert "metrics" in here and "no_reference" not in here
    report = glacier(["report", f"run_dir={run}"], tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Not scored:" in report.stdout and "away: no reference (no outline of" in report.stdout


def test_training_on_an_empty_test_split_says_so_last_and_in_metrics(tmp_path: Path) -> None:
    args = [
        "train",
        "data=synthetic",
        "split.train=0.8",
        "split.dev=0.2",
        "split.test=0.0",
        "logger=none",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "model.depth=2",
        "model.base_filters=4",
        f"hydra.run.dir={tmp_path}/run",
    ]
    done = glacier(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]  # the log; Lightning's notes go to stderr
    assert "the test split of" in last and "is empty (0 slices): this run has no test" in last
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"] is None and "is empty (0 slices)" in metrics["test_skipped"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_training_names_the_checkpoint_to_resume_from(
    tmp_path: Path, signum: int
) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        "data=synthetic",
        "logger=none",
        "callbacks.prediction_panels=null",
        "callbacks.progress_bar=null",
        "callbacks.early_stopping=null",
        "trainer.enable_progress_bar=false",
        "trainer.max_epochs=100",
        "model.depth=2",
        "model.base_filters=4",
        f"hydra.run.dir={run}",
    ]
    status, lines = interrupted(args, tmp_path, run, "checkpoints/last.ckpt", signum)
    last = run / "checkpoints" / "last.ckpt"
    assert status == 128 + signum
    assert lines == [
        f"glacier train: interrupted by {signal.Signals(signum).name}: kept {last}; resume with "
        f"the same command and ckpt_path={last}"
    ]
