"""Rows of the training cache: steady-state loaders per ``cache`` mode, CPU gate, GPU goals.

The data (:mod:`benchmarks.cache_data`) is generated one kind at a time and deleted after its
rows (each ≤ 4 GB at the default scale): compact scenes read through random windows, then the
HKH release's float32 patches read in place through fixed slices. Every loader figure comes
after a warm-up epoch, over at least ``batches`` batches, augmentation included.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.rows import comparison, workload

KINDS = {"compact": "23 B/px random windows", "release": "release float32 slices"}


@dataclass(frozen=True)
class CacheScale:
    """How big the steady-state data is.

    Attributes:
        scenes: Compact scenes.
        size: Their edge in pixels.
        slice: Window edge.
        windows: Random windows per epoch, and release patches.
        batches: Timed batches per loader figure (after a warm-up epoch).
        epochs: Timed training epochs (after a warm-up epoch).
    """

    scenes: int = 4
    size: int = 4096
    slice: int = 512
    windows: int = 200
    batches: int = 50
    epochs: int = 2


FULL = CacheScale()
QUICK = CacheScale(scenes=4, size=512, slice=128, windows=16, batches=4, epochs=1)


def where(device: str) -> str:
    """``GPU`` or ``CPU``, for row names."""
    return "GPU" if device.startswith("cuda") else "CPU"


def _data(folder: Path, kind: str, scale: CacheScale) -> dict[str, Any]:
    return {
        "dir": str(folder),
        "kind": kind,
        "windows": scale.windows,
        "batches": scale.batches,
    }


def _make(folder: Path, kind: str, scale: CacheScale) -> None:
    workload(
        "make_cache_data",
        dir=str(folder),
        kind=kind,
        slice=scale.slice,
        scenes=scale.scenes,
        size=scale.size,
        windows=scale.windows,
    )


def cpu_cache_rows(folder: Path, scale: CacheScale = FULL) -> list[dict[str, Any]]:
    """The gated CPU row: a plain copy of a batch's bytes ÷ the host cache's gather (≥ 0.5)."""
    _make(folder, "compact", scale)
    try:
        got = workload("cache_gather", **_data(folder, "compact", scale))
    finally:
        shutil.rmtree(folder / "compact", ignore_errors=True)
    return [
        comparison(
            f"cache=host gather of a {got['batch_mb']:.0f} MB batch vs a plain copy of its bytes "
            "(≤ 2×)",
            1e3 * got["gather_per_batch"],
            1e3 * got["copy_per_batch"],
            "ms",
            0.5,
            ratio=got["copy_per_batch"] / got["gather_per_batch"],
        )
    ]


def consumption(device: str, scale: CacheScale, steps: int = 10) -> float:
    """Samples/s the benchmarked U-Net trains at on ``device`` (bf16 on a GPU)."""
    cuda = device.startswith("cuda")
    step = workload(
        "train_step",
        model="unet",
        size=scale.slice,
        channels=15,
        steps=steps,
        fixes=True,
        device=device,
        bf16=cuda,
    )["seconds_per_step"]
    return 8 / step


def loader_mode_rows(
    folder: Path, device: str, scale: CacheScale, consumed: float, target: float
) -> list[dict[str, Any]]:
    """Samples/s of each ``cache`` mode, per kind of data, against training consumption."""
    rows = []
    for kind, label in KINDS.items():
        _make(folder, kind, scale)
        try:
            for mode in ("device", "host", "none"):
                got = workload(
                    "cache_loader", **_data(folder, kind, scale), cache=mode, device=device
                )
                how = f"{got['workers']} workers" if mode == "none" else f"{got['cache_mb']:.0f} MB"
                rows.append(
                    comparison(
                        f"{where(device)} cache={mode} samples/s ({label}, {how}) vs unet training",
                        got["samples_per_s"],
                        consumed,
                        "samples/s",
                        target,
                        gate=False,
                    )
                )
        finally:
            shutil.rmtree(folder / kind, ignore_errors=True)
    return rows


def epoch_rows(
    folder: Path, device: str, scale: CacheScale, consumed: float
) -> list[dict[str, Any]]:
    """A Lightning training epoch per ``cache`` mode against windows ÷ consumption (≤ 1.1×)."""
    _make(folder, "compact", scale)
    rows = []
    try:
        for mode in ("device", "host"):
            got = workload(
                "cache_epoch",
                **_data(folder, "compact", scale),
                cache=mode,
                device=device,
                epochs=scale.epochs,
            )
            limit = scale.windows / consumed
            rows.append(
                comparison(
                    f"{where(device)} epoch of {scale.windows} windows, cache={mode} "
                    f"({got['placement']}) vs windows ÷ training rate (≤ 1.1×)",
                    got["epoch_seconds"],
                    limit,
                    "s",
                    1 / 1.1,
                    ratio=limit / got["epoch_seconds"],
                    gate=False,
                )
            )
    finally:
        shutil.rmtree(folder / "compact", ignore_errors=True)
    return rows


def gpu_cache_rows(
    folder: Path, device: str = "cuda", scale: CacheScale = FULL
) -> list[dict[str, Any]]:
    """Where CUDA is present (or any explicit device): each mode's loader ÷ training (≥ 1.2)."""
    return loader_mode_rows(folder, device, scale, consumption(device, scale), 1.2)


def gpu_epoch_rows(
    folder: Path, device: str = "cuda", scale: CacheScale = FULL
) -> list[dict[str, Any]]:
    """Where CUDA is present (or any explicit device): training epochs ≤ 1.1 × windows ÷ rate."""
    return epoch_rows(folder, device, scale, consumption(device, scale))
