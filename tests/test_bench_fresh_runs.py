"""The preprocessing benchmarks time fresh runs: each into an empty folder of its own.

A run into a folder that holds an earlier run of the same inputs skips its unchanged stages, so
its time is the cost of a no-op; `make bench` once reported such a rerun as the fresh figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import benchmarks.preprocess_rows as preprocess_rows
from benchmarks.preprocess_workloads import (
    PREPROCESS_WORKLOADS,
    fresh_output,
    preprocess,
    preprocess_everest,
    preprocess_everest_command,
)

TIMED_RUNS = ("preprocess", "preprocess_everest", "preprocess_everest_command")


@pytest.mark.parametrize("run", [preprocess, preprocess_everest, preprocess_everest_command])
def test_timed_runs_refuse_a_folder_with_an_earlier_run(tmp_path: Path, run: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset.json").write_text("{}")
    with pytest.raises(ValueError, match="not empty"):
        run({"dir": str(tmp_path), "out": str(out), "bands": 3, "tile": 64})


def test_fresh_output_accepts_an_absent_or_empty_folder(tmp_path: Path) -> None:
    assert fresh_output(tmp_path / "absent") == tmp_path / "absent"
    (tmp_path / "empty").mkdir()
    assert fresh_output(tmp_path / "empty") == tmp_path / "empty"


class FakeWorkloads:
    """Stands in for the workload processes: records calls, writes a file into each ``out``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, **args: Any) -> dict[str, Any]:
        if name in TIMED_RUNS:
            fresh_output(args["out"])  # what the real workloads check first
            Path(args["out"]).mkdir(parents=True, exist_ok=True)
            (Path(args["out"]) / "dataset.json").write_text("{}")
        if name == "rerun_everest":
            assert any(Path(args["out"]).iterdir()), "a rerun goes into a complete run's folder"
        self.calls.append((name, args))
        return {
            "seconds": 2.0 if name != "rerun_everest" else 0.1,
            "startup_seconds": 0.5,
            "cpu_seconds": 1.0 if name != "rerun_everest" else 0.05,
            "startup_cpu_seconds": 0.4,
            "outlines": 86,
            "slices": 20,
            "stored_bytes": 100,
            "other_bytes": 100,
            "window_bytes": 100,
            "peak_rss_mb": 10.0,
            "peak_anon_mb": 5.0,
        }


def test_every_timed_preprocessing_run_gets_an_empty_folder_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeWorkloads()
    monkeypatch.setattr(preprocess_rows, "workload", fake)
    rows = preprocess_rows.everest_rows(tmp_path / "everest", tiles=1, repeats=3)
    rows += preprocess_rows.preprocessing_rows(tmp_path, size=64, bands=3, tile=32)
    timed = [args["out"] for name, args in fake.calls if name in TIMED_RUNS]
    assert len(timed) == 5 and len(set(timed)) == 5  # 3 fresh runs, the command, the scene
    reruns = [args["out"] for name, args in fake.calls if name == "rerun_everest"]
    assert reruns == [timed[0]]  # the rerun row reuses the first fresh run's folder, by name
    names = [row["name"] for row in rows]
    fresh = next(row for row in rows if "fresh run" in row["name"] and "Everest" in row["name"])
    rerun = next(row for row in rows if "unchanged rerun" in row["name"])
    assert fresh["gate"] and fresh["target"] == 0.5
    assert not rerun["gate"] and rerun["value"] == pytest.approx(10.0)  # 1 / 0.1 s
    assert any("whole `glacier preprocess`" in name for name in names)


def test_workload_registry_names_each_preprocessing_workload_once() -> None:
    assert set(TIMED_RUNS) | {"rerun_everest"} <= set(PREPROCESS_WORKLOADS)
