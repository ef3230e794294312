"""Prediction workloads: the whole predictor, the model alone, and reading alone, same scene."""

from __future__ import annotations

import contextlib
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.train_workloads import model_of
from benchmarks.workloads import peak_rss_mb


def predict_settings(args: dict[str, Any]) -> Any:
    """The predictor settings of a workload's arguments (CPU, auto batch and readers)."""
    import torch

    from glacier.inference.engine import (
        PredictSettings,
        default_batch_size,
        default_readers,
        resolve_precision,
    )

    device = torch.device(args.get("device", "cpu"))
    return PredictSettings(
        tile_size=args["tile"],
        overlap=args["overlap"],
        batch_size=default_batch_size(device, args.get("batch", "auto")),
        mc_samples=args.get("mc_samples", 0),
        device=device,
        precision=resolve_precision(args.get("precision", "auto"), device),
        readers=default_readers(device),
        cog=args.get("cog", True),
        compile=args.get("compile", False),
    )


def _model(args: dict[str, Any]) -> Any:
    """The benchmark U-Net behind its normalizer, as a checkpoint's model is."""
    import torch
    from torch import nn

    from glacier.models import Normalizer

    torch.manual_seed(0)
    bands = args["bands"]
    net = model_of("unet", bands).to(memory_format=torch.channels_last)
    return nn.Sequential(Normalizer([0.0] * bands, [1.0] * bands), net).eval()


def _layout(args: dict[str, Any]) -> tuple[int, list[int]]:
    """Tiles of the scene and the batch sizes the predictor runs (batches span tile rows)."""
    import rasterio

    from glacier.inference.engine.tiling import tile_starts

    with rasterio.open(Path(args["dir"]) / "scene.tif") as src:
        height, width = src.height, src.width
    tiles = len(tile_starts(height, args["tile"], args["overlap"])) * len(
        tile_starts(width, args["tile"], args["overlap"])
    )
    batch = predict_settings(args).batch_size
    return tiles, [batch] * (tiles // batch) + ([tiles % batch] if tiles % batch else [])


def forward(args: dict[str, Any]) -> dict[str, Any]:
    """The model alone on the batches the predictor runs, from cold, on random inputs.

    Same process state as ``predict`` (fresh process, allocator fix, first call included),
    same batch sizes, same precision, the same MC-dropout draws per tile; nothing is read,
    blended or written. ``compile``: through ``torch.compile`` (deterministic); ``warm``: the
    first and last batch sizes run once before the clock (compiling them), then every batch.
    """
    import torch

    from glacier.inference.engine.compiled import CompiledNetwork
    from glacier.utils.runtime import tune_malloc

    tune_malloc()
    settings = predict_settings(args)
    device = settings.device
    model = _model(args).to(device)
    _, sizes = _layout(args)
    tile = args["tile"]
    inputs = {
        size: torch.randn(size, args["bands"], tile, tile, device=device).contiguous(
            memory_format=torch.channels_last
        )
        for size in set(sizes)
    }
    network = CompiledNetwork(model) if settings.compile else model
    warmup = 0.0
    if args.get("warm"):  # steady state: compiling (or the first call) is not timed
        warmup = _forward_batches(network, inputs, sizes[:1] + sizes[-1:], settings)
    start = time.perf_counter()
    _forward_batches(network, inputs, sizes, settings)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "warmup_seconds": warmup, "gpu_mb": _gpu_mb()}


def _forward_batches(
    network: Any, inputs: dict[int, Any], sizes: list[int], settings: Any
) -> float:
    """Run the batches (MC passes, or one softmaxed pass); seconds, synchronized."""
    import torch

    from glacier.inference.engine.device import autocast
    from glacier.models import mc_dropout_moments

    start = time.perf_counter()
    with torch.inference_mode(), autocast(settings.device, settings.precision):
        for size in sizes:
            if settings.mc_samples:
                mc_dropout_moments(network, inputs[size], settings.mc_samples, list(range(size)))
            else:
                network(inputs[size]).float().softmax(dim=1)
    if settings.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def read_only(args: dict[str, Any]) -> dict[str, Any]:
    """Reading alone: every row of tiles of the scene, as the predictor's readers read them."""
    from glacier.data.raster import SceneReader
    from glacier.data.spec import BandSource, SceneSpec
    from glacier.inference.engine.readahead import BufferPool, ReadAhead, read_row
    from glacier.inference.engine.tiling import tile_starts

    settings = predict_settings(args)
    bands = tuple(f"b{i}" for i in range(args["bands"]))
    scene = SceneSpec(id="bench", sources=(BandSource(Path(args["dir"]) / "scene.tif", bands),))
    tile = settings.tile_size
    with SceneReader(scene) as reader:
        rows = tile_starts(reader.height, tile, settings.overlap)
        cover = tile_starts(reader.width, tile, settings.overlap)[-1] + tile
        pool = BufferPool(pinned=False)
        buffers = [pool.take((len(bands), tile, cover)) for _ in range(settings.readers + 1)]
        channels = list(range(len(bands)))
        reads = (
            partial(read_row, reader, channels, top, tile, cover, buffers[i % len(buffers)])
            for i, top in enumerate(rows)
        )
        start = time.perf_counter()
        ahead = ReadAhead(reads, depth=settings.readers, threads=settings.readers)
        for _ in ahead:
            pass
        ahead.close()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "mpx": reader.width * reader.height / 1e6}


def predict(args: dict[str, Any]) -> dict[str, Any]:
    """The predictor on the whole scene: wall time, peak RSS, peak GPU memory."""

    from glacier.data.raster import SceneReader
    from glacier.data.spec import BandSource, SceneSpec
    from glacier.inference.engine import SceneJob, predict_scenes
    from glacier.utils.runtime import tune_malloc

    tune_malloc()  # as glacier predict does
    settings = predict_settings(args)
    folder = Path(args["dir"])
    bands = tuple(f"b{i}" for i in range(args["bands"]))
    model = _model(args)
    scene = SceneSpec(id="bench", sources=(BandSource(path=folder / "scene.tif", bands=bands),))
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        job = SceneJob(
            "bench", lambda: SceneReader(scene), list(bands), ["glacier"], Path(tmp) / "bench"
        )
        start = time.perf_counter()
        predict_scenes(model, [job], settings)
        seconds = time.perf_counter() - start
    with SceneReader(scene) as reader:
        pixels = reader.width * reader.height
    return {
        "seconds": seconds,
        "mpx": pixels / 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "gpu_mb": _gpu_mb(),
    }


def _gpu_mb() -> float | None:
    import torch

    with contextlib.suppress(RuntimeError):
        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 1e6
    return None


PREDICT_WORKLOADS = {f.__name__: f for f in (forward, read_only, predict)}
