"""A training job that Slurm signals before its time limit checkpoints, is requeued and resumes.

Lightning handles the signal, not submitit: the shipped launcher asks Slurm for SIGUSR1
(``#SBATCH --signal=USR1@120``), Lightning's SLURM environment saves ``hpc_ckpt_1.ckpt`` in the
job's folder and runs ``scontrol requeue``; submitit (which listens for USR2) logs nothing. The
requeued job resumes from that file, and ends exactly as the same job left alone.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from slurm_cluster import (
    LAUNCHER,
    Cluster,
    documented,
    glacier_command,
    only,
    run_documented,
    shell_words,
    wait_until,
)

pytestmark = pytest.mark.slurm
# A repeatable CPU run (fixed seed, one thread, deterministic kernels), long enough to be
# signalled mid-training (6 epochs of 12 batches), twice in one array (seed=42,42): task 0 runs
# undisturbed, task 1 is signalled. docs/scaling.md shows these lines ($SLURM: LAUNCHER).
PREPROCESS = "glacier preprocess data=synthetic"
TWICE = (
    "glacier train -m seed=42,42 data=synthetic model.depth=3 model.base_filters=8 loss=ce "
    "optimizer.lr=0.003 datamodule.batch_size=2 trainer.max_epochs=6 trainer.deterministic=true "
    "threads=1 logger=csv callbacks.prediction_panels=null callbacks.progress_bar=null "
    "trainer.enable_progress_bar=false $SLURM"
)
SIGNAL = "scancel --signal=USR1 $TASK"  # what #SBATCH --signal=USR1@120 sends, now
START_NOW = "scontrol update JobId=$TASK StartTime=now"
# Equal in the two jobs' metrics.json when the resumed run trained exactly as the other.
RESULTS = ("test", "final_fit", "best_score", "epochs", "global_step")


def test_signalled_job_is_requeued_and_resumes_to_the_uninterrupted_result(
    slurm: Cluster, tmp_path: Path
) -> None:
    done = run_documented(slurm, tmp_path, PREPROCESS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert documented(TWICE) and documented(SIGNAL) and documented(START_NOW)
    output = (tmp_path / "launcher.log").open("w")
    launcher = subprocess.Popen(
        glacier_command(*shell_words(TWICE, SLURM=LAUNCHER)),
        cwd=tmp_path,
        env=slurm.env(tmp_path),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    runs = tmp_path / "logs" / "train" / "multiruns"
    wait_until(lambda: bool(list(runs.glob("*/1/checkpoints/last.ckpt"))), 300, "epoch 1 of job 1")
    sweep = only(sorted(runs.iterdir()))
    signalled = only(sorted((sweep / ".submitit").glob("*_1"))).name
    slurm.command(*SIGNAL.replace("$TASK", signalled).split())
    wait_until(lambda: slurm.job(signalled)["JobState"] == "PENDING", 120, "the requeue")
    assert (sweep / "1" / "hpc_ckpt_1.ckpt").is_file()
    # Slurm holds a requeued job ~2 minutes before it may start again; start it now
    slurm.command(*START_NOW.replace("$TASK", signalled).split())
    launcher.wait(timeout=400)
    output.close()
    assert launcher.returncode == 0, (tmp_path / "launcher.log").read_text()[-3000:]

    alone, resumed = (json.loads((sweep / j / "metrics.json").read_text()) for j in "01")
    assert {k: resumed[k] for k in RESULTS} == {k: alone[k] for k in RESULTS}
    assert resumed["epochs"] == 6 and resumed["global_step"] == 72
    assert slurm.job(signalled)["Restarts"] == "1"
    assert slurm.job(signalled.replace("_1", "_0"))["Restarts"] == "0"
    log = (sweep / "1" / "train.log").read_text()
    assert "SIGUSR1 received: handled at the end of the current training batch" in log
    submitit = sweep / ".submitit" / signalled
    lightning = only(sorted(submitit.glob("*_log.err"))).read_text()
    assert "Handling auto-requeue signal: 10" in lightning  # Lightning took the signal ...
    restored = f"Restored all states from the checkpoint at {sweep / '1' / 'hpc_ckpt_1.ckpt'}"
    assert restored in lightning
    assert "Caught signal" not in lightning + only(sorted(submitit.glob("*_log.out"))).read_text()
