"""The one-node Slurm of tests/slurm/start.sh (the ``slurm`` fixture), and commands run on it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START, STOP = ROOT / "tests" / "slurm" / "start.sh", ROOT / "tests" / "slurm" / "stop.sh"
DOCS = ROOT / "docs" / "scaling.md"
CANNOT_START = 3  # start.sh's exit status where Slurm cannot run (no root, no apt-get)
# What a submitit_slurm job asks of the test node (2 CPUs, ~23 GB, a 30-minute debug partition):
# the shipped defaults (8 CPUs, 32 GB, 240 minutes) exceed it and sbatch refuses them.
LAUNCHER = [
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=10",
]


@dataclass(frozen=True)
class Cluster:
    """A running test cluster: its folder (slurm.conf, logs) and its client configuration."""

    folder: Path

    @property
    def conf(self) -> Path:
        """The ``slurm.conf`` every client command reads (``SLURM_CONF``)."""
        return self.folder / "slurm.conf"

    def env(self, root: Path) -> dict[str, str]:
        """This process's environment for a glacier command with its outputs under ``root``.

        SLURM_* variables of a job that might run pytest itself are dropped: the commands are
        submitted, not run inside an allocation.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env.pop("GLACIER_TASK", None)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        return env | {
            "SLURM_CONF": str(self.conf),
            "GLACIER_ROOT": str(root),
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "HYDRA_FULL_ERROR": "1",
        }

    def command(self, *args: str, timeout: float = 60) -> str:
        """Run a Slurm client command (``scontrol``, ``squeue``...) and return its stdout."""
        done = subprocess.run(
            list(args),
            env={**os.environ, "SLURM_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
        return done.stdout

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, Restarts, ...)."""
        fields = self.command("scontrol", "show", "job", "--oneliner", job_id).split()
        return dict(field.split("=", 1) for field in fields if "=" in field)


def glacier_command(task: str, *overrides: str) -> list[str]:
    """``glacier TASK OVERRIDES`` as this interpreter runs it."""
    return [sys.executable, "-m", "glacier.cli", task, *overrides]


def shell_words(command: str, **variables: list[str]) -> list[str]:
    """A documented ``glacier ...`` line as arguments; ``$NAME`` words expand to ``variables``."""
    words: list[str] = []
    for word in shlex.split(command):
        if word.startswith("$") and word[1:] in variables:
            words += variables[word[1:]]
            continue
        for name, values in variables.items():
            word = word.replace(f"${name}", " ".join(values))
        words.append(word)
    assert words[0] == "glacier", command
    return words[1:]


def documented(command: str) -> bool:
    """Whether docs/scaling.md shows ``command`` (backslash-continued lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCS.read_text())
    return command in re.sub(r"[ \t]+", " ", text)


def run_documented(
    cluster: Cluster, root: Path, command: str, timeout: float = 420, **variables: list[str]
) -> subprocess.CompletedProcess[str]:
    """Run a ``glacier`` command line that docs/scaling.md shows, from ``root``."""
    assert documented(command), f"docs/scaling.md does not show: {command}"
    return run_glacier(cluster, root, *shell_words(command, **variables), timeout=timeout)


def run_glacier(
    cluster: Cluster, root: Path, task: str, *overrides: str, timeout: float = 420
) -> subprocess.CompletedProcess[str]:
    """Run ``glacier TASK OVERRIDES`` from ``root`` (a multirun waits for its Slurm jobs)."""
    return subprocess.run(
        glacier_command(task, *overrides),
        cwd=root,
        env=cluster.env(root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` twice a second until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.5)


def only(paths: list[Path]) -> Path:
    """The one path of a glob result."""
    assert len(paths) == 1, paths
    return paths[0]


def start_cluster(folder: Path) -> Cluster:
    """Start munged, slurmctld and slurmd in ``folder`` (installing slurm-wlm if missing).

    Where Slurm cannot start (not root, no apt-get) the calling test skips with the reason, or
    fails under ``SLURM_REQUIRED=1`` (CI).
    """
    done = subprocess.run(
        ["bash", str(START), str(folder)], capture_output=True, text=True, timeout=900
    )
    if done.returncode == CANNOT_START:
        reason = done.stderr.strip().splitlines()[-1]
        if os.environ.get("SLURM_REQUIRED") == "1":
            pytest.fail(f"SLURM_REQUIRED=1, but {reason}")
        print(reason)
        pytest.skip(reason)
    assert done.returncode == 0, f"tests/slurm/start.sh failed:\n{done.stderr[-3000:]}"
    return Cluster(folder)


def slurm_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's cluster (the ``slurm`` fixture of tests/conftest.py), stopped at the end."""
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        subprocess.run(["bash", str(STOP), str(cluster.folder)], timeout=120, check=False)
