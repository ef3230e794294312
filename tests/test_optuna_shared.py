"""Two Optuna workers share one study through the default SQLite storage (no training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import yaml

from glacier.utils.sweeps import prepare_storage, sqlite_file

ROOT = Path(__file__).resolve().parents[1]
STUDY = "glacier_dropout_lr_synthetic"  # hparams_search=optuna's name for data=synthetic
TRIALS = 3  # per worker


def start_worker(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "GLACIER_ROOT": str(root), "WANDB_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        str(ROOT / "tests" / "optuna_stub_worker.py"),
        "hparams_search=optuna",
        "data=synthetic",
        f"hydra.sweeper.n_trials={TRIALS}",
    ]
    return subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_two_workers_share_one_study(tmp_path: Path) -> None:
    workers = [start_worker(tmp_path) for _ in range(2)]  # at the same moment, on a new storage
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-3000:]

    database = tmp_path / "logs" / "optuna" / f"{STUDY}.db"
    assert database.is_file()  # the default storage, its folder made by the callback
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{database}")
    numbers = sorted(trial.number for trial in study.trials)
    assert numbers == list(range(2 * TRIALS))  # every trial counted once, none repeated
    assert {trial.state for trial in study.trials} == {optuna.trial.TrialState.COMPLETE}

    sweeps = sorted((tmp_path / "logs" / "train" / "multiruns" / STUDY).iterdir())
    assert len(sweeps) == 2  # one folder per worker, though they started together
    jobs = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("logs/**/job.json"))]
    assert len(jobs) == 2 * TRIALS
    assert {job["group"] for job in jobs} == {STUDY}  # one W&B group for the whole study
    assert len({job["pid"] for job in jobs}) == 2
    told = {(trial.params["dropout"], trial.params["optimizer.lr"]) for trial in study.trials}
    assert {(job["dropout"], job["lr"]) for job in jobs} == told
    for sweep in sweeps:
        results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
        assert set(results["best_params"]) == {"dropout", "optimizer.lr"}


def test_storage_folder_and_tables_are_prepared(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a/b/study.db"
    assert sqlite_file(url) == tmp_path / "a" / "b" / "study.db"
    assert sqlite_file("sqlite:///relative/study.db") == Path("relative/study.db")
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("postgresql://user@host/db") is None
    prepare_storage(url)
    prepare_storage(url)  # a second worker finds it ready
    assert optuna.get_all_study_summaries(storage=url) == []
