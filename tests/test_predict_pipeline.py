"""Prediction on any device: plumbing, batch-independent MC draws, precision, resume, shards."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from operator import itemgetter
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from conftest import compose_config
from omegaconf import DictConfig
from test_predict_cli import predict_cfg, trained  # noqa: F401  (module-scoped fixture)

import glacier.tasks.predict as predict_task
from glacier.errors import GlacierConfigError, GlacierInputError
from glacier.inference.engine import (
    PredictSettings,
    default_batch_size,
    default_readers,
    resolve_device,
    resolve_precision,
)
from glacier.inference.engine.blending import BlendStrip
from glacier.inference.engine.encode import encode_block
from glacier.inference.engine.tile_predictor import TilePredictor, tile_seed
from glacier.inference.engine.tiling import blend_weights
from glacier.inference.products import PredictionRecord
from glacier.models import PassStats, StatsNeeds, apply_view, undo_view
from glacier.tasks.predict import load_segmenter, run_predict

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs CUDA"))]


def test_device_and_precision_choices_resolve_or_fail_in_one_line() -> None:
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_precision("auto", torch.device("cpu")) is None
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(GlacierConfigError, match="precision=fp16 needs a GPU"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(GlacierConfigError, match="device='tpu'"):
        resolve_device("tpu")
    assert default_batch_size(torch.device("cpu")) == 4
    assert default_batch_size(torch.device("cuda")) == 16
    assert default_readers(torch.device("cpu")) == 1
    with pytest.raises(GlacierConfigError, match="batch_size=0"):
        default_batch_size(torch.device("cpu"), 0)


@pytest.mark.skipif(CUDA, reason="checks the message of a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line_before_anything_is_written(
    tmp_path: Path,
    trained: tuple[Path, Path],  # noqa: F811
) -> None:
    with pytest.raises(GlacierConfigError) as error:
        resolve_device("cuda:1")
    assert str(error.value) == (
        "device=cuda:1: no CUDA GPU is visible to this process; use device=cpu or device=auto"
    )
    cfg = predict_cfg(tmp_path, trained[1], [f"ckpt_path={trained[0]}", "device=cuda"])
    with pytest.raises(GlacierConfigError, match="device=cuda"):
        run_predict(cfg)
    assert not (tmp_path / "maps").exists() or not list((tmp_path / "maps").iterdir())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=0", "batch_size=0"),
        ("mc_samples=-1", "mc_samples=-1"),
        ("tta=9", "tta=9"),
        ("overlap=64", "overlap=64"),
        ("shard=2", "shard=2"),
        ("probabilities=float16", "probabilities"),
        ("uncertainty=variance", "uncertainty='variance'"),
        ("uncertainty=spread", "needs several passes"),
        ("uncertainty=[entropy,mutual_information]", "mutual_information"),
        ("temperature=0", "temperature=0"),
    ],
)
def test_impossible_settings_are_refused_up_front(
    tmp_path: Path,
    trained: tuple[Path, Path],  # noqa: F811
    override: str,
    message: str,
) -> None:
    cfg = predict_cfg(tmp_path, trained[1], [f"ckpt_path={trained[0]}", override])
    with pytest.raises(GlacierInputError, match=message):
        run_predict(cfg)
    assert not (tmp_path / "maps").exists() or not list((tmp_path / "maps").iterdir())


def test_an_out_dir_that_is_a_file_is_refused(tmp_path: Path, trained: tuple[Path, Path]) -> None:  # noqa: F811
    (tmp_path / "maps").write_text("not a folder")
    cfg = predict_cfg(tmp_path, trained[1], [f"ckpt_path={trained[0]}"])
    with pytest.raises(GlacierConfigError, match="is a file"):
        run_predict(cfg)
    assert (tmp_path / "maps").read_text() == "not a folder"


@pytest.mark.parametrize("device", DEVICES)
def test_tensors_live_on_the_chosen_device(device: str, trained: tuple[Path, Path]) -> None:  # noqa: F811
    module = load_segmenter(trained[0])
    settings = PredictSettings(
        tile_size=32,
        overlap=8,
        mc_samples=2,
        device=torch.device(device),
        temperatures=(1.5,),
        uncertainty=("spread",),
        score_measures=True,
        pass_maps=True,
    )
    predictor = TilePredictor(module, settings)
    assert all(p.device.type == device for p in module.parameters())
    assert all(b.device.type == device for b in module.buffers())  # the normalizer's too
    tiles = [torch.rand(8, 32, 32, device=device) for _ in range(3)]
    stats = predictor(tiles, [1, 2, 3])
    parts = (stats.probs, stats.squares, stats.entropy, stats.uncalibrated, stats.per_pass)
    assert all(t is not None and t.device.type == device for t in parts)
    strip = BlendStrip(3, 40, 40, settings.needs, 16, device)
    weights = torch.from_numpy(blend_weights(32, 8)).to(device)
    valid = torch.ones((32, 32), dtype=torch.bool, device=device)
    strip.add(0, 0, stats.map(itemgetter(0)), valid, weights)
    blocks = list(strip.pop_all())
    sums = [b.stats for b in blocks]
    assert all(t is not None and t.device.type == device for s in sums for t in vars(s).values())
    rows = encode_block(blocks[0], True, settings.written_measures, settings.scored_measures)
    assert rows.uncertainty is not None and rows.uncertainty.shape == (1, 16, 40)
    # every measure of 2 MC passes, then the confidence without the temperature
    assert rows.measures is not None and rows.measures.shape == (5, 16, 40)
    assert rows.passes is not None and rows.passes.shape == (2, 16, 40)  # a map per MC pass
    assert np.isnan(rows.measures[:, :, 32:]).all() and np.isfinite(rows.measures[:, :, :32]).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mc_samples", [0, 2])
def test_tta_averages_the_dihedral_views_on_the_device(
    device: str,
    mc_samples: int,
    trained: tuple[Path, Path],  # noqa: F811
) -> None:
    module = load_segmenter(trained[0])
    base = PredictSettings(
        tile_size=32, overlap=8, mc_samples=mc_samples, device=torch.device(device)
    )
    tiles = [torch.rand(8, 32, 32, device=device) for _ in range(2)]
    plain = TilePredictor(module, base)(tiles, [1, 2]).probs
    views = replace(base, tta=8, uncertainty=("spread", "mutual_information"))
    both = TilePredictor(module, views)(tiles, [1, 2])
    assert both.probs.device.type == device and both.probs.shape == plain.shape
    torch.testing.assert_close(both.probs.sum(dim=1), torch.ones_like(both.probs[:, 0]))
    # the same average by hand: rotated/flipped tiles in, outputs turned back
    manual = torch.zeros_like(plain)
    for code in range(8):
        turned = [apply_view(t, code) for t in tiles]
        manual += undo_view(TilePredictor(module, base)(turned, [1, 2]).probs, code)
    torch.testing.assert_close(both.probs, manual / 8, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(both.probs, plain)  # the views do differ for a trained U-Net
    assert both.squares is not None and both.entropy is not None  # what the measures need
    assert bool((both.squares >= both.probs**2 - 1e-6).all())  # E[p²] >= E[p]²


def test_blending_shapes_hold_on_the_meta_device() -> None:
    strip = BlendStrip(3, 700, 1000, StatsNeeds(squares=True), 256, "meta")
    weights = torch.empty((64, 64), device="meta")
    probs = torch.empty((3, 64, 64), device="meta")
    valid = torch.empty((64, 64), dtype=torch.bool, device="meta")
    for row in range(0, 1000, 48):
        strip.add(row, 650, PassStats(probs, probs), valid, weights)  # clipped at the right
        assert strip.rows_held <= 2 * 256
        list(strip.pop_above(row))
    assert [b.top for b in strip.pop_all()][-1] == 768


def test_tile_seeds_depend_on_scene_and_position_only() -> None:
    seeds = {tile_seed(42, "a", r, c) for r in (0, 448) for c in (0, 448)}
    assert len(seeds) == 4 and tile_seed(42, "a", 0, 0) == tile_seed(42, "a", 0, 0)
    assert tile_seed(42, "a", 0, 0) != tile_seed(42, "b", 0, 0) != tile_seed(43, "a", 0, 0)


def copies(tmp_path: Path, root: Path, names: list[str]) -> Path:
    scene = root / "data" / "raw" / "synthetic" / "scene.tif"
    folder = tmp_path / "scenes"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.tif").write_bytes(scene.read_bytes())
    return folder


def sha(path: str | Path) -> str:
    with rasterio.open(path) as src:
        return hashlib.sha256(src.read().tobytes()).hexdigest()


def run_in(
    tmp_path: Path, root: Path, ckpt: Path, name: str, *extra: str
) -> list[PredictionRecord]:
    cfg = predict_cfg(tmp_path, root, [f"ckpt_path={ckpt}", f"out_dir={tmp_path}/{name}", *extra])
    return run_predict(cfg)


def test_mc_maps_do_not_depend_on_batch_size_grouping_or_shards(
    tmp_path: Path,
    trained: tuple[Path, Path],  # noqa: F811
) -> None:
    ckpt, root = trained
    folder = copies(tmp_path, root, ["a", "b", "c", "d"])
    common = [f"input={folder}/*.tif", "mc_samples=3"]
    whole = run_in(tmp_path, root, ckpt, "whole", *common, "batch_size=5")
    single = run_in(tmp_path, root, ckpt, "single", *common, "batch_size=1")
    shards = [
        run_in(
            tmp_path, root, ckpt, "shards", *common, "batch_size=3", f"shard={i}", "num_shards=2"
        )
        for i in (0, 1)
    ]
    assert [r.scene for r in shards[0]] == ["a", "c"] and [r.scene for r in shards[1]] == [
        "b",
        "d",
    ]
    by_scene = {r.scene: r for part in shards for r in part}
    for reference in whole:
        for other in (single[whole.index(reference)], by_scene[reference.scene]):
            assert sha(other.classes) == sha(reference.classes)
            assert sha(other.probs) == sha(reference.probs)
            with (
                rasterio.open(other.uncertainty) as a,
                rasterio.open(reference.uncertainty) as b,
            ):
                # float sums differ in the last bits between batch sizes; sqrt near 0 magnifies
                np.testing.assert_allclose(a.read(), b.read(), atol=1e-3, equal_nan=True)
    # the same pixels under another name draw other masks: MC seeds follow the scene
    with rasterio.open(whole[0].uncertainty) as a, rasterio.open(whole[1].uncertainty) as b:
        assert not np.allclose(a.read(), b.read(), equal_nan=True)


def test_bf16_and_fp32_maps_agree(tmp_path: Path, trained: tuple[Path, Path]) -> None:  # noqa: F811
    ckpt, root = trained
    fp32 = run_in(tmp_path, root, ckpt, "fp32", "precision=fp32")[0]
    bf16 = run_in(tmp_path, root, ckpt, "bf16", "precision=bf16")[0]
    with rasterio.open(fp32.classes) as a, rasterio.open(bf16.classes) as b:
        full, half = a.read(1), b.read(1)
    valid = full != 255
    assert (half[~valid] == 255).all()
    assert (full[valid] == half[valid]).mean() >= 0.995
    stac = json.loads(Path(bf16.stac).read_text())
    assert stac["properties"]["glacier:precision"] == "bf16"


def test_finished_scenes_are_skipped_and_an_interrupted_run_resumes(
    tmp_path: Path,
    trained: tuple[Path, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ckpt, root = trained
    folder = copies(tmp_path, root, ["north", "south"])
    inputs = f"input={folder}/*.tif"
    real = predict_task.make_products

    def crash_on_south(scene_id: str, *args: object, **kwargs: object) -> PredictionRecord:
        if scene_id == "south":
            raise RuntimeError("power cut")
        return real(scene_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(predict_task, "make_products", crash_on_south)
    with pytest.raises(RuntimeError, match="power cut"):
        run_in(tmp_path, root, ckpt, "maps", inputs)
    maps = tmp_path / "maps"
    assert (maps / "north_prediction.json").is_file()
    assert not (maps / "south_prediction.json").exists()  # no record: not trusted
    north = (maps / "north_classes.tif").stat().st_mtime_ns
    monkeypatch.setattr(predict_task, "make_products", real)
    results = run_in(tmp_path, root, ckpt, "maps", inputs)
    assert [r.skipped for r in results] == [True, False]
    assert (maps / "north_classes.tif").stat().st_mtime_ns == north
    assert (maps / "south_prediction.json").is_file()
    again = run_in(tmp_path, root, ckpt, "maps", inputs)
    assert all(r.skipped for r in again)
    changed = run_in(tmp_path, root, ckpt, "maps", inputs, "mc_samples=2")
    assert not any(r.skipped for r in changed)  # a setting changed: redone
    assert (maps / "north_uncertainty.tif").is_file()
    forced = run_in(tmp_path, root, ckpt, "maps", inputs, "mc_samples=2", "overwrite=true")
    assert not any(r.skipped for r in forced)
    (maps / "south_probs.tif").unlink()  # a lost output is redone, not trusted
    redone = run_in(tmp_path, root, ckpt, "maps", inputs, "mc_samples=2")
    assert [r.skipped for r in redone] == [True, False]


def test_names_colliding_across_shards_are_refused_before_any_write(
    tmp_path: Path,
    trained: tuple[Path, Path],  # noqa: F811
) -> None:
    ckpt, root = trained
    first = copies(tmp_path / "x", root, ["scene"]) if (tmp_path / "x").mkdir() is None else None
    second = copies(tmp_path / "y", root, ["Scene"]) if (tmp_path / "y").mkdir() is None else None
    assert first and second
    cfg = predict_cfg(
        tmp_path,
        root,
        [
            f"ckpt_path={ckpt}",
            f"input=[{first}/scene.tif,{second}/Scene.tif]",
            "shard=0",
            "num_shards=2",
        ],
    )
    with pytest.raises(GlacierInputError, match="scene"):
        run_predict(cfg)
    assert not (tmp_path / "maps").exists() or not list((tmp_path / "maps").iterdir())


def test_compose_defaults_fit_the_machine(tmp_path: Path) -> None:
    cfg: DictConfig = compose_config("predict", ["ckpt_path=x"], tmp_path)
    assert (cfg.device, cfg.precision, cfg.batch_size, cfg.readers) == (
        "auto",
        "auto",
        "auto",
        "auto",
    )
