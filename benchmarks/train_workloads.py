"""Training-side workloads: a training step's time, and what the loader delivers against it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workloads import peak_rss_mb


def model_of(name: str, channels: int) -> Any:
    """The benchmarked networks: our depth-4 U-Net, or an smp ResNet-18 U-Net."""
    if name == "unet":
        from glacier.models import DropoutUNet

        return DropoutUNet(channels, 2, depth=4, base_filters=16, batch_norm=True, dropout=0.1)
    from glacier.models import SmpSegmentationModel

    return SmpSegmentationModel(channels, 2, encoder_name="resnet18", dropout=0.1)


def train_step(args: dict[str, Any]) -> dict[str, Any]:
    """Seconds per optimizer step at batch 8 (after warm-up), optionally with the speed fixes."""
    import torch

    from glacier.models import DiceCELoss
    from glacier.utils.runtime import tune_malloc

    if args["fixes"]:
        tune_malloc()
    device = torch.device(args.get("device", "cpu"))
    torch.manual_seed(0)
    model = model_of(args["model"], args["channels"]).train().to(device)
    fmt = torch.channels_last if args["fixes"] else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = DiceCELoss()
    size = args["size"]
    image = torch.randn(8, args["channels"], size, size, device=device)
    image = image.contiguous(memory_format=fmt)
    target = torch.randint(0, 2, (8, size, size), device=device)
    dtype = torch.bfloat16 if args.get("bf16") else None
    times = []
    for step in range(args["steps"] + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(image).float(), target)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up allocator and kernels
            times.append(time.perf_counter() - start)
    return {"seconds_per_step": float(np.median(times))}


def make_loader_data(args: dict[str, Any]) -> dict[str, Any]:
    """A miniature of the HKH release (real 512-px patches), processed two ways.

    ``compact``: its raw tiles stored once (``data=hkh_2005``: 9 uint8 bands, the uint16 QA
    band, float16 indices and slope, float32 elevation: 23 bytes a pixel); ``release``: its
    float32 patches read in place (``data=hkh_lila``: 60 bytes a pixel).
    """
    from data.hkh_release import write_hkh_release

    from glacier.data.hkh import HkhRelease, ReleasePreprocessor, release_tiles_spec
    from glacier.data.preprocess import Preprocessor, RandomSplit, SliceFilter

    folder = Path(args["dir"])
    files = write_hkh_release(folder / "release")
    root = files.root
    keep = SliceFilter(max_nodata_fraction=1.0)
    everything = RandomSplit(train=1.0, dev=0.0, test=0.0)
    labels = [
        {"path": str(root / "vector_data" / "clean.shp"), "class_name": "clean_ice"},
        {"path": str(root / "vector_data" / "debris.shp"), "class_name": "debris"},
    ]
    spec = release_tiles_spec(str(root), classes=["clean_ice", "debris"], labels=labels, overlap=6)
    Preprocessor(spec, keep, everything, folder / "compact", progress=False).run()
    release = HkhRelease("release", str(root), stats_max_slices=None)
    ReleasePreprocessor(release, keep, everything, folder / "in_place", progress=False).run()
    return {"slices": len(files.slice_images)}


def loader(args: dict[str, Any]) -> dict[str, Any]:
    """Samples/s and CPU time per sample of the DataModule, and the time to read the bytes.

    The limit is reading each training window's bytes alone (copies out of the warm page
    cache: what any loader must do); the loader adds indexing, padding, tensors and collation.
    """
    import torch

    from glacier.data.loading import GlacierDataModule
    from glacier.utils.runtime import tune_malloc

    tune_malloc()  # as `glacier train` does before its loaders start: batches reuse memory
    workers = args.get("workers", "auto")
    # loader workers run one torch thread each; in-process, idle OpenMP threads spinning
    # after a parallel copy would otherwise count as the loader's CPU time
    torch.set_num_threads(1)
    module = GlacierDataModule(
        Path(args["dir"]), batch_size=8, num_workers=workers, pin_memory=args.get("pin", False)
    )
    module.setup("fit")
    data = module.train_dataloader()
    for _ in range(2):  # warm the page cache, start the workers, grow the heap to two batches
        for _ in data:
            pass
    samples, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    for _ in range(args["epochs"]):
        for batch in data:
            samples += len(batch["label"])
            if args.get("device", "cpu") != "cpu":
                batch = {k: v.to(args["device"], non_blocking=True) for k, v in batch.items()}
    if args.get("device", "cpu") != "cpu":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    dataset = module.datasets["train"]
    read0 = time.perf_counter()
    reads = 0
    for _ in range(args["epochs"]):
        for scene, row, col, size in dataset.windows:
            dataset.store.window(str(scene), int(row), int(col), int(size))
            reads += 1
    read_seconds = (time.perf_counter() - read0) / reads
    return {
        "samples_per_s": samples / wall,
        "cpu_per_sample": cpu / samples,
        "read_per_sample": read_seconds,
        "workers": module.num_workers,
        "sample_mb": sum(v[0].nbytes for v in next(iter(data)).values()) / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }


TRAIN_WORKLOADS = {f.__name__: f for f in (train_step, make_loader_data, loader)}
