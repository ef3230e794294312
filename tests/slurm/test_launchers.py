"""The shipped launcher, submitted to a real Slurm: sharded preprocessing, a sweep, prediction.

Every command is the one docs/scaling.md shows (with the test node's resource keys, LAUNCHER),
run as a user types it; each multirun becomes one job array that sbatch accepts and slurmd runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from scene_files import tree_checksums
from slurm_cluster import LAUNCHER, Cluster, only, run_documented, wait_until
from test_shards import two_scenes

from glacier.data.spec import ensure_synthetic_dataset

pytestmark = pytest.mark.slurm


def submission(sweep: Path) -> str:
    """The sbatch script submitit wrote for a sweep (one array for the whole sweep)."""
    return only(sorted((sweep / ".submitit").glob(".submission_file_*.sh"))).read_text()


def final_states(cluster: Cluster, sweep: Path) -> list[str]:
    """The end state of each array task of a sweep, in task order, once all have ended.

    The launcher returns when every task has written its result; the task's process may still be
    exiting then.
    """
    tasks = sorted(p.name for p in (sweep / ".submitit").glob("*_*") if p.is_dir())

    def states() -> list[str]:
        return [cluster.job(task)["JobState"] for task in tasks]

    wait_until(lambda: not set(states()) & {"RUNNING", "COMPLETING"}, 60, f"{tasks} to end")
    return states()


# docs/scaling.md shows these lines; $SLURM is LAUNCHER, $TWO_SCENES the synthetic scene under
# two ids (tests/test_shards.py's two_scenes), $CKPT a checkpoint of the sweep.
SHARDS = "glacier preprocess -m $TWO_SCENES shard=0,1 num_shards=2 $SLURM"
GATHER = "glacier preprocess $TWO_SCENES stage=gather"
WHOLE = "glacier preprocess $TWO_SCENES"
PREPROCESS = "glacier preprocess data=synthetic"
SWEEP = (
    "glacier train -m dropout=0.1,0.3 data=synthetic model.depth=3 model.base_filters=8 "
    "trainer.max_epochs=2 threads=1 callbacks.prediction_panels=null callbacks.progress_bar=null "
    "trainer.enable_progress_bar=false logger=wandb $SLURM"
)
PREDICT = (
    "glacier predict ckpt_path=$CKPT 'input=scenes/*.tif' data=synthetic tile_size=64 overlap=16 "
    "mc_samples=2 progress=false"
)
PREDICT_ARRAY = PREDICT.replace("predict", "predict -m", 1) + (
    " out_dir=maps 'shard=range(0,2)' num_shards=2 $SLURM"
)
PREDICT_ALONE = PREDICT + " out_dir=alone"


SHIPPED = (
    "glacier preprocess -m data=synthetic shard=0,1 num_shards=2 hydra/launcher=submitit_slurm"
)


def test_a_request_beyond_the_partition_is_refused_by_sbatch_at_once(
    slurm: Cluster, tmp_path: Path
) -> None:
    done = run_documented(slurm, tmp_path, SHIPPED)  # 8 CPUs, 32 GB, 240 min on a 2-CPU node
    assert done.returncode != 0
    assert "sbatch: error: Batch job submission failed: More processors requested" in done.stderr
    assert slurm.command("squeue", "--noheader") == ""  # nothing left pending


def test_preprocessing_shards_as_a_slurm_array_then_gather_equal_one_process(
    slurm: Cluster, tmp_path: Path
) -> None:
    scenes = two_scenes(ensure_synthetic_dataset(tmp_path / "raw", seed=42))
    sharded, whole = tmp_path / "sharded", tmp_path / "whole"
    sharded.mkdir(), whole.mkdir()
    done = run_documented(slurm, sharded, SHARDS, TWO_SCENES=scenes, SLURM=LAUNCHER)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = only(sorted((sharded / "logs" / "preprocess" / "multiruns").iterdir()))
    script = submission(sweep)
    assert "#SBATCH --array=0-1%2" in script and "#SBATCH --partition=debug" in script
    assert final_states(slurm, sweep) == ["COMPLETED", "COMPLETED"]
    for job in ("0", "1"):
        assert "scenes: 1 selected" in (sweep / job / "preprocess.log").read_text()
    done = run_documented(slurm, sharded, GATHER, TWO_SCENES=scenes)
    assert done.returncode == 0, done.stderr[-3000:]

    done = run_documented(slurm, whole, WHOLE, TWO_SCENES=scenes)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = tree_checksums(whole / "data" / "processed" / "two", skip=())
    assert tree_checksums(sharded / "data" / "processed" / "two", skip=()) == expected
    assert {"dataset.json", "splits.csv", "slices/slices.geojson"} <= set(expected)


@pytest.fixture(scope="module")
def sweep(slurm: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``glacier train -m dropout=0.1,0.3`` through Slurm on the preprocessed synthetic data."""
    root = tmp_path_factory.mktemp("sweep")
    done = run_documented(slurm, root, PREPROCESS)  # once, before the jobs
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_documented(slurm, root, SWEEP, SLURM=LAUNCHER)
    assert done.returncode == 0, done.stderr[-3000:]
    return only(sorted((root / "logs" / "train" / "multiruns").iterdir()))


def test_training_sweep_as_a_slurm_array_records_metrics_in_one_wandb_group(
    slurm: Cluster, sweep: Path
) -> None:
    script = submission(sweep)
    assert "#SBATCH --array=0-1%2" in script and "#SBATCH --signal=USR1@120" in script
    assert "#SBATCH --requeue" in script
    assert final_states(slurm, sweep) == ["COMPLETED", "COMPLETED"]
    group = f"sweep-{sweep.name}".encode()
    for job, dropout in (("0", "dropout=0.1"), ("1", "dropout=0.3")):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert "test/iou_mean" in metrics["test"] and dropout in metrics["overrides"]
        run = only(sorted((sweep / job / "wandb").glob("offline-run-*/run-*.wandb")))
        assert group in run.read_bytes()  # the run record holds its group verbatim


def test_sharded_prediction_as_a_slurm_array_equals_one_process(
    slurm: Cluster, sweep: Path, tmp_path: Path
) -> None:
    ckpt = sweep / "0" / "checkpoints" / "best.ckpt"
    scene = sweep.parents[3] / "data" / "raw" / "synthetic" / "scene.tif"
    (tmp_path / "scenes").mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(scene, tmp_path / "scenes" / f"{name}.tif")
    done = run_documented(slurm, tmp_path, PREDICT_ARRAY, CKPT=[str(ckpt)], SLURM=LAUNCHER)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = only(sorted((tmp_path / "logs" / "predict" / "multiruns").iterdir()))
    assert "#SBATCH --array=0-1%2" in submission(sweep_dir)
    assert final_states(slurm, sweep_dir) == ["COMPLETED", "COMPLETED"]
    done = run_documented(slurm, tmp_path, PREDICT_ALONE, CKPT=[str(ckpt)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_maps(tmp_path / "maps", tmp_path / "alone")


# Written at run time, so they differ between any two runs: a STAC item's creation time.
RUN_TIME_KEYS = ("created", "end_datetime")


def assert_same_maps(maps: Path, alone: Path) -> None:
    """Every output of ``maps`` equals ``alone``'s, bytes for rasters and overlays.

    Exceptions, each for its reason: ``*_prediction.json`` names its own folder (compared with
    the folder's name replaced); ``*.stac.json`` holds its creation time (RUN_TIME_KEYS, the
    rest compared); ``*_glaciers.gpkg`` is SQLite with timestamps (its table compared);
    ``*_uncertainty.tif``, the spread of MC passes, sums tiles batched with other scenes' tiles
    (a shard batches other neighbours), which moves float sums in the last bits and sqrt near 0
    magnifies that (as tests/test_predict_pipeline.py): same grid, values within 1e-3.
    """
    names = sorted(p.name for p in alone.iterdir())
    assert names == sorted(p.name for p in maps.iterdir()) and "a_classes.tif" in names
    for name in names:
        ours, theirs = maps / name, alone / name
        if name.endswith("_prediction.json"):
            text = ours.read_text().replace(str(maps), str(alone))
            assert text.replace(f'"{maps.name}/', f'"{alone.name}/') == theirs.read_text()
        elif name.endswith(".stac.json"):
            stac = [json.loads(p.read_text()) for p in (ours, theirs)]
            for item in stac:
                for key in RUN_TIME_KEYS:
                    item["properties"].pop(key)
            assert stac[0] == stac[1], name
        elif name.endswith(".gpkg"):
            pd.testing.assert_frame_equal(gpd.read_file(ours), gpd.read_file(theirs))
        elif name.endswith("_uncertainty.tif"):
            assert_same_grid_and_close(ours, theirs)
        else:
            assert ours.read_bytes() == theirs.read_bytes(), name


def assert_same_grid_and_close(ours: Path, theirs: Path) -> None:
    """Same CRS, transform, shape and nodata; pixel values within 1e-3."""
    with rasterio.open(ours) as a, rasterio.open(theirs) as b:
        assert (a.crs, a.transform, a.shape, str(a.nodata)) == (
            b.crs,
            b.transform,
            b.shape,
            str(b.nodata),
        )
        np.testing.assert_allclose(a.read(), b.read(), atol=1e-3, equal_nan=True)
