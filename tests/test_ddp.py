"""Training with two processes (trainer=ddp_sim: CPU, gloo), launched by Lightning or by srun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytorch_lightning as pl
from conftest import compose_config
from hydra.types import RunMode
from hydra.utils import instantiate

from glacier.errors import GlacierInputError
from glacier.models import GlacierSegmenter
from glacier.utils.cluster import process_rank, run_id

ROOT = Path(__file__).resolve().parents[1]
MULTIRUN = RunMode.MULTIRUN
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE", "MASTER_PORT")
SMALL = [
    "trainer=ddp_sim",
    "data=synthetic",
    "model.depth=3",
    "model.base_filters=8",
    "callbacks.progress_bar=null",
]


def clean_environment(root: Path) -> dict[str, str]:
    """This environment without any launcher's or SLURM's variables; outputs under ``root``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SLURM_") and key not in LAUNCH_VARIABLES
    }
    env.pop("GLACIER_TASK", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env | {"WANDB_MODE": "disabled", "GLACIER_ROOT": str(root)}


def glacier_train(root: Path, overrides: list[str]) -> subprocess.CompletedProcess[str]:
    """``glacier train OVERRIDES`` in a fresh process (Lightning starts the second one)."""
    return subprocess.run(
        [sys.executable, "-m", "glacier.cli", "train", *overrides],
        cwd=root,
        env=clean_environment(root),
        capture_output=True,
        text=True,
        timeout=300,
    )


def only_run(root: Path) -> Path:
    (run,) = (root / "logs" / "train" / "runs").iterdir()  # one folder for both processes
    return run


def test_process_rank_and_run_id_read_the_launchers_environment() -> None:
    assert process_rank({}) == "0"
    assert process_rank({"SLURM_PROCID": "5"}) == "5"  # srun
    assert process_rank({"RANK": "3", "LOCAL_RANK": "1"}) == "3"  # torchrun
    # a child Lightning started inside an interactive `srun --pty bash` (SLURM_PROCID=0)
    assert process_rank({"LOCAL_RANK": "1", "SLURM_PROCID": "0"}) == "1"
    assert process_rank({"LOCAL_RANK": "0", "NODE_RANK": "1"}) == "1.0"
    step = {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "2", "SLURM_STEP_NUM_TASKS": "8"}
    assert run_id("now", step) == "slurm-77.2"  # every task of the step agrees
    assert run_id("now", step | {"SLURM_STEP_NUM_TASKS": "1"}) == "now"  # srun --pty bash
    assert run_id("now", {"SLURM_JOB_ID": "77", "SLURM_NTASKS": "8"}) == "now"  # batch script


def test_ddp_sim_fast_dev_run_writes_one_metrics_file(tmp_path: Path) -> None:
    done = glacier_train(tmp_path, [*SMALL, "debug=fdr"])
    assert done.returncode == 0, done.stderr[-3000:]
    run = only_run(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == 2 and "test/iou_mean" in metrics["test"]
    assert sorted(p.name for p in run.glob("*.log")) == ["train.log", "train_ddp_process_1.log"]
    assert len(list(tmp_path.rglob("metrics.json"))) == 1
    assert len(list(tmp_path.rglob("config.yaml"))) == 1  # .hydra/ written once


def test_ddp_sim_checkpoints_once_and_tests_like_one_process(tmp_path: Path) -> None:
    done = glacier_train(tmp_path, [*SMALL, "debug=limit"])
    assert done.returncode == 0, done.stderr[-3000:]
    run = only_run(tmp_path)
    assert sorted(p.relative_to(run) for p in run.rglob("*.ckpt")) == [
        Path("checkpoints/best.ckpt"),
        Path("checkpoints/last.ckpt"),
    ]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["best_checkpoint"].endswith("best.ckpt")

    cfg = compose_config("train", [*SMALL, "debug=limit"], tmp_path)
    datamodule = instantiate(cfg.datamodule, _convert_="all")
    module = GlacierSegmenter.load_from_checkpoint(metrics["best_checkpoint"], weights_only=True)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        limit_test_batches=cfg.trainer.limit_test_batches,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (alone,) = trainer.test(module, datamodule=datamodule, verbose=False)
    assert metrics["test"] == alone  # exact: no sample counted twice


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_srun_tasks_share_one_run_folder_and_rank_zero_preprocesses(tmp_path: Path) -> None:
    """What `srun glacier train trainer=ddp ...` does on SLURM, with srun's variables faked."""
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_ID": "0",
        "SLURM_NTASKS": "2",
        "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "localhost",
        "SLURM_JOB_NAME": "glacier",
        "MASTER_PORT": str(free_port()),
    }
    tasks = [
        subprocess.Popen(
            [sys.executable, "-m", "glacier.cli", "train", *SMALL, "debug=fdr"],
            cwd=tmp_path,
            env=clean_environment(tmp_path) | slurm | {"SLURM_PROCID": r, "SLURM_LOCALID": r},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in ("0", "1")
    ]
    for task in tasks:
        output, _ = task.communicate(timeout=300)
        assert task.returncode == 0, output[-3000:]
    run = only_run(tmp_path)
    assert run.name == "slurm-4242.0"
    assert json.loads((run / "metrics.json").read_text())["processes"] == 2
    assert sorted(p.name for p in run.glob("*.log")) == ["train.log", "train_rank1.log"]
    assert len(list(tmp_path.rglob("config.yaml"))) == 1
    assert "postprocess:" in (run / "train.log").read_text()  # rank 0 preprocessed
    assert "postprocess:" not in (run / "train_rank1.log").read_text()


def test_ddp_inside_a_sweep_is_refused(tmp_path: Path) -> None:
    done = glacier_train(tmp_path, ["-m", *SMALL, "debug=fdr", "dropout=0.1,0.2"])
    assert done.returncode != 0
    assert "each process would run the whole sweep" in done.stderr


def test_srun_or_torchrun_sweeps_are_refused_but_submitit_jobs_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from glacier.tasks import ddp

    hydra = SimpleNamespace(initialized=lambda: True, get=lambda: SimpleNamespace(mode=MULTIRUN))
    monkeypatch.setattr(ddp, "HydraConfig", hydra)
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)

    def trainer(processes: int, external: bool) -> Any:
        environment = SimpleNamespace(creates_processes_externally=external)
        strategy = SimpleNamespace(
            num_processes=processes, num_nodes=2, cluster_environment=environment
        )
        return SimpleNamespace(strategy=strategy)

    with pytest.raises(GlacierInputError, match="8 training processes"):
        ddp.refuse_sweep_in_every_process(trainer(4, external=True))  # srun -n 8 ... -m
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")  # one job of a submitit_slurm sweep
    ddp.refuse_sweep_in_every_process(trainer(4, external=True))
    with pytest.raises(GlacierInputError):  # Lightning would re-run the command line
        ddp.refuse_sweep_in_every_process(trainer(4, external=False))
    ddp.refuse_sweep_in_every_process(SimpleNamespace(strategy=SimpleNamespace()))


def test_other_ranks_wait_for_rank_zero_then_fail_naming_the_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from glacier.tasks import ddp

    for key in LAUNCH_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setattr(ddp, "POLL_SECONDS", 0.05)
    checks: list[bool] = []
    done = SimpleNamespace(is_complete=lambda: checks.append(True) or len(checks) > 2)
    datamodule: Any = SimpleNamespace(preprocessor=done, processed_dir=tmp_path)
    ddp.prepare_data_once(datamodule, timeout=5)  # complete at the third look
    assert len(checks) == 3 and datamodule.prepare_data_per_node is False
    datamodule.preprocessor = SimpleNamespace(is_complete=lambda: False)
    with pytest.raises(GlacierInputError, match=f"rank 1: the processed dataset {tmp_path}"):
        ddp.prepare_data_once(datamodule, timeout=0.2)
