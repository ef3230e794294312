"""A real ``train.py -m`` multirun: W&B offline, one group per sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_two_job_multirun_shares_one_wandb_group(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "GLACIER_ROOT": str(tmp_path),
    }
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "dropout=0.1,0.2",
        "data=synthetic",
        "logger=wandb",
        "callbacks=none",
        "model.depth=3",
        "model.base_filters=8",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "trainer.enable_progress_bar=false",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    files = sorted(sweeps[0].glob("*/wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2
    group = f"sweep-{sweeps[0].name}".encode()
    for wandb_file in files:  # the run record (protobuf) holds the group name verbatim
        assert group in wandb_file.read_bytes()
    for job in jobs:
        assert (job / "metrics.json").is_file()


@pytest.mark.slow
def test_optuna_search_runs_trials_and_reports_the_best(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "GLACIER_ROOT": str(tmp_path)}
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "data=synthetic",
        "logger=none",
        "callbacks=none",
        "model.depth=3",
        "model.base_filters=8",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    study = "glacier_dropout_lr_synthetic"
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns" / study).iterdir()
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in best and "dropout" in best and "optimizer.lr" in best
    assert (tmp_path / "logs" / "optuna" / f"{study}.db").is_file()  # the shared study
