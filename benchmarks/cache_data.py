"""Steady-state loader data: processed datasets big enough that an epoch is many batches.

``compact``: ``scenes`` stored scenes of ``size``² pixels in the release's compact layout
(9 uint8 digital numbers, the uint16 QA band, float16 indices and slope, float32 elevation:
23 bytes a pixel, plus 2 label bytes), indexed as 512-px slices (the last slice row of each
scene is dev) for ``sampler=slices`` and ``random_windows``. ``release``: ``windows`` float32
512²×15 patches with uint8 masks, indexed in place like the HKH release (``storage:
release``). Written straight in the processed layout (no GeoTIFFs, no preprocessing) with
cheap seeded values: integer digital numbers (the release's are), float32 indices.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glacier.data.contract import (
    ChannelStats,
    DatasetContract,
    NodataRule,
    image_path,
    mask_path,
    storage_groups,
)
from glacier.data.hkh import HkhRelease
from glacier.data.hkh.release import RELEASE_BANDS, RELEASE_STORAGE_DTYPES, release_channels
from glacier.data.preprocess import write_dataset

CLASSES = ("clean_ice", "debris")
SLICE = 512


def _stats() -> ChannelStats:
    means = {name: 0.0 if name.startswith("nd") else 100.0 for name in RELEASE_BANDS}
    stds = {name: 0.5 if name.startswith("nd") else 50.0 for name in RELEASE_BANDS}
    return ChannelStats(mean=means, std=stds, pixels=1)


def _values(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        return rng.integers(1, 250, shape, dtype=np.uint8).astype(dtype)
    return (rng.random(shape, dtype=np.float32) * 2 - 1).astype(dtype)


def write_compact(
    folder: Path, scenes: int, size: int, slice_size: int = SLICE, seed: int = 0
) -> int:
    """``scenes`` compact scenes with their slice index and contract; returns bytes written."""
    channels = tuple(
        replace(c, dtype=RELEASE_STORAGE_DTYPES.get(c.name, c.dtype)) for c in release_channels()
    )
    contract = DatasetContract(
        "bench_compact",
        channels,
        CLASSES,
        nodata=NodataRule(),
        slice_size=slice_size,
        stats=_stats(),
    )
    rng = np.random.default_rng(seed)
    written, rows = 0, []
    for number in range(scenes):
        scene = f"scene{number}"
        for group in storage_groups(channels):
            path = image_path(folder, scene, group)
            path.parent.mkdir(parents=True, exist_ok=True)
            array = _values(group.dtype, (size, size, len(group.channels)), rng)
            np.save(path, array)
            written += array.nbytes
        mask_path(folder, scene).parent.mkdir(parents=True, exist_ok=True)
        labels = (rng.random((size, size, 2), dtype=np.float32) < 0.3).astype(np.uint8)
        np.save(mask_path(folder, scene), labels)
        written += labels.nbytes
        starts = range(0, size - slice_size + 1, slice_size)
        for row in starts:
            split = "dev" if row == starts[-1] and len(starts) > 1 else "train"
            rows += [(scene, split, row, col, slice_size) for col in starts]
    index = pd.DataFrame(rows, columns=["scene", "split", "row_off", "col_off", "size"])
    write_dataset(folder, index, contract, {"storage": "scenes"})  # folder exists: scenes/
    return written


def write_release(folder: Path, windows: int, size: int = SLICE, seed: int = 0) -> int:
    """``windows`` float32 patches read in place, with the index and contract of the release."""
    root = folder / "glacier_data"
    (root / "slices").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dn = [i for i, name in enumerate(RELEASE_BANDS) if name in RELEASE_STORAGE_DTYPES]
    written, rows = 0, []
    for k in range(windows):
        image = _values("float32", (size, size, len(RELEASE_BANDS)), rng)
        image[..., dn] = _values("uint8", (size, size, len(dn)), rng)  # integer digital numbers
        mask = (rng.random((size, size, 3), dtype=np.float32) < 0.3).astype(np.uint8)
        names = (f"slices/slice_0_img_{k:03}.npy", f"slices/slice_0_mask_{k:03}.npy")
        np.save(root / names[0], image)
        np.save(root / names[1], mask)
        written += image.nbytes + mask.nbytes
        split = "dev" if k % 8 == 7 else "train"
        row, col = (k // 16) * size, (k % 16) * size
        rows.append(("LE07_149036_20071102", split, row, col, size, *names))
    columns = ["scene", "split", "row_off", "col_off", "size", "image", "mask"]
    contract = HkhRelease("bench_release", str(root)).contract(size).with_stats(_stats())
    extra = {"storage": "release", "root": str(root.resolve())}
    (folder / "processed").mkdir(exist_ok=True)
    write_dataset(folder / "processed", pd.DataFrame(rows, columns=columns), contract, extra)
    return written


def make_cache_data(args: dict[str, Any]) -> dict[str, Any]:
    """Write ``kind`` data: compact scenes (``dir``/compact) or release patches (``dir``/release).

    Args:
        args: ``dir``, ``kind``, ``slice`` (window edge), and ``scenes`` + ``size`` (compact)
            or ``windows`` (release).
    """
    folder, slice_size = Path(args["dir"]), args["slice"]
    if args["kind"] == "compact":
        written = write_compact(folder / "compact", args["scenes"], args["size"], slice_size)
    else:
        written = write_release(folder / "release", args["windows"], slice_size)
    return {"bytes": written}
