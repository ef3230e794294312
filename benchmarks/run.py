"""Run every benchmark, print figure / limit / ratio / target, write ``benchmarks/results.json``.

Every ratio is oriented so that higher is better and a target is met when ratio >= target.
Workloads run in fresh processes (``benchmarks.workloads``) so peak RSS is per workload. Rows
marked ``gate`` must be met on the 2-core CPU machine; GPU rows run only where CUDA is present
and state the goal without gating.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.cache_rows import (
    FULL,
    QUICK,
    cpu_cache_rows,
    gpu_cache_rows,
    gpu_epoch_rows,
    loader_mode_rows,
)
from benchmarks.cache_rows import consumption as cache_consumption
from benchmarks.gpu_predict_rows import gpu_rows
from benchmarks.path_rows import path_rows
from benchmarks.preprocess_rows import everest_rows, preprocessing_rows
from benchmarks.rows import ROOT, comparison, workload

__all__ = ["ROOT", "comparison", "everest_rows", "main", "preprocessing_rows", "workload"]
RESULTS = ROOT / "benchmarks" / "results.json"


def training_rows(channels: int, steps: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Train-step time with and without the allocator fix + channels_last."""
    rows, step_time = [], {}
    for model in ("unet", "smp_unet"):
        for size in (128, 512):
            timing = {
                fixes: workload(
                    "train_step",
                    model=model,
                    size=size,
                    channels=channels,
                    steps=steps if size == 512 else 3 * steps,
                    fixes=fixes,
                )["seconds_per_step"]
                for fixes in (False, True)
            }
            step_time[f"{model}_{size}"] = timing[True]
            rows.append(
                comparison(
                    f"train step {model} {size}² b8: malloc fix + channels_last speed-up",
                    1 / timing[True],
                    1 / timing[False],
                    "steps/s",
                    1.0,
                )
            )
    return rows, step_time


def loader_rows(folder: Path, steps: int) -> list[dict[str, Any]]:
    """The loader against reading the bytes and against a 512²×15 training step's consumption."""
    workload("make_loader_data", dir=str(folder))
    step = workload("train_step", model="unet", size=512, channels=15, steps=steps, fixes=True)[
        "seconds_per_step"
    ]
    consumption = 8 / step
    rows = []
    # the gate is on our stored slices; the release read in place is reported beside it
    kinds = (("compact", "stored once, 23 B/px", True), ("in_place", "release, float32", False))
    for kind, label, gate in kinds:
        got = workload("loader", dir=str(folder / kind), epochs=12)
        rows.append(
            comparison(
                f"loader CPU per 512²×15 sample ({label}) vs reading its bytes (≤ 2×)",
                1e3 * got["cpu_per_sample"],
                1e3 * got["read_per_sample"],
                "ms",
                0.5,
                ratio=got["read_per_sample"] / got["cpu_per_sample"],
                gate=gate,
            )
        )
        rows.append(
            comparison(
                f"loader samples/s ({label}, {got['workers']} workers) vs unet 512²×15 training",
                got["samples_per_s"],
                consumption,
                "samples/s",
                1.0,
            )
        )
    return rows


def prediction_rows(folder: Path, size: int, bands: int, repeats: int) -> list[dict[str, Any]]:
    """Full-scene Mpx/s against the model alone on the same batches; memory; the COG cost.

    Both sides run in fresh processes from cold; each side is the median of ``repeats`` runs
    (single runs of the threaded prediction scatter by ±7 % on a shared 2-core VM). The gated
    rows write the streamed tiled GeoTIFFs (``cog=false``): the predictor itself; the COG row
    reports what turning the maps into COGs with overviews adds.
    """
    workload("make_scene", dir=str(folder), size=size, bands=bands)
    scene_mb = size * size * bands * 4 / 1e6
    layout = {"dir": str(folder), "bands": bands, "tile": 512, "overlap": 64, "device": "cpu"}
    rows = []
    for samples in (0, 2):
        label = f"mc_samples={samples}" if samples else "deterministic"
        limits = [workload("forward", **layout, mc_samples=samples) for _ in range(repeats)]
        runs = [
            workload("predict", **layout, mc_samples=samples, cog=False) for _ in range(repeats)
        ]
        limit = statistics.median(r["seconds"] for r in limits)
        seconds = statistics.median(r["seconds"] for r in runs)
        mpx = runs[0]["mpx"]
        rows.append(
            comparison(
                f"predict vs model alone ({label})", mpx / seconds, mpx / limit, "Mpx/s", 0.85
            )
        )
        peak = max(r["peak_rss_mb"] for r in runs)
        rows.append(
            comparison(f"predict memory, scene / peak RSS ({label})", scene_mb, peak, "MB", 1.0)
        )
        if not samples:
            cog = workload("predict", **layout, mc_samples=0, cog=True)
            rows.append(
                comparison(
                    "predict with COG outputs (overviews) vs model alone (deterministic)",
                    mpx / cog["seconds"],
                    mpx / limit,
                    "Mpx/s",
                    0.85,
                    gate=False,
                )
            )
    return rows


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": gpu,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the comparisons as an aligned table."""
    print(f"{'benchmark':<78} {'value':>10} {'limit':>10} {'unit':>9} {'ratio':>6} target  met")
    for row in rows:
        met = (
            ("yes" if row["met"] else "NO") if row["gate"] else ("(yes)" if row["met"] else "(no)")
        )
        print(
            f"{row['name'][:78]:<78} {row['value']:>10.3f} {row['limit']:>10.3f} "
            f"{row['unit']:>9} {row['ratio']:>6.2f} {row['target']:>6.2f}  {met}"
        )


Rows = list[dict[str, Any]]


def cpu_groups(quick: bool) -> dict[str, Callable[[Path], Rows]]:
    """The CPU row groups (each gets a fresh temporary folder)."""
    size, predict_size, bands, steps, repeats, tiles = (
        (1024, 1024, 10, 1, 1, 2) if quick else (4000, 8000, 10, 2, 3, 6)
    )
    scale = QUICK if quick else FULL

    def preprocess(folder: Path) -> Rows:
        workload("make_scene", dir=str(folder), size=size, bands=bands)
        return preprocessing_rows(folder, size, bands, tile=512)

    def cache_modes(folder: Path) -> Rows:
        consumed = cache_consumption("cpu", scale, steps=2)
        return loader_mode_rows(folder, "cpu", scale, consumed, 1.0)

    return {
        "preprocess": preprocess,
        "everest": lambda folder: everest_rows(folder, tiles, repeats),
        "loader": lambda folder: loader_rows(folder, steps),
        "train": lambda folder: training_rows(bands, steps)[0],
        "cache": lambda folder: cpu_cache_rows(folder, scale),
        "predict": lambda folder: prediction_rows(folder, predict_size, bands, repeats),
        "predict-path": lambda folder: path_rows(folder, predict_size, bands, repeats),
        "cache-modes": cache_modes,
    }


OPT_IN = ("cache-modes",)  # not part of a full run (long on 2 cores)
ALIASES = {"training": "train", "prediction": "predict"}  # earlier names of two groups


def gpu_groups(
    quick: bool, device: str = "cuda", predict_size: int | None = None
) -> dict[str, Callable[[Path], Rows]]:
    """The GPU row groups: where CUDA is present (or on an explicit ``--device``), not gated."""
    bands = 10
    predict_size = predict_size or (1024 if quick else 8000)
    scale = QUICK if quick else FULL
    return {
        "gpu-predict": lambda folder: gpu_rows(folder, predict_size, bands, device),
        "gpu-epoch": lambda folder: gpu_epoch_rows(folder, device, scale),
        "gpu-cache": lambda folder: gpu_cache_rows(folder, device, scale),
    }


def main() -> None:
    """Run the benchmarks (``--quick`` shrinks everything, ``--rows`` picks groups)."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, one repeat")
    parser.add_argument(
        "--rows",
        "--only",
        default="all",
        help="comma-separated groups: preprocess, everest, loader, train, cache, predict, "
        "predict-path, "
        "gpu-epoch, gpu-cache, gpu-predict, gpu (the three GPU groups), cache-modes (CPU "
        "samples/s per cache mode: not in all, 20-40 min on 2 cores); default all",
    )
    parser.add_argument(
        "--out", "--json", type=Path, help="results JSON (default: a full run only)"
    )
    parser.add_argument("--device", help="run the GPU groups on this device (e.g. cpu: a check)")
    parser.add_argument("--predict-size", type=int, help="scene edge of the gpu-predict rows")
    args = parser.parse_args()
    groups = cpu_groups(args.quick)
    if torch.cuda.is_available() or args.device:
        groups |= gpu_groups(args.quick, args.device or "cuda", args.predict_size)
    names = [name for name in groups if name not in OPT_IN] if args.rows == "all" else []
    for name in args.rows.split(",") if args.rows != "all" else []:
        name = ALIASES.get(name, name)
        names += ["gpu-epoch", "gpu-cache", "gpu-predict"] if name == "gpu" else [name]
    chosen = names
    out = args.out or (RESULTS if args.rows == "all" and not args.quick else None)
    results: dict[str, Any] = {
        "rows": chosen,
        "machine": machine(),
        "gpu_rows": "measured" if torch.cuda.is_available() else "not run: no CUDA device",
        "comparisons": [],
    }
    rows: Rows = results["comparisons"]
    for name in chosen:
        if name not in groups:
            print(f"skipped {name}: " + ("no CUDA device" if name.startswith("gpu") else "unknown"))
            continue
        with tempfile.TemporaryDirectory(prefix="glacier-bench-") as tmp:
            rows += groups[name](Path(tmp))
        if out is not None:  # after every group: a run cut short keeps what it measured
            out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(rows)
    print(f"\nwritten: {out or '(a partial or quick run: not written; --out FILE to write)'}")


if __name__ == "__main__":
    main()
