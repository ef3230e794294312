"""GPU prediction rows: predict ÷ min(read, forward), deterministic and 8 MC passes; the forward
compiled vs not. Not gated; they run where CUDA is present, or on an explicit ``device`` (tests
prove them on the CPU with tiny sizes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.rows import comparison, workload


def gpu_rows(
    folder: Path, size: int, bands: int, device: str = "cuda", tile: int = 512
) -> list[dict[str, Any]]:
    """Where CUDA is present: predict ÷ min(read, forward) ≥ 0.8, ≥ 25 Mpx/s; the forward
    compiled vs not (runs on any ``device``: tests prove the rows on the CPU, tiny sizes)."""
    workload("make_scene", dir=str(folder), size=size, bands=bands)
    layout = {"dir": str(folder), "bands": bands, "tile": tile, "overlap": tile // 8}
    layout["device"] = device
    read = workload("read_only", **layout, mc_samples=0)
    rows = []
    for samples in (0, 8):
        label = f"mc_samples={samples}" if samples else "deterministic"
        forward = workload("forward", **layout, mc_samples=samples)
        runs = [workload("predict", **layout, mc_samples=samples, cog=False) for _ in range(2)]
        run = min(runs, key=lambda r: r["seconds"])
        mpx = run["mpx"]
        limit = min(mpx / read["seconds"], mpx / forward["seconds"])
        rows.append(
            comparison(
                f"GPU predict vs min(read {mpx / read['seconds']:.0f}, forward "
                f"{mpx / forward['seconds']:.0f} Mpx/s) ({label}; peak RSS "
                f"{run['peak_rss_mb']:.0f} MB, GPU {run['gpu_mb'] or 0:.0f} MB)",
                mpx / run["seconds"],
                limit,
                "Mpx/s",
                0.8,
                gate=False,
            )
        )
        if not samples:
            rows.append(
                comparison(
                    f"GPU predict {size}²×{bands} (goal ≥ 25 Mpx/s)",
                    mpx / run["seconds"],
                    25.0,
                    "Mpx/s",
                    1.0,
                    gate=False,
                )
            )
    rows.append(compile_row(layout, read["mpx"]))
    return rows


def compile_row(layout: dict[str, Any], mpx: float) -> dict[str, Any]:
    """Deterministic forward Mpx/s of the scene's batches with ``compile: true`` vs without
    (both warm: compiling, or the first call, is not timed)."""
    plain, compiled = (
        workload("forward", **layout, mc_samples=0, compile=flag, warm=True)
        for flag in (False, True)
    )
    return comparison(
        f"GPU forward compiled vs not (deterministic; compiling took "
        f"{compiled['warmup_seconds']:.0f} s)",
        mpx / compiled["seconds"],
        mpx / plain["seconds"],
        "Mpx/s",
        1.0,
        gate=False,
    )
