"""tests/slurm/start.sh refuses clearly where Slurm cannot run, and the tests then skip or fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import slurm_cluster
from slurm_cluster import CANNOT_START, START, start_cluster


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to run as nobody"
)
def test_start_script_without_root_exits_3_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir(mode=0o777)
    tmp_path.chmod(0o755)
    with START.open() as script:  # on stdin: nobody may not read the clone (mktemp -d: 0700)
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", "bash", "-s", "--", str(folder)],
            stdin=script,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == CANNOT_START
    assert done.stderr.strip().splitlines()[-1].startswith("cannot start Slurm here: ")
    assert not (folder / "slurm.conf").exists()  # nothing started, nothing written


def refusing_start(tmp_path: Path) -> Path:
    script = tmp_path / "start.sh"
    script.write_text(f"echo 'cannot start Slurm here: no apt-get' >&2; exit {CANNOT_START}\n")
    return script


def test_a_cluster_that_cannot_start_skips_the_tests_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slurm_cluster, "START", refusing_start(tmp_path))
    monkeypatch.delenv("SLURM_REQUIRED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="cannot start Slurm here: no apt-get"):
        start_cluster(tmp_path / "cluster")


def test_under_slurm_required_a_cluster_that_cannot_start_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slurm_cluster, "START", refusing_start(tmp_path))
    monkeypatch.setenv("SLURM_REQUIRED", "1")
    with pytest.raises(pytest.fail.Exception, match="SLURM_REQUIRED=1, but cannot start"):
        start_cluster(tmp_path / "cluster")
