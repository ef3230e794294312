"""What every benchmark row is built from: a workload in a fresh process, a fresh output folder,
and a comparison of a figure with its limit as a higher-is-better ratio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def workload(name: str, **args: Any) -> dict[str, Any]:
    """Run one workload in a fresh Python process and return its JSON result.

    What earlier workloads wrote is flushed to disk first (``os.sync``): no run pays for the
    writeback of the run before it.
    """
    os.sync()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.workloads", name, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"benchmark workload {name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fresh_folder(parent: Path, name: str) -> str:
    """A new, empty folder under ``parent`` for one timed run's outputs (never reused)."""
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"{name}-", dir=parent)


def comparison(
    name: str,
    value: float,
    limit: float,
    unit: str,
    target: float,
    ratio: float | None = None,
    gate: bool = True,
) -> dict[str, Any]:
    """One row: a measured figure beside its limit, as a higher-is-better ratio."""
    ratio = value / limit if ratio is None else ratio
    return {
        "name": name,
        "value": round(value, 4),
        "limit": round(limit, 4),
        "unit": unit,
        "ratio": round(ratio, 3),
        "target": target,
        "met": ratio >= target,
        "gate": gate,
    }
