"""Benchmark workloads, each run in a fresh process: ``python -m benchmarks.workloads NAME JSON``.

Each prints one JSON line with its timings and the process's peak RSS, so memory is measured per
workload and process-level settings (the allocator fix) can be switched per run.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_scene(args: dict[str, Any]) -> dict[str, Any]:
    """Write a float32 scene (size × size × bands) and a glacier outline file."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from scene_files import write_disc_outline, write_scene

    out = Path(args["dir"])
    start = time.perf_counter()
    write_scene(out / "scene.tif", args["size"], args["size"], bands=args["bands"])
    write_disc_outline(out / "outline.gpkg", args["size"], args["size"])
    return {"seconds": time.perf_counter() - start}


def raw_io(args: dict[str, Any]) -> dict[str, Any]:
    """The I/O limit: read the scene in strips and write the same bytes as .npy tiles."""
    import rasterio
    from rasterio.windows import Window

    tile = args["tile"]
    with tempfile.TemporaryDirectory(dir=args["dir"]) as tmp:
        start = time.perf_counter()
        with rasterio.open(Path(args["dir"]) / "scene.tif") as src:
            for row in range(0, src.height, tile):
                strip = src.read(window=Window(0, row, src.width, min(tile, src.height - row)))
                for col in range(0, src.width, tile):
                    np.save(Path(tmp) / f"{row}_{col}.npy", strip[:, :, col : col + tile])
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def preprocess(args: dict[str, Any]) -> dict[str, Any]:
    """The whole preprocessing pipeline on the scene (masks, slices, split, stats, normalize)."""
    from glacier.data.filtering import SliceFilter
    from glacier.data.pipeline import Preprocessor
    from glacier.data.spec import DataSpec
    from glacier.data.splits import RandomSplit

    folder = Path(args["dir"])
    bands = [f"b{i}" for i in range(args["bands"])]
    spec = DataSpec(
        name="bench",
        classes=["glacier"],
        labels=[{"path": str(folder / "outline.gpkg"), "class_name": "glacier"}],
        scenes=[{"id": "bench", "sources": [{"path": str(folder / "scene.tif"), "bands": bands}]}],
        slice_size=args["tile"],
        overlap=0,
    )
    keep = SliceFilter(min_total_fraction=0.0, max_nodata_fraction=1.0)
    split = RandomSplit(seed=0)
    start = time.perf_counter()
    Preprocessor(spec, keep, split, folder / "processed", progress=False).run()
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def loader(args: dict[str, Any]) -> dict[str, Any]:
    """Samples per second the DataModule delivers from the processed benchmark dataset."""
    from glacier.data.datamodule import GlacierDataModule

    module = GlacierDataModule(Path(args["dir"]) / "processed", batch_size=8, num_workers=0)
    module.setup("fit")
    samples, start = 0, time.perf_counter()
    for _ in range(args["epochs"]):
        for batch in module.train_dataloader():
            samples += len(batch["image"])
    return {"samples_per_s": samples / (time.perf_counter() - start)}


def _model(name: str, channels: int) -> Any:
    if name == "unet":
        from glacier.models.unet import DropoutUNet

        return DropoutUNet(channels, 2, depth=4, base_filters=16, batch_norm=True, dropout=0.1)
    from glacier.models.smp_model import SmpSegmentationModel

    return SmpSegmentationModel(channels, 2, encoder_name="resnet18", dropout=0.1)


def train_step(args: dict[str, Any]) -> dict[str, Any]:
    """Seconds per optimizer step at batch 8 (after warm-up), optionally with the speed fixes."""
    import torch

    from glacier.models.losses import DiceCELoss
    from glacier.utils.runtime import tune_malloc

    if args["fixes"]:
        tune_malloc()
    torch.manual_seed(0)
    model = _model(args["model"], args["channels"]).train()
    fmt = torch.channels_last if args["fixes"] else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = DiceCELoss()
    size = args["size"]
    image = torch.randn(8, args["channels"], size, size).contiguous(memory_format=fmt)
    target = torch.randint(0, 2, (8, size, size))
    times = []
    for step in range(args["steps"] + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model(image), target).backward()
        optimizer.step()
        if step:  # the first step warms up allocator and kernels
            times.append(time.perf_counter() - start)
    return {"seconds_per_step": float(np.median(times))}


def _predict_layout(args: dict[str, Any]) -> tuple[int, list[int]]:
    """Tile rows and the batch sizes predict_scene uses per row of the benchmark scene."""
    import rasterio

    from glacier.inference.predict import _batches
    from glacier.inference.tiling import tile_starts

    with rasterio.open(Path(args["dir"]) / "scene.tif") as src:
        height, width = src.height, src.width
    tile, overlap = args["tile"], args["overlap"]
    columns = tile_starts(width, tile, overlap)
    sizes = [len(batch) for batch in _batches(columns, args["batch"])]
    return len(tile_starts(height, tile, overlap)), sizes


def forward(args: dict[str, Any]) -> dict[str, Any]:
    """The prediction limit: the model alone on the batches predict_scene runs, from cold.

    Same process state as the ``predict`` workload (fresh process, allocator fix, first call
    included), same batch sizes row by row; inputs are random, nothing is read, blended or
    written. With ``mc_samples`` > 0 every batch runs that many passes with dropout sampling.
    """
    import contextlib

    import torch

    from glacier.models.mc_dropout import mc_dropout
    from glacier.utils.runtime import tune_malloc

    tune_malloc()
    torch.manual_seed(0)
    model = _model("unet", args["bands"]).eval().to(memory_format=torch.channels_last)
    rows, sizes = _predict_layout(args)
    tile, passes = args["tile"], max(1, args["mc_samples"])
    inputs = {
        size: torch.randn(size, args["bands"], tile, tile).contiguous(
            memory_format=torch.channels_last
        )
        for size in set(sizes)
    }
    sampling = mc_dropout(model) if args["mc_samples"] > 0 else contextlib.nullcontext()
    with torch.inference_mode(), sampling:
        start = time.perf_counter()
        for _ in range(rows):
            for size in sizes:
                for _ in range(passes):
                    model(inputs[size]).softmax(dim=1)
        seconds = time.perf_counter() - start
    return {"seconds": seconds}


def predict(args: dict[str, Any]) -> dict[str, Any]:
    """predict_scene on the whole scene: wall time and peak RSS."""
    import torch

    from glacier.data.scene import SceneReader
    from glacier.data.spec import BandSource, SceneSpec
    from glacier.inference.predict import predict_scene
    from glacier.utils.runtime import tune_malloc

    tune_malloc()  # as predict.py does
    torch.manual_seed(0)
    folder = Path(args["dir"])
    bands = tuple(f"b{i}" for i in range(args["bands"]))
    model = _model("unet", args["bands"]).eval().to(memory_format=torch.channels_last)
    scene = SceneSpec(id="bench", sources=(BandSource(path=folder / "scene.tif", bands=bands),))
    with SceneReader(scene) as reader, tempfile.TemporaryDirectory(dir=folder) as tmp:
        pixels = reader.width * reader.height
        start = time.perf_counter()
        predict_scene(
            model,
            reader,
            channel_indices=list(range(len(bands))),
            means=[0.0] * len(bands),
            stds=[1.0] * len(bands),
            class_names=["glacier"],
            out_prefix=Path(tmp) / "bench",
            tile_size=args["tile"],
            overlap=args["overlap"],
            batch_size=args["batch"],
            mc_samples=args["mc_samples"],
        )
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "mpx": pixels / 1e6, "peak_rss_mb": peak_rss_mb()}


WORKLOADS = {
    f.__name__: f for f in (make_scene, raw_io, preprocess, loader, train_step, forward, predict)
}

if __name__ == "__main__":
    result = WORKLOADS[sys.argv[1]](json.loads(sys.argv[2]))
    print(json.dumps(result))
