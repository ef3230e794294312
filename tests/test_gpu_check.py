"""make gpu-check: its steps, their figures, and the whole check run on the CPU (tiny)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import ROOT, cuda_test_files, pytest_counts, steps

EXPECTED_STEPS = [
    "cuda-tests",
    "bench-cache",
    "demo-preprocess",
    "demo-train",
    "demo-predict",
    "bench-predict",
]


def test_the_gpu_steps_are_the_commands_a_user_types(tmp_path: Path) -> None:
    planned = {step.name: step.argv for step in steps(tmp_path, cpu=False)}
    assert list(planned) == EXPECTED_STEPS
    train = planned["demo-train"]
    assert train[1:5] == ["-m", "glacier.cli", "train", "experiment=demo"]
    assert "trainer=gpu" in train and not any("determinis" in a or "threads" in a for a in train)
    assert "mc_samples=8" in planned["demo-predict"]
    assert planned["cuda-tests"][planned["cuda-tests"].index("-k") + 1] == "cuda"
    assert (
        "tests/test_cache.py" in cuda_test_files() and "tests/test_predict.py" in cuda_test_files()
    )
    assert "--device" not in planned["bench-cache"]  # CUDA's rows, where the check runs
    cpu = {step.name: step.argv for step in steps(tmp_path, cpu=True)}
    assert "trainer=cpu" in cpu["demo-train"] and "mc_samples=2" in cpu["demo-predict"]
    assert cpu["bench-cache"][3:5] == ["--device", "cpu"]


def test_pytest_counts_read_the_closing_line() -> None:
    log = "....s\n=== 8 passed, 3 skipped, 120 deselected in 41.2s ===\n"
    assert pytest_counts(log) == {"passed": 8, "skipped": 3, "deselected": 120}
    assert pytest_counts("ImportError: no module named rasterio") == {}


@pytest.mark.slow
def test_the_whole_check_runs_on_the_cpu(tmp_path: Path) -> None:
    """Every step of make gpu-check, on the CPU with tiny sizes (the CUDA tests skip here)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.gpu_check",
            "--cpu",
            "--out",
            str(tmp_path),
            "--budget",
            "1500",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    outcomes = {step["name"]: step for step in report["steps"]}
    assert list(outcomes) == EXPECTED_STEPS
    assert {name: o["status"] for name, o in outcomes.items()} == dict.fromkeys(
        EXPECTED_STEPS, "ok"
    ), done.stdout[-3000:]
    assert done.returncode == 0 and report["mode"] == "cpu"
    tests = outcomes["cuda-tests"]["figures"]
    assert tests.get("skipped", 0) >= 4 and not tests.get("failed")  # no CUDA here
    train = outcomes["demo-train"]["figures"]
    assert train["deterministic"] is True and train["threads"] == 2  # the CPU demo's settings
    assert train["cache"].startswith("training cache on device (cpu)")
    assert 0 < outcomes["demo-predict"]["figures"]["LE71400412000304SGS00"] < 1  # mapped, scored
    rows = outcomes["bench-cache"]["figures"]["rows"]
    assert any("epoch of 16 windows, cache=device" in row["name"] for row in rows)
    assert outcomes["bench-predict"]["figures"]["rows"]
    assert "demo-train" in done.stdout and (tmp_path / "demo-train.log").is_file()
