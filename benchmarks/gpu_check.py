"""``make gpu-check``: on a machine with a GPU (and no network), the GPU paths in one run.

Steps, each in its own process under its own timeout, all within a 5-minute budget:
the CUDA tests (``pytest -m "not slow" -k cuda`` over the test files that have them), the demo
on the GPU as a user types it (``glacier preprocess`` of the Everest sample, ``glacier train
experiment=demo trainer=gpu``, ``glacier predict … mc_samples=8``) and the GPU benchmark rows, in
this order of importance: CUDA tests, the cache rows (``benchmarks.run --rows gpu-epoch,
gpu-cache``: training epochs, then each mode's loader; saved after each group), the
demo, the prediction rows (``gpu-predict`` on a 4000² scene). A step the budget has no time left
for is cut or skipped, and says so (``--budget`` gives more). It prints one table and writes
``OUT/gpu_check.json`` (machine, steps with status, seconds and figures, benchmark rows) with
every step's log beside it. ``--cpu`` runs the same steps on the CPU with tiny sizes (a test
of the check itself; the CUDA tests then skip).

    python -m benchmarks.gpu_check --out OUT [--cpu] [--budget 290]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 290.0


@dataclass
class Step:
    """One command of the check.

    Attributes:
        name: Step name.
        argv: The command.
        timeout: Seconds it may take (less when the budget has less left).
        figures: Reads the step's figures from its log text and the output folder.
    """

    name: str
    argv: list[str]
    timeout: float
    figures: Callable[[str], dict[str, Any]] = field(default=lambda log: {}, repr=False)


@dataclass
class Outcome:
    """What one step did."""

    name: str
    status: str
    seconds: float
    figures: dict[str, Any]
    command: str


def cuda_test_files() -> list[str]:
    """Test files with CUDA cases (they mark them "needs CUDA")."""
    return sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").glob("test_*.py")
        if "needs CUDA" in p.read_text()
    )


def pytest_counts(log: str) -> dict[str, Any]:
    """``passed``/``failed``/``skipped``/``error`` counts of pytest's closing line."""
    lines = [line for line in log.splitlines() if re.search(r"\d+ (passed|failed|skipped)", line)]
    if not lines:
        return {}
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", lines[-1]) if word != "in"}


def json_file(path: Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON file's content (or only ``keys``), empty when it is missing."""
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return {k: data.get(k) for k in keys} if keys else data


def train_figures(run: Path, log: str) -> dict[str, Any]:
    """Test scores, steps, kernels and where the training cache went."""
    record = json_file(run / "metrics.json")
    cache = re.findall(r"(training cache on [^\n]*|no training cache: [^\n]*)", log)
    return {
        "test_iou_mean": (record.get("test") or {}).get("test/iou_mean"),
        "global_step": record.get("global_step"),
        "deterministic": record.get("deterministic"),
        "threads": record.get("threads"),
        "max_time_fired": record.get("max_time_fired"),
        "cache": cache[-1] if cache else None,
    }


def predict_figures(out: Path) -> dict[str, Any]:
    """Mean IoU of each mapped scene (its ``*_metrics.json``)."""
    scores = {}
    for path in sorted(out.glob("*_metrics.json")):
        data = json.loads(path.read_text())
        scores[path.name.removesuffix("_metrics.json")] = data.get("metrics", {}).get("iou_mean")
    return scores


def steps(out: Path, cpu: bool) -> list[Step]:
    """The check's steps (``cpu``: the same on the CPU, tiny)."""
    py = sys.executable
    demo = out / "demo"
    data = f"paths.processed_dir={demo / 'processed'}"
    glacier = [py, "-m", "glacier.cli"]
    tiny = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2"]
    tiny += ["trainer.limit_test_batches=1"]
    bench = [py, "-m", "benchmarks.run", *(["--device", "cpu", "--quick"] if cpu else [])]
    size = ["--predict-size", "4000"]  # half the edge of make bench's scene: within the budget
    return [
        Step(
            "cuda-tests",
            [
                py,
                "-m",
                "pytest",
                "-q",
                "-m",
                "not slow",
                "-k",
                "cuda",
                "-p",
                "no:cacheprovider",
                *cuda_test_files(),
            ],
            120,
            pytest_counts,
        ),
        bench_step("cache", [*bench, "--rows", "gpu-epoch,gpu-cache"], out),
        Step(
            "demo-preprocess",
            [
                *glacier,
                "preprocess",
                "split=everest_geographic",
                data,
                f"hydra.run.dir={demo / 'preprocess'}",
            ],
            60,
        ),
        Step(
            "demo-train",
            [
                *glacier,
                "train",
                "experiment=demo",
                "trainer=cpu" if cpu else "trainer=gpu",
                data,
                f"hydra.run.dir={demo / 'train'}",
                *(tiny if cpu else []),
            ],
            100,
            lambda log: train_figures(demo / "train", log),
        ),
        Step(
            "demo-predict",
            [
                *glacier,
                "predict",
                f"ckpt_path={demo / 'train' / 'checkpoints' / 'best.ckpt'}",
                "labels=data",
                f"mc_samples={2 if cpu else 8}",
                f"out_dir={demo / 'predict'}",
                f"hydra.run.dir={demo / 'predict'}",
                *(["device=cpu"] if cpu else []),
            ],
            60,
            lambda log: predict_figures(demo / "predict"),
        ),
        bench_step("predict", [*bench, "--rows", "gpu-predict", *([] if cpu else size)], out),
    ]


def bench_step(group: str, argv: list[str], out: Path) -> Step:
    """A group of GPU benchmark rows, written to ``OUT/bench-GROUP.json``."""
    path = out / f"bench-{group}.json"
    return Step(
        f"bench-{group}",
        [*argv, "--out", str(path)],
        600,
        lambda log: {"rows": json_file(path).get("comparisons", [])},
    )


CPU_SLOWER = 10  # --cpu: a 2-core CPU does the same steps, tiny, some ten times slower


def run_step(step: Step, out: Path, left: float) -> Outcome:
    """Run one step under ``min(its timeout, left)`` seconds, its output in ``OUT/NAME.log``."""
    command = " ".join(step.argv)
    if left < 5:
        return Outcome(step.name, "skipped: the 5-minute budget is spent", 0.0, {}, command)
    log_path = out / f"{step.name}.log"
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    start = time.perf_counter()
    limit = min(step.timeout, left)
    with open(log_path, "w") as log:
        # a session of its own: a timeout ends the step's workers and workloads too
        process = subprocess.Popen(
            step.argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=limit)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = f"timeout after {limit:.0f} s"
    seconds = time.perf_counter() - start
    text = log_path.read_text(errors="replace")
    try:
        figures = step.figures(text)
    except (OSError, ValueError, KeyError) as error:
        figures = {"unreadable": str(error)}
    return Outcome(step.name, status, round(seconds, 1), figures, command)


def machine() -> dict[str, Any]:
    """The machine and software the figures come from."""
    import torch

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "commit": commit or "unknown (no git here)",
        "date": time.strftime("%Y-%m-%d"),
    }


def print_table(outcomes: list[Outcome]) -> None:
    """Print every step and, after them, the benchmark rows."""
    print(f"{'step':<16} {'status':<28} {'s':>7}  figures")
    for o in outcomes:
        shown = {k: v for k, v in o.figures.items() if k != "rows"}
        print(f"{o.name:<16} {o.status[:28]:<28} {o.seconds:>7.1f}  {json.dumps(shown)[:200]}")
    for o in outcomes:
        if o.figures.get("rows"):
            from benchmarks.run import print_table as print_rows

            print()
            print_rows(o.figures["rows"])


def main() -> None:
    """Run the check and write ``OUT/gpu_check.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "gpu-check")
    parser.add_argument("--cpu", action="store_true", help="the same steps on the CPU, tiny")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for all steps")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start, outcomes = time.perf_counter(), []
    for step in steps(args.out.resolve(), args.cpu):
        step.timeout *= CPU_SLOWER if args.cpu else 1
        left = args.budget - (time.perf_counter() - start)
        outcomes.append(run_step(step, args.out, left))
        print(f"{step.name}: {outcomes[-1].status} ({outcomes[-1].seconds:.1f} s)", flush=True)
    total = round(time.perf_counter() - start, 1)
    report = {
        "machine": machine(),
        "seconds": total,
        "mode": "cpu" if args.cpu else "gpu",
        "steps": [asdict(o) for o in outcomes],
    }
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print_table(outcomes)
    print(f"\n{total:.0f} s in all; written: {args.out / 'gpu_check.json'}")
    sys.exit(0 if all(o.status == "ok" for o in outcomes) else 1)


if __name__ == "__main__":
    main()
