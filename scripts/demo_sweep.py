"""Tune the demo on the dev split: train a configuration for several seeds, score dev and test.

Usage (from the repository root; one training at a time, sequentially)::

    python scripts/demo_sweep.py run NAME [--seeds 1 2 3] [-- OVERRIDE ...]
    python scripts/demo_sweep.py table [--test] [NAME ...]

``run`` trains ``experiment=demo`` plus the overrides once per seed under
``logs/sweep/NAME/seed_S/`` (the test step is skipped), then scores the best checkpoint on the
dev slices and the test slices, each plain and with test-time augmentation, and writes
``eval.json`` beside it. ``table`` prints a Markdown table of mean ± std (ddof 1) over seeds:
dev only, unless ``--test`` (the protocol: choose on dev; look at test once, at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SWEEP_DIR = ROOT / "logs" / "sweep"
PROCESSED = "logs/demo/processed"
# (checkpoint, TTA, key suffix): the best checkpoint plain and with TTA, the final one with TTA
EVALUATIONS = (("best", False, ""), ("best", True, "_tta"), ("last", True, "_last_tta"))


def train(name: str, seed: int, overrides: list[str]) -> dict[str, Any]:
    """Train one seed of a configuration; return wall time and load."""
    run_dir = SWEEP_DIR / name / f"seed_{seed}"
    command = [
        sys.executable,
        "-m",
        "glacier.cli",
        "train",
        "experiment=demo",
        f"seed={seed}",
        "test=false",
        f"paths.processed_dir={PROCESSED}",
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        *overrides,
    ]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(run_dir.parent / f"seed_{seed}.log", "w") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": cpu,  # user + system CPU seconds: what a quiet machine's wall time scales with
        "load_start": load,
        "load_end": os.getloadavg()[0],
    }


def evaluate(run_dir: Path) -> dict[str, Any]:
    """Dev and test metrics of a run's best checkpoint (plain, TTA) and last one (TTA)."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from glacier.models import GlacierSegmenter

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    cfg.paths.processed_dir = PROCESSED
    datamodule = instantiate(cfg.datamodule, _convert_="all")
    datamodule.setup("test")
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    results: dict[str, Any] = {}
    for checkpoint, tta, suffix in EVALUATIONS:
        module = GlacierSegmenter.load_from_checkpoint(
            run_dir / "checkpoints" / f"{checkpoint}.ckpt",
            map_location="cpu",
            weights_only=True,
            tta=tta,
        )
        for split in ("dev", "test"):
            # the datamodule prepares batches (on_after_batch_transfer): serve `split` as test
            datamodule.test_dataloader = lambda s=split: datamodule._loader(s, shuffle=False)
            values = trainer.test(module, datamodule=datamodule, verbose=False)[0]
            results[split + suffix] = {k.replace("test/", ""): float(v) for k, v in values.items()}
    return results


def run(name: str, seeds: list[int], overrides: list[str]) -> None:
    """Train and score every seed of one configuration."""
    (SWEEP_DIR / name).mkdir(parents=True, exist_ok=True)
    (SWEEP_DIR / name / "overrides.json").write_text(json.dumps(overrides))
    for seed in seeds:
        run_dir = SWEEP_DIR / name / f"seed_{seed}"
        if (run_dir / "eval.json").is_file():
            continue
        if (run_dir / "metrics.json").is_file() and (run_dir / "timing.json").is_file():
            timing = json.loads((run_dir / "timing.json").read_text())
            if timing.get("started"):  # trained outside this script: wall time from the files
                finished = (run_dir / "metrics.json").stat().st_mtime
                timing["wall_s"] = finished - timing["started"]
                timing["load_end"] = timing["load_start"]
        else:
            timing = train(name, seed, overrides)
            (run_dir / "timing.json").write_text(json.dumps(timing))
        record = json.loads((run_dir / "metrics.json").read_text())
        scores = evaluate(run_dir)
        out = {
            **timing,
            **scores,
            "epochs": record["epochs"],
            "steps": record.get("global_step"),
            "max_time_fired": record.get("max_time_fired"),
        }
        (run_dir / "eval.json").write_text(json.dumps(out, indent=1))
        print(
            f"{name} seed {seed}: dev {scores['dev']['iou_mean']:.3f} "
            f"dev_tta {scores['dev_tta']['iou_mean']:.3f} wall {timing['wall_s']:.0f}s "
            f"load {timing['load_start']:.1f}->{timing['load_end']:.1f}",
            flush=True,
        )


def reevaluate(names: list[str]) -> None:
    """Score the trained runs of these configurations again (after adding evaluations)."""
    for name in names:
        for run_dir in sorted((SWEEP_DIR / name).glob("seed_*/")):
            path = run_dir / "eval.json"
            if path.is_file():
                record = json.loads(path.read_text())
                path.write_text(json.dumps(record | evaluate(run_dir), indent=1))


def _stat(values: list[float]) -> str:
    if not values:
        return "–"
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.3f} ± {std:.3f}"


def table(names: list[str], show_test: bool) -> str:
    """Markdown table of mean ± std over each configuration's seeds."""
    names = names or sorted(p.name for p in SWEEP_DIR.iterdir() if p.is_dir())
    columns = ["dev", "dev_tta", "dev_last_tta"]
    columns += ["test", "test_tta", "test_last_tta"] if show_test else []
    lines = [
        "| config | seeds | "
        + " | ".join(f"{c} mIoU" for c in columns)
        + " | train wall s | train CPU s | load |",
        "|---" * (len(columns) + 5) + "|",
    ]
    for name in names:
        evals = [json.loads(p.read_text()) for p in sorted((SWEEP_DIR / name).glob("*/eval.json"))]
        if not evals:
            continue
        cells = [_stat([e[c]["iou_mean"] for e in evals if c in e]) for c in columns]
        wall = np.mean([e["wall_s"] for e in evals])
        cpu = [e["cpu_s"] for e in evals if e.get("cpu_s")]
        cpu_cell = f"{np.mean(cpu):.0f}" if cpu else "–"
        load = np.mean([e["load_start"] + e["load_end"] for e in evals]) / 2
        fired = " (max_time fired)" if any(e.get("max_time_fired") for e in evals) else ""
        lines.append(
            f"| {name}{fired} | {len(evals)} | "
            + " | ".join(cells)
            + f" | {wall:.0f} | {cpu_cell} | {load:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("name")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    run_parser.add_argument("overrides", nargs="*")
    table_parser = sub.add_parser("table")
    table_parser.add_argument("names", nargs="*")
    table_parser.add_argument("--test", action="store_true")
    sub.add_parser("reeval").add_argument("names", nargs="+")
    args = parser.parse_args()
    if args.command == "run":
        run(args.name, args.seeds, args.overrides)
    elif args.command == "reeval":
        reevaluate(args.names)
    else:
        print(table(args.names, args.test))


if __name__ == "__main__":
    main()
