"""The data path: the dataset contract, pixels stored once, device-side batches, the normalizer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from omegaconf import DictConfig
from scene_files import tree_checksums

from glacier.data.contract import (
    Channel,
    ChannelStats,
    DatasetContract,
    NodataRule,
    checkpoint_contract,
    load_contract,
)
from glacier.data.loading import LABEL_KEY, Augment, BatchLayout, GlacierDataModule, auto_workers
from glacier.data.spec import ensure_synthetic_dataset
from glacier.errors import GlacierInputError
from glacier.models import CrossEntropyLoss, DiceCELoss, DiceLoss, FocalLoss, confusion_matrix
from glacier.tasks.config import gpu_precision
from glacier.tasks.predict import load_segmenter, run_predict
from glacier.tasks.preprocess import run_preprocess

Compose = Callable[[str, list[str] | None], DictConfig]
FIXTURES = Path(__file__).parent / "fixtures"
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]


def contract(**changes: object) -> DatasetContract:
    fields: dict[str, object] = {
        "name": "t",
        "channels": (
            Channel("red", dtype="uint8"),
            Channel("nir", dtype="uint8"),
            Channel("ndvi", "index", "(nir-red)/(nir+red)", "float16"),
        ),
        "classes": ("glacier", "debris"),
        "band_layout": (("red", "nir"),),
        "stats": ChannelStats(
            mean={"red": 100.0, "nir": 80.0, "ndvi": 0.1},
            std={"red": 20.0, "nir": 10.0, "ndvi": 0.5},
        ),
    }
    return DatasetContract(**(fields | changes))  # type: ignore[arg-type]


def test_contract_round_trips_through_plain_json() -> None:
    original = contract(nodata=NodataRule(value=0.0, all_zero=True))
    text = json.dumps(original.to_dict())
    assert DatasetContract.from_dict(json.loads(text)) == original


def test_contract_refuses_other_formats_and_bad_statistics() -> None:
    data = contract().to_dict()
    with pytest.raises(GlacierInputError, match=r"format 1.*re-run `glacier preprocess`"):
        DatasetContract.from_dict({**data, "format_version": None}, where="old/dataset.json")
    data["stats"]["std"]["nir"] = 0.0
    with pytest.raises(GlacierInputError, match=r"std of channel 'nir' is 0\.0"):
        DatasetContract.from_dict(data)
    with pytest.raises(GlacierInputError, match="'background' is implicit"):
        contract(classes=("background",))


def test_processed_dataset_of_format_1_fails_with_how_to_rebuild(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "old", "channels": ["a"]}))
    with pytest.raises(
        GlacierInputError, match=r"dataset\.json: written by a glacier with dataset format 1"
    ):
        load_contract(tmp_path)


def test_legacy_checkpoint_loads_and_maps_exactly_as_before(
    compose_in: Compose, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint of format-1 main (statistics in hparams, no normalizer buffers)."""
    module = load_segmenter(FIXTURES / "legacy_v1_synthetic.ckpt")
    assert module.contract.channel("ndsi").formula == "(green-swir1)/(green+swir1)"
    assert module.contract.stats is not None and module.contract.stats.pixels == 0
    ensure_synthetic_dataset(tmp_path / "data" / "raw" / "synthetic", seed=42)
    cfg = compose_in(
        "predict",
        [
            "data=synthetic",
            f"ckpt_path={FIXTURES / 'legacy_v1_synthetic.ckpt'}",
            f"out_dir={tmp_path}/maps",
        ],
    )
    run_predict(cfg)
    assert "records no training band dtypes or value ranges" in caplog.text  # warned, not refused
    expected = np.load(FIXTURES / "legacy_v1_synthetic_classes.npz")
    with rasterio.open(tmp_path / "maps" / "synthetic_classes.tif") as src:
        np.testing.assert_array_equal(src.read(1), expected["classes"])
    with rasterio.open(tmp_path / "maps" / "synthetic_probs.tif") as src:
        np.testing.assert_array_equal(src.read(), expected["probs_percent"])


def test_format_1_hyperparameters_become_a_contract() -> None:
    hparams = torch.load(FIXTURES / "legacy_v1_synthetic.ckpt", weights_only=True)[
        "hyper_parameters"
    ]
    parsed = checkpoint_contract(hparams["data"], hparams["normalization"], hparams["class_names"])
    assert parsed.channel_names == ["blue", "green", "red", "nir", "swir1", "swir2", "ndvi", "ndsi"]
    assert parsed.band_layout == (("blue", "green", "red", "nir", "swir1", "swir2"),)
    with pytest.raises(GlacierInputError, match="no dataset contract"):
        checkpoint_contract(None, None, ["x"])


@pytest.fixture
def processed(compose_in: Compose) -> tuple[DictConfig, Path]:
    cfg = compose_in(
        "preprocess", ["data=synthetic", "data.overlap=0", "preprocessor.progress=false"]
    )
    run_preprocess(cfg)
    return cfg, Path(cfg.paths.processed_dir)


def test_pixels_are_stored_once_without_normalized_copies(
    processed: tuple[DictConfig, Path],
) -> None:
    _, out = processed
    floats = np.load(out / "scenes" / "synthetic" / "image_float32.npy", mmap_mode="r")
    halves = np.load(out / "scenes" / "synthetic" / "image_float16.npy", mmap_mode="r")
    assert floats.shape == (256, 320, 6) and halves.shape == (256, 320, 2)
    stored = sum(p.stat().st_size for p in (out / "scenes").rglob("*.npy"))
    assert stored <= 256 * 320 * (6 * 4 + 2 * 2) + 2 * 256  # pixels once, plus .npy headers
    assert not any((out / split).exists() for split in ("train", "dev", "test"))


def test_new_split_filter_or_statistics_rewrite_no_pixel(
    processed: tuple[DictConfig, Path], compose_in: Compose
) -> None:
    _, out = processed
    pixels = {
        p: p.stat().st_mtime_ns for p in [*out.glob("scenes/*/*.npy"), *out.glob("masks/*.npy")]
    }
    sums = tree_checksums(out / "scenes")
    before = pd.read_csv(out / "splits.csv")
    again = compose_in(
        "preprocess",
        [
            "data=synthetic",
            "data.overlap=0",
            "split.seed=7",
            "filter=glacier_10pct",
            "preprocessor.progress=false",
        ],
    )
    run_preprocess(again)
    after = pd.read_csv(out / "splits.csv")
    assert not before.equals(after)
    assert {p: p.stat().st_mtime_ns for p in pixels} == pixels
    assert tree_checksums(out / "scenes") == sums


def datamodule_of(out: Path, **kwargs: object) -> GlacierDataModule:
    module = GlacierDataModule(out, num_workers=0, **kwargs)  # type: ignore[arg-type]
    module.setup("fit")
    return module


def test_normalized_training_batches_are_standardized(processed: tuple[DictConfig, Path]) -> None:
    _, out = processed
    datamodule = datamodule_of(out, batch_size=4)
    contract_ = datamodule.contract
    assert contract_.stats is not None
    from glacier.models import Normalizer

    normalizer = Normalizer(*contract_.stats.of(datamodule.channel_names))
    values = []
    for raw in datamodule._loader("train", shuffle=False):
        batch = datamodule.prepare_batch(raw, train=False)
        image = normalizer(batch["image"])
        values.append(image.permute(1, 0, 2, 3)[:, batch["mask"] != 255].double())
    pixels = torch.cat(values, dim=1)
    # non-overlapping windows: every training pixel once, as in the statistics
    np.testing.assert_allclose(pixels.mean(dim=1).numpy(), 0.0, atol=1e-3)
    np.testing.assert_allclose(pixels.std(dim=1, correction=0).numpy(), 1.0, atol=1e-3)


def raw_batch(device: str) -> dict[str, torch.Tensor]:
    """Two 4×4 windows: uint8 red/nir, float16 ndvi, 2-class labels with nodata."""
    generator = torch.Generator().manual_seed(0)
    bands = torch.randint(1, 255, (2, 4, 4, 2), generator=generator, dtype=torch.uint8)
    ndvi = torch.rand((2, 4, 4, 1), generator=generator).half()
    label = torch.zeros((2, 4, 4, 2), dtype=torch.uint8)
    label[:, :2, :, 0] = 1  # glacier on the top rows
    label[:, 0, :, 1] = 1  # debris on the first row (overlaps glacier)
    label[0, 3, 3] = 255  # nodata pixel
    bands[1, 3, 0] = 0  # all-zero pixel (with ndvi 0 below)
    ndvi[1, 3, 0] = 0
    ndvi[1, 2, 2] = float("nan")
    batch = {"image_uint8": bands, "image_float16": ndvi, LABEL_KEY: label}
    return {key: value.to(device) for key, value in batch.items()}


@pytest.mark.parametrize("device", [*DEVICES, "meta"])
def test_batch_layout_selects_on_the_batch_device(device: str) -> None:
    layout = BatchLayout.of(contract(), ["ndvi", "red"], ["debris", "glacier"])
    batch = raw_batch("cpu")
    image, target = layout.assemble({k: v.to(device) for k, v in batch.items()})
    assert image.device.type == target.device.type == device
    assert image.dtype == torch.float32 and image.shape == (2, 2, 4, 4)
    assert image.is_contiguous(memory_format=torch.channels_last)
    if device == "meta":
        return
    image, target = image.cpu(), target.cpu()
    assert image[0, 1, 0, 0] == batch["image_uint8"][0, 0, 0, 0].float()
    assert image[0, 0, 1, 1] == batch["image_float16"][0, 1, 1, 0].float()
    # later class wins: debris (1) on row 0, glacier (2) on row 1, background below
    assert target[0, 0, 0] == 2 and target[0, 1, 0] == 2 and target[0, 2, 0] == 0
    layout_debris_last = BatchLayout.of(contract(), ["red"], ["glacier", "debris"])
    assert layout_debris_last.assemble(batch)[1][0, 0, 0] == 2  # now debris wins row 0
    assert target[0, 3, 3] == 255 and torch.isnan(image[0, :, 3, 3]).all()  # labelled nodata
    assert target[1, 2, 2] == 255  # NaN in a float channel
    assert target[1, 3, 0] != 255  # all-zero is valid unless the rule says otherwise
    all_zero = BatchLayout.of(contract(nodata=NodataRule(all_zero=True)), ["red"], ["glacier"])
    assert all_zero.assemble(batch)[1][1, 3, 0] == 255


@pytest.mark.parametrize("device", DEVICES)
def test_augmentation_keeps_image_and_mask_aligned(device: str) -> None:
    coarse = torch.randint(0, 3, (6, 4, 4), device=device)  # 4×4 px blocks of one class
    target = coarse.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
    target[:, 0, 0] = 255
    image = torch.stack([target.float(), -target.float()], dim=1)
    image = image.contiguous(memory_format=torch.channels_last)
    mean, std = torch.zeros(2, device=device), torch.ones(2, device=device)
    augment = Augment(flips=True, rotations=True, seed=3)
    out_image, out_target = augment(image, target, mean, std)
    assert out_image.device.type == out_target.device.type == device
    assert torch.equal(out_image[:, 0], out_target.float())  # same transform for both
    assert not torch.equal(out_target, target)  # something moved
    again = Augment(flips=True, rotations=True, seed=3)(image, target, mean, std)
    assert torch.equal(again[1], out_target)  # seeded: repeatable
    zoomed_image, zoomed_target = Augment(min_crop_scale=0.5, seed=1)(image, target, mean, std)
    agree = (zoomed_image[:, 0].round() == zoomed_target.float()) | (zoomed_target == 255)
    assert agree.float().mean() > 0.8  # bilinear vs nearest differ only along class edges
    assert not torch.equal(zoomed_target, target)


def test_jitter_shifts_and_scales_each_channel_and_keeps_nodata() -> None:
    image = torch.full((2, 3, 8, 8), 5.0)
    image[0, :, 0, 0] = float("nan")
    target = torch.zeros((2, 8, 8), dtype=torch.long)
    mean, std = torch.full((3,), 4.0), torch.full((3,), 2.0)
    augment = Augment(flips=False, rotations=False, brightness=0.5, contrast=0.3, seed=0)
    out, same_target = augment(image, target, mean, std)
    assert torch.equal(same_target, target) and torch.isnan(out[0, :, 0, 0]).all()
    per_channel = out[1].flatten(1)
    assert (per_channel.std(dim=1) == 0).all()  # one affine map per sample and channel
    shift = (per_channel[:, 0] - 4.0) / 2.0 - 0.5  # (x - mean) * c + b * std with x - mean = 1
    assert (per_channel[:, 0] != 5.0).all() and shift.abs().max() < 0.3 + 0.5 + 1e-5


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), DiceLoss(), DiceCELoss(), FocalLoss()])
def test_nodata_is_ignored_by_losses_and_metrics(loss: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn((2, 3, 8, 8), generator=generator, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8), generator=generator)
    target[:, :3] = 255
    value = loss(logits, target)
    value.backward()
    assert logits.grad is not None and (logits.grad[:, :, :3] == 0).all()
    changed = logits.detach().clone()
    changed[:, :, :3] = 100.0  # whatever the model says on nodata pixels
    assert torch.allclose(loss(changed, target), value.detach())
    prediction = logits.argmax(1).numpy()
    matrix = confusion_matrix(prediction, target.numpy(), 3)
    assert matrix.sum() == (target != 255).sum()


def test_loader_workers_fit_the_machine() -> None:
    assert auto_workers(cpus=2, ranks_per_node=1) == 0  # the training step needs both cores
    assert auto_workers(cpus=16, ranks_per_node=1) == 15
    assert auto_workers(cpus=16, ranks_per_node=4) == 3
    assert auto_workers(cpus=256, ranks_per_node=1) == 16


def test_gpu_trainer_precision_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert gpu_precision() == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert gpu_precision() == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_precision() == "16-mixed"


def test_progress_false_silences_every_bar(
    compose_in: Compose, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = compose_in("preprocess", ["data=synthetic", "preprocessor.progress=false"])
    run_preprocess(cfg)
    again = compose_in(
        "preprocess", ["data=synthetic", "split.seed=3", "preprocessor.progress=false"]
    )
    run_preprocess(again)  # postprocess only: statistics again
    captured = capfd.readouterr()
    assert "it/s" not in captured.err and "%|" not in captured.err
