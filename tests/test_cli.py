"""The ``glacier`` console script: tasks from any folder, one-line errors, packaged configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glacier.cli import TASKS, usage


def glacier(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m glacier.cli ARGS`` in ``cwd`` (what the console script runs)."""
    environment = {**os.environ, "WANDB_MODE": "disabled", **env}
    environment.pop("GLACIER_TASK", None)
    return subprocess.run(
        [sys.executable, "-m", "glacier.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=600,
    )


def test_usage_lists_every_task() -> None:
    text = usage()
    for name in TASKS:
        assert f"  {name}" in text


def test_unknown_task_is_refused(tmp_path: Path) -> None:
    done = glacier(["trian"], tmp_path)
    assert done.returncode == 2
    assert "unknown task 'trian'" in done.stderr


def test_preprocess_runs_from_any_folder_with_packaged_configs(tmp_path: Path) -> None:
    done = glacier(["preprocess", "data=synthetic", "preprocessor.progress=false"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((tmp_path / "data/processed/synthetic/dataset.json").read_text())
    assert info["classes"] == ["clean_ice", "debris"]
    runs = list((tmp_path / "logs/preprocess/runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "preprocess.log").is_file()


def test_bad_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    done = glacier(["predict", f"ckpt_path={tmp_path}/missing.ckpt"], tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"glacier predict: error: checkpoint not found: {tmp_path}/missing.ckpt"]


def test_full_trace_on_request(tmp_path: Path) -> None:
    done = glacier(
        ["predict", f"ckpt_path={tmp_path}/missing.ckpt"], tmp_path, HYDRA_FULL_ERROR="1"
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "GlacierFileNotFoundError" in done.stderr


@pytest.mark.parametrize("script", ["train.py", "predict.py", "preprocess.py"])
def test_wrapper_scripts_are_thin(script: str) -> None:
    source = (Path(__file__).resolve().parents[1] / script).read_text()
    assert "from glacier.tasks." in source and len(source.splitlines()) <= 8


def test_report_summarizes_a_run_folder(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    metrics = {"test": {"test/iou_glacier": 0.5, "test/iou_mean": 0.6}, "best_checkpoint": "x"}
    (tmp_path / "train" / "metrics.json").write_text(json.dumps(metrics))
    done = glacier(["report", f"run_dir={tmp_path}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "0.500" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # report writes nothing


def test_version_names_the_distribution_from_its_metadata(tmp_path: Path) -> None:
    import tomllib
    from importlib.metadata import version

    from glacier import DISTRIBUTION, __version__

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert project["project"]["name"] == DISTRIBUTION == "hkh-glacier-mapping"
    assert __version__ == version(DISTRIBUTION) == project["project"]["version"]
    done = glacier(["--version"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hkh-glacier-mapping {__version__}"


def test_console_script_answers_help_and_version_from_any_folder(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "glacier"
    assert script.is_file(), "the `glacier` console script is not installed"
    for flag in ("--help", "--version"):
        done = subprocess.run(
            [str(script), flag], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hkh-glacier-mapping ")


def test_the_console_script_freezes_what_is_left_for_a_quick_exit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gc

    from glacier.cli import console

    monkeypatch.setattr(sys, "argv", ["glacier", "--version"])
    before = gc.get_freeze_count()
    try:
        console()
        assert gc.get_freeze_count() > before + 1000  # the last full pass at exit skips them
    finally:
        gc.unfreeze()  # this test process goes on
    assert "hkh-glacier-mapping" in capsys.readouterr().out
