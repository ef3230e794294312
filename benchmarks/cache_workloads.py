"""Steady-state workloads of the training cache (data from :mod:`benchmarks.cache_data`).

``cache_gather``: the host cache's gather per batch against a plain copy of the same bytes.
``cache_loader``: samples/s of the DataModule's whole path (loader, gather, transfer, assembly,
augmentation) per ``cache`` mode, after a warm-up epoch, timed after a CUDA sync.
``cache_epoch``: wall time of training epochs with a Lightning Trainer (``trainer=gpu`` on a
GPU) over the same windows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cache_data import make_cache_data
from benchmarks.workloads import peak_rss_mb

BATCH = 8


def processed_dir(folder: str, kind: str) -> Path:
    """The processed folder of ``compact`` scenes or the ``release`` patches."""
    return Path(folder) / ("compact" if kind == "compact" else "release/processed")


def datamodule(args: dict[str, Any]) -> Any:
    """The DataModule of a benchmark: random windows over the compact scenes, or the patches."""
    import torch

    from glacier.data.loading import Augment, GlacierDataModule

    random = args["kind"] == "compact"
    module = GlacierDataModule(
        processed_dir(args["dir"], args["kind"]),
        batch_size=BATCH,
        num_workers=args.get("workers", "auto"),
        pin_memory=torch.device(args["device"]).type == "cuda",
        augment=Augment(seed=0),
        sampler="random_windows" if random else "slices",
        windows_per_epoch=args.get("windows") if random else None,
        cache=args.get("cache", "none"),
        progress=False,
    )
    module.setup("fit")
    return module


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _epoch(module: Any, loader: Any, epoch: int, device: Any, limit: int) -> tuple[int, int]:
    """One epoch through the hooks Lightning calls; (batches, samples) up to ``limit`` batches."""
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    batches = samples = 0
    for raw in loader:
        batch = module.on_before_batch_transfer(raw, 0)
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        prepared = module.prepare_batch(batch, train=True)
        batches, samples = batches + 1, samples + len(prepared["mask"])
        if batches >= limit:
            break
    return batches, samples


def cache_loader(args: dict[str, Any]) -> dict[str, Any]:
    """Samples/s of one ``cache`` mode after a warm-up epoch, over at least ``batches``."""
    import torch

    from glacier.utils.runtime import tune_malloc

    tune_malloc()  # as `glacier train` does before its loaders start
    device = torch.device(args["device"])
    module = datamodule(args)
    start = time.perf_counter()
    cached = module.build_cache(device) if args["cache"] != "none" else None
    load_seconds = time.perf_counter() - start
    loader = module.train_dataloader()
    _epoch(module, loader, 0, device, args["batches"])  # warm-up: workers, allocator, kernels
    _sync(device)
    batches = samples = 0
    start = time.perf_counter()
    for epoch in range(1, 10_000):
        done = _epoch(module, loader, epoch, device, args["batches"] - batches)
        batches, samples = batches + done[0], samples + done[1]
        if batches >= args["batches"]:
            break
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "samples_per_s": samples / seconds,
        "batches": batches,
        "load_seconds": load_seconds,
        "cache_mb": cached.cache.nbytes / 1e6 if cached is not None else 0.0,
        "placement": module.cache_choice.placement if module.cache_choice else "none",
        "workers": module.num_workers,
        "peak_rss_mb": peak_rss_mb(),
    }


def cache_gather(args: dict[str, Any]) -> dict[str, Any]:
    """Seconds per batch: the host cache's gather, and a plain copy of as many bytes."""
    import torch

    from glacier.utils.runtime import tune_malloc

    tune_malloc()  # as `glacier train` does: batches reuse the heap instead of fresh pages
    torch.set_num_threads(1)  # one core each: the gather and the copy it is held against
    module = datamodule({**args, "device": "cpu", "cache": "host"})
    cached = module.build_cache(torch.device("cpu"))
    assert cached is not None, module.cache_choice
    cache = cached.cache
    loader = module.train_dataloader()
    batches = _cycle(loader)
    keys = [next(batches)["cache_keys"] for _ in range(args["batches"])]
    rng = np.random.default_rng(0)
    gather_s, copy_s, nbytes = [], [], 0
    for batch_keys in keys:
        start = time.perf_counter()
        batch = cache.gather(batch_keys)
        gather_s.append(time.perf_counter() - start)
        sizes = [value.numel() for value in batch.values()]
        nbytes = sum(value.numel() * value.element_size() for value in batch.values())
        start = time.perf_counter()
        for flat, size in zip(cache.tensors, sizes, strict=True):
            offset = int(rng.integers(0, flat.numel() - size + 1))
            torch.empty(size, dtype=flat.dtype).copy_(flat[offset : offset + size])
        copy_s.append(time.perf_counter() - start)
    return {
        "gather_per_batch": float(np.median(gather_s)),
        "copy_per_batch": float(np.median(copy_s)),
        "batch_mb": nbytes / 1e6,
        "batches": len(keys),
    }


def epoch_timer(device: Any) -> Any:
    """A callback recording each training epoch's wall seconds (CUDA synced at both ends)."""
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.start = 0.0
            self.placement = "none"

        def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
            choice = trainer.datamodule.cache_choice  # the cache is released after fitting
            self.placement = choice.placement if choice is not None else "none"
            _sync(device)
            self.start = time.perf_counter()

        def on_train_epoch_end(self, *args: Any) -> None:
            _sync(device)
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def epoch_config(args: dict[str, Any]) -> Any:
    """The ``train`` config of the epoch benchmark: the benchmarked U-Net, no logger/callbacks."""
    from hydra import compose, initialize_config_module

    from glacier.tasks.config import register_resolvers

    register_resolvers()
    cuda = args["device"].startswith("cuda")
    overrides = [
        f"paths.processed_dir={processed_dir(args['dir'], 'compact')}",
        f"paths.output_dir={Path(args['dir']) / 'run'}",
        "trainer=gpu" if cuda else "trainer=cpu",
        *("logger=none", "callbacks=none", "scheduler=none", "channels=null", "classes=[debris]"),
        "loss=dice_ce",
        *("model.depth=4", "model.base_filters=16", "model.batch_norm=true", "dropout=0.1"),
        *("datamodule.preprocessor=null", "datamodule.sampler=random_windows"),
        f"datamodule.windows_per_epoch={args['windows']}",
        f"datamodule.cache={args['cache']}",
        *("datamodule.augment.seed=0", "trainer.enable_progress_bar=false"),
        *("trainer.enable_model_summary=false", "trainer.limit_val_batches=0"),
        f"trainer.max_epochs={1 + args['epochs']}",
    ]
    with initialize_config_module("glacier.configs", version_base="1.3"):
        return compose("train", overrides)


def cache_epoch(args: dict[str, Any]) -> dict[str, Any]:
    """Seconds per training epoch with a Lightning Trainer (median after a warm-up epoch)."""
    import torch

    from glacier.tasks.config import build
    from glacier.tasks.train import build_module

    cfg = epoch_config(args)
    module = build(cfg.datamodule, _convert_="all")
    module.setup("fit")
    timer = epoch_timer(torch.device(args["device"]))
    trainer = build(
        cfg.trainer,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(build_module(cfg, module), datamodule=module)
    return {
        "epoch_seconds": float(np.median(timer.seconds[1:])),
        "windows": args["windows"],
        "placement": timer.placement,
        "epochs": len(timer.seconds),
    }


def _cycle(loader: Any) -> Any:
    epoch = 0
    while True:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


CACHE_WORKLOADS = {
    f.__name__: f for f in (make_cache_data, cache_loader, cache_gather, cache_epoch)
}
