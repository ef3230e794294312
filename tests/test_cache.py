"""The training cache: batches equal the worker loaders', memory budgets, `auto`, DDP shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_config
from hydra.utils import instantiate
from torch.utils.data import DistributedSampler

from glacier.data.contract import Channel
from glacier.data.loading import (
    CACHE_KEYS,
    GlacierDataModule,
    MemoryProbes,
    RandomWindowDataset,
    WindowDataset,
)
from glacier.data.loading.cache_budget import CacheNeeds, CacheRequest, choose_cache
from glacier.data.loading.cache_feed import positions
from glacier.data.loading.cache_fill import ChannelConversion, InexactChannelsError
from glacier.data.loading.cache_plan import plan_every, plan_shard, shard_of
from glacier.errors import GlacierInputError
from glacier.tasks.preprocess import run_preprocess
from tests.data.hkh_release import write_hkh_release

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs CUDA"))]
GB = 10**9
SYNTHETIC = [
    "data=synthetic",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "datamodule.batch_size=4",
    "datamodule.num_workers=0",
    "datamodule.augment.brightness=0.2",
    "datamodule.augment.contrast=0.2",
    "datamodule.augment.min_crop_scale=0.7",
]
RANDOM = [
    "datamodule.sampler=random_windows",
    "datamodule.window_size=48",
    "datamodule.windows_per_epoch=12",
]


def plenty(bytes_: int = 64 * GB) -> MemoryProbes:
    return MemoryProbes(device_free=lambda device: bytes_, host_available=lambda: bytes_)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic dataset, preprocessed once for this module."""
    root = tmp_path_factory.mktemp("cache_data")
    cfg = compose_config("train", [*SYNTHETIC, f"paths.data_dir={root}"], root)
    instantiate(cfg.datamodule, _convert_="all").prepare_data()
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The miniature HKH release read in place (float32 patches with NaN borders)."""
    files = write_hkh_release(tmp_path_factory.mktemp("release"), patch_size=64, step=58)
    root = tmp_path_factory.mktemp("release_processed")
    overrides = ["data=hkh_lila", f"data.root={files.root}", "preprocessor.progress=false"]
    run_preprocess(compose_config("preprocess", overrides, root))
    return root / "data" / "processed" / "hkh_lila"


def synthetic_module(
    root: Path, overrides: list[str], probes: MemoryProbes | None = None, **kwargs: Any
) -> GlacierDataModule:
    cfg = compose_config("train", [*SYNTHETIC, f"paths.data_dir={root}", *overrides], root)
    module: GlacierDataModule = instantiate(cfg.datamodule, _convert_="all", **kwargs)
    module.feed.probes = probes or module.feed.probes
    module.setup("fit")
    return module


def epochs_of_batches(
    module: GlacierDataModule, epochs: int, device: str = "cpu"
) -> list[dict[str, torch.Tensor]]:
    """Model inputs of every training batch of ``epochs`` epochs, then the validation batches,
    through the hooks Lightning calls (gather before the transfer, assemble after it)."""
    module.build_cache(torch.device(device)) if module.feed.active else None
    torch.manual_seed(7)  # the loaders' shuffles draw from the global generator
    out = []
    for epoch in range(epochs):
        loader = module.train_dataloader()
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for raw in loader:
            batch = module.on_before_batch_transfer(raw, 0)
            batch = {key: value.to(device) for key, value in batch.items()}
            out.append(module.prepare_batch(batch, train=True))
    for raw in module.val_dataloader():
        batch = {k: v.to(device) for k, v in module.on_before_batch_transfer(raw, 0).items()}
        out.append(module.prepare_batch(batch, train=False))
    return out


def assert_same_batches(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
    assert len(expected) == len(got) > 0
    for a, b in zip(expected, got, strict=True):
        assert b["image"].device == b["mask"].device
        image = b["image"].cpu()
        torch.testing.assert_close(image, a["image"].cpu(), rtol=0, atol=0, equal_nan=True)
        assert torch.equal(b["mask"].cpu(), a["mask"].cpu())


@pytest.mark.parametrize("sampler", ["slices", "random_windows"])
@pytest.mark.parametrize("cache", ["host", "device"])
def test_cached_batches_equal_the_worker_loaders(synthetic: Path, sampler: str, cache: str) -> None:
    extra = RANDOM if sampler == "random_windows" else []
    reference = epochs_of_batches(synthetic_module(synthetic, [*extra, "datamodule.cache=none"]), 3)
    module = synthetic_module(synthetic, [*extra, f"datamodule.cache={cache}"])
    got = epochs_of_batches(module, 3)
    assert module.cache_choice is not None and module.cache_choice.placement == cache
    assert module.training_cache is not None
    assert all(t.device.type == "cpu" for t in module.training_cache.cache.tensors)
    assert_same_batches(reference, got)
    assert not torch.equal(got[0]["image"], got[len(got) // 3]["image"])  # epochs differ


def test_random_windows_equal_those_read_by_worker_processes(synthetic: Path) -> None:
    workers = synthetic_module(synthetic, [*RANDOM, "datamodule.cache=none"], num_workers=2)
    cached = synthetic_module(synthetic, [*RANDOM, "datamodule.cache=device"])
    assert_same_batches(epochs_of_batches(workers, 2), epochs_of_batches(cached, 2))


@pytest.mark.parametrize("device", DEVICES)
def test_cache_lives_on_the_training_device(synthetic: Path, device: str) -> None:
    reference = epochs_of_batches(synthetic_module(synthetic, ["datamodule.cache=none"]), 1)
    module = synthetic_module(synthetic, ["datamodule.cache=device"])
    got = epochs_of_batches(module, 1, device)
    assert module.training_cache is not None
    assert {t.device.type for t in module.training_cache.cache.tensors} == {device}
    assert got[0]["image"].device.type == device
    assert_same_batches(reference, got)


@pytest.mark.parametrize("device", DEVICES)
def test_host_cache_gathers_into_host_memory(synthetic: Path, device: str) -> None:
    module = synthetic_module(synthetic, [*RANDOM, "datamodule.cache=host"])
    cached = module.build_cache(torch.device(device))
    assert cached is not None and cached.cache.device.type == "cpu"
    assert cached.cache.pinned == (device == "cuda")
    raw = module.on_before_batch_transfer(next(iter(module.train_dataloader())), 0)
    assert raw["label"].device.type == "cpu" and raw["label"].is_pinned() == (device == "cuda")


def test_release_in_place_is_cached_compactly_and_exactly(release: Path) -> None:
    def module(cache: str) -> GlacierDataModule:
        data = GlacierDataModule(release, batch_size=4, num_workers=0, cache=cache)
        data.setup("fit")
        return data

    reference = epochs_of_batches(module("none"), 2)
    cached = module("host")
    got = epochs_of_batches(cached, 2)
    assert_same_batches(reference, got)
    assert any(torch.isnan(b["image"]).any() for b in got)  # NaN borders went through
    assert cached.training_cache is not None
    layout = cached.training_cache.cache.layout
    assert [(g.dtype, len(g.channels)) for g in layout.groups] == [
        ("uint8", 9),
        ("uint16", 1),
        ("float32", 5),
    ]
    assert layout.bytes_per_pixel == 9 + 2 + 5 * 4 + 3  # instead of 15 * 4 + 3


def test_inexact_conversions_are_refused_and_widened() -> None:
    stored = [Channel(name) for name in ("b1", "b2", "ndvi")]
    cached = [Channel("b1", dtype="uint8"), Channel("b2", dtype="uint8"), Channel("ndvi")]
    conversion = ChannelConversion.of(stored, cached, all_zero=True)
    image = np.array([[[3.0, 200.0, 0.25], [0.0, 0.0, 0.0], [np.nan, 4.0, 0.5]]], np.float32)
    label = np.zeros((1, 3, 1), np.uint8)
    (digital, _), marked = conversion.convert([image], label)
    assert digital.dtype == np.uint8 and digital[0, 0].tolist() == [3, 200]
    assert marked[0, :, 0].tolist() == [0, 0, 255]  # the NaN pixel is nodata by its label
    image[0, 0, 1] = 200.5  # a valid value uint8 would round
    with pytest.raises(InexactChannelsError, match="b2"):
        conversion.convert([image], label)
    widened = conversion.widen(["b2"])
    assert [(g.dtype, g.channels) for g in widened.target] == [("uint8", (0,)), ("float32", (1, 2))]
    (_, rest), _ = widened.convert([image], label)
    assert rest[0, 0, 0] == np.float32(200.5)


def test_auto_prefers_the_device_then_the_host_then_workers() -> None:
    cuda = CacheRequest("auto", torch.device("cuda", 0), device_share=0.5, host_share=0.5)
    needs = CacheNeeds(every=10 * GB)

    def probes(device_gb: float, host_gb: float) -> MemoryProbes:
        return MemoryProbes(lambda d: int(device_gb * GB), lambda: int(host_gb * GB))

    assert choose_cache(cuda, needs, probes(21, 0)).placement == "device"
    host = choose_cache(cuda, needs, probes(19, 21))  # 19 × 0.5 < 10 ≤ 21 × 0.5
    assert (host.placement, host.needed, host.budget) == ("host", 10 * GB, int(10.5 * GB))
    none = choose_cache(cuda, needs, probes(19, 19))
    assert none.placement == "none" and "10.00 GB" in none.reason and "workers" in none.reason
    cpu = CacheRequest("auto", torch.device("cpu"), ranks_per_node=2)
    assert choose_cache(cpu, needs, probes(0, 41)).placement == "device"  # RAM is the device's
    assert choose_cache(cpu, needs, probes(0, 39)).placement == "none"  # shared by two ranks
    sharded = choose_cache(cuda, CacheNeeds(every=30 * GB, shard=8 * GB), probes(20, 0))
    assert (sharded.placement, sharded.sharded, sharded.needed) == ("device", True, 8 * GB)
    assert choose_cache(cuda, needs, probes(21, 0), min_level=1).placement == "none"


def test_explicit_placements_that_cannot_fit_fail_in_one_line() -> None:
    needs = CacheNeeds(every=10 * GB)
    request = CacheRequest("device", torch.device("cuda", 0))
    tight = MemoryProbes(lambda d: 11 * GB, lambda: 0)
    assert choose_cache(request, needs, tight).placement == "device"  # no share when asked for
    with pytest.raises(GlacierInputError, match=r"datamodule.cache=device: .*10.00 GB.*cuda:0"):
        choose_cache(request, needs, MemoryProbes(lambda d: 9 * GB, lambda: 0))
    with pytest.raises(GlacierInputError, match=r"datamodule\.cache='gpu'"):
        CacheRequest("gpu", torch.device("cpu"))
    with pytest.raises(GlacierInputError, match="cache_host_share"):
        CacheRequest("auto", torch.device("cpu"), host_share=0)


def test_small_budgets_fall_back_to_loader_workers(
    synthetic: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = synthetic_module(synthetic, [], probes=plenty(1000))
    with caplog.at_level("INFO"):
        loader = module.train_dataloader()
    assert isinstance(loader.dataset, WindowDataset) and module.training_cache is None
    assert module.cache_choice is not None and module.cache_choice.placement == "none"
    assert "no training cache: the training windows need 0.00 GB" in caplog.text
    roomy = synthetic_module(synthetic, [], probes=plenty())
    assert CACHE_KEYS in next(iter(roomy.train_dataloader()))
    assert roomy.cache_choice is not None and roomy.cache_choice.needed > 1000


def test_cache_load_shows_progress(synthetic: Path, capfd: pytest.CaptureFixture[str]) -> None:
    synthetic_module(synthetic, ["datamodule.cache=host"], progress=True).build_cache()
    assert "cache (MB)" in capfd.readouterr().err


def test_ddp_shards_split_every_window_between_ranks(synthetic: Path) -> None:
    module = synthetic_module(synthetic, [])
    train = positions(module.datasets["train"])
    shards = [shard_of(train, 3, rank) for rank in range(3)]
    assert len({len(shard) for shard in shards}) == 1  # every rank runs as many batches
    assert set().union(*map(set, shards)) == set(train)
    every = plan_every(train, [], None)
    plans = [plan_shard(train, [], None, 2, rank) for rank in range(2)]
    assert all(p is not None and p.sharded for p in plans)
    assert sum(p.pixels for p in plans if p is not None) >= every.pixels
    assert plan_shard(train, [], None, 1, 0) is None


def test_a_rank_caches_its_shard_when_all_windows_do_not_fit(synthetic: Path) -> None:
    full = synthetic_module(synthetic, ["datamodule.cache=device"])
    assert full.build_cache() is not None and full.cache_choice is not None
    every = full.cache_choice.needed
    tiles = []
    for rank in range(2):
        module = synthetic_module(synthetic, ["datamodule.cache=device"])
        module.feed.probes = plenty(every - 1)  # all windows no longer fit, half of them do
        module.trainer = _FakeTrainer(world_size=2, global_rank=rank)  # type: ignore[assignment]
        cached = module.build_cache()
        assert cached is not None and module.cache_choice is not None
        assert module.cache_choice.sharded and module.cache_choice.needed < every
        assert isinstance(cached.train_sampler, DistributedSampler)  # Lightning leaves it alone
        tiles.append(set(cached.cache.layout.tiles))
        keys = next(iter(module.train_dataloader()))[CACHE_KEYS]
        assert keys.shape == (4, 4) and int(keys[:, 0].max()) < len(cached.cache.layout.tiles)
    windows = {(t.scene, t.row, t.col) for t in tiles[0] | tiles[1]}
    every = positions(full.datasets["train"]) + positions(full.datasets[full.val_split])
    expected = {(s, r, c) for s, r, c, _ in every}
    assert windows == expected


def test_random_window_shards_hold_whole_scenes(synthetic: Path) -> None:
    module = synthetic_module(synthetic, RANDOM)
    windows = module.random_windows
    assert isinstance(windows, RandomWindowDataset)
    assert plan_shard([], [], windows, 2, 0) is None  # one scene cannot be split in two
    index = pd.read_csv(module.processed_dir / "splits.csv")
    two = pd.concat([index, index.assign(scene=index["scene"] + "_copy")])
    store: Any = module.datasets["train"].store
    scene = str(index["scene"].iloc[0])
    store._open[scene + "_copy"] = store.arrays(scene)  # a second scene with the same pixels
    doubled = RandomWindowDataset(store, two, size=48, length=12, margin=16, seed=0)
    plans = [plan_shard([], [], doubled, 2, rank) for rank in range(2)]
    assert all(p is not None for p in plans)
    scenes = [set(p.scene_tiles) for p in plans if p is not None]
    assert scenes[0].isdisjoint(scenes[1]) and scenes[0] | scenes[1] == {scene, scene + "_copy"}
    assert [p.offset for p in plans if p is not None] == [0, 6]


class _FakeTrainer:
    """What the cache reads of a Trainer under DDP."""

    def __init__(self, world_size: int, global_rank: int) -> None:
        self.world_size, self.global_rank = world_size, global_rank
        self.strategy = type("Strategy", (), {"root_device": torch.device("cpu")})()
        self.training = True


@pytest.mark.parametrize("device", DEVICES)
def test_gather_copies_windows_of_every_stored_dtype(device: str) -> None:
    """One gather per group, whatever the dtype (uint16 goes through its signed twin)."""
    from glacier.data.contract import StorageGroup
    from glacier.data.loading import WindowCache
    from glacier.data.loading.window_cache import CacheLayout, CacheTile, window_keys

    groups = tuple(
        StorageGroup(dtype, (i,))
        for i, dtype in enumerate(["uint8", "uint16", "float16", "float32"])
    )
    tiles = (CacheTile("a", -2, 0, 9, 11), CacheTile("b", 5, 5, 8, 8))
    cache = WindowCache(CacheLayout(tiles, groups, 2), torch.device(device))
    generator = torch.Generator().manual_seed(0)
    for tensor in cache.tensors:
        values = torch.randint(0, 60_000, (tensor.numel(),), generator=generator)
        tensor.copy_(values.to(tensor.dtype) if tensor.dtype != torch.uint8 else values % 256)
    corners = [(0, 0, 0), (0, 4, 6), (1, 3, 2), (1, 0, 3)]
    batch = cache.gather(window_keys(corners, 5))
    for tensor in batch.values():
        assert tensor.device.type == device and tensor.shape[:3] == (4, 5, 5)
    for slot, (tile, row, col) in enumerate(corners):
        for key, view in zip(cache.layout.keys, cache.tile_views(tile), strict=True):
            assert batch[key].dtype == view.dtype
            assert torch.equal(batch[key][slot].cpu(), view[row : row + 5, col : col + 5].cpu())


def test_cached_training_loaders_resume_mid_epoch_as_the_stored_ones_do() -> None:
    """A one-process cached loader is a ResumableLoader drawing the order shuffle=True draws."""
    from torch.utils.data import DataLoader

    from glacier.data.loading import CACHE_KEYS, ResumableLoader, ShuffledOrder, collate_windows
    from glacier.data.loading.cache_feed import CacheFeed
    from glacier.data.loading.cached_loaders import CachedSlices

    keys = CachedSlices(list(range(10)), 4)
    torch.manual_seed(5)
    shuffled = DataLoader(
        keys, batch_size=3, shuffle=True, collate_fn=collate_windows, drop_last=True
    )
    expected = [int(k) for batch in shuffled for k in batch[CACHE_KEYS][:, 0]]
    torch.manual_seed(5)
    loader = CacheFeed.loader(keys, None, 3, True, resumable=True)
    assert isinstance(loader, ResumableLoader) and isinstance(loader.sampler, ShuffledOrder)
    batches = iter(loader)
    first = next(batches)
    state = loader.state_dict()
    assert state["batches"] == 1
    assert loader.sampler.state_dict()["seed"] >= 0
    rest = list(batches)
    assert len(rest) == 2  # 9 of 10 samples in full batches of 3
    again = CacheFeed.loader(keys, None, 3, True, resumable=True)
    again.load_state_dict(state)
    replayed = list(again)
    assert len(replayed) == 2
    for a, b in zip(replayed, rest, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    tiles = [int(k) for batch in (first, *rest) for k in batch[CACHE_KEYS][:, 0]]
    assert tiles == expected  # the batches a shuffle=True loader draws
    plain = CacheFeed.loader(keys, None, 3, True)
    assert not isinstance(plain, ResumableLoader)
