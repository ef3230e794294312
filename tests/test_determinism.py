"""Repeatable training: the same config twice gives the same metrics; max_time is recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_config
from hydra.utils import instantiate
from omegaconf import DictConfig

from glacier.data.loading import EpochSampler, GlacierDataModule
from glacier.errors import GlacierInputError
from glacier.tasks.train import run_train
from glacier.utils.reproducibility import apply_threads

# What experiment=demo sets for repeatability, on the tiny synthetic data, with every random
# part switched on: random windows, jitter, zoom crops, dropout, TTA in the test step.
DETERMINISTIC = [
    "data=synthetic",
    "logger=none",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.deterministic=true",
    "threads=2",
    "model.depth=3",
    "model.base_filters=8",
    "model.batch_norm=true",
    "trainer.max_epochs=3",
    "datamodule.sampler=random_windows",
    "datamodule.windows_per_epoch=12",
    "datamodule.window_size=48",
    "datamodule.batch_size=4",
    "datamodule.num_workers=0",
    "datamodule.augment.brightness=0.2",
    "datamodule.augment.contrast=0.2",
    "datamodule.augment.min_crop_scale=0.7",
    "tta=true",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic dataset, preprocessed once for this module."""
    root = tmp_path_factory.mktemp("determinism_data")
    cfg = compose_config("train", [*DETERMINISTIC, f"paths.data_dir={root}"], root)
    instantiate(cfg.datamodule, _convert_="all").prepare_data()
    return root


def config(root: Path, data_dir: Path, extra: list[str] | None = None) -> DictConfig:
    return compose_config(
        "train", [*DETERMINISTIC, f"paths.data_dir={data_dir}", *(extra or [])], root
    )


def train_metrics(root: Path, data_dir: Path, extra: list[str] | None = None) -> dict[str, Any]:
    run_train(config(root, data_dir, extra))
    result: dict[str, Any] = json.loads((root / "run" / "metrics.json").read_text())
    return result


def test_two_deterministic_runs_give_identical_metrics(tmp_path: Path, data_dir: Path) -> None:
    threads = torch.get_num_threads()
    try:
        first = train_metrics(tmp_path / "a", data_dir)
        second = train_metrics(tmp_path / "b", data_dir)
    finally:
        torch.set_num_threads(threads)
    assert first["test"] and first["test"] == second["test"]
    assert first["final_fit"] == second["final_fit"]
    assert first["global_step"] == second["global_step"] == 9
    assert (first["threads"], first["deterministic"], first["max_time_fired"]) == (2, True, False)


def test_a_fit_from_the_cache_equals_one_from_the_loader(tmp_path: Path, data_dir: Path) -> None:
    """Same seed: training from cached windows gives the metrics of reading them each time."""
    threads = torch.get_num_threads()
    try:
        read = train_metrics(tmp_path / "a", data_dir, ["datamodule.cache=none"])
        cached = train_metrics(tmp_path / "b", data_dir, ["datamodule.cache=device"])
    finally:
        torch.set_num_threads(threads)
    assert read["test"] and read["test"] == cached["test"]
    assert read["final_fit"] == cached["final_fit"]


class Slow(pl.Callback):
    """Make every training batch take a while, so a short max_time fires."""

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.6)


def test_max_time_firing_is_recorded(tmp_path: Path, data_dir: Path) -> None:
    cfg = config(tmp_path, data_dir, ["trainer.max_time=00:00:00:01", "trainer.max_epochs=50"])
    cfg.callbacks = {"slow": {"_target_": "test_determinism.Slow"}}
    run_train(cfg)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["max_time_fired"] is True and record["max_time"] == 1.0
    assert record["epochs"] < 50


def test_threads_are_applied_and_checked() -> None:
    threads = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 == torch.get_num_threads()
        assert apply_threads(None) == 1
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(GlacierInputError):
        apply_threads(-1)


def test_lightning_gives_the_window_sampler_each_epoch(tmp_path: Path, data_dir: Path) -> None:
    cfg = config(tmp_path, data_dir, ["test=false"])
    datamodule: GlacierDataModule = instantiate(cfg.datamodule, _convert_="all")
    datamodule.setup("fit")
    seen: list[tuple[int, int]] = []

    class Record(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
            sampler = trainer.train_dataloader.sampler  # type: ignore[union-attr]
            assert isinstance(sampler, EpochSampler)
            seen.append(next(iter(sampler)))

    from glacier.tasks.train import build_module

    trainer = pl.Trainer(
        max_epochs=3,
        logger=False,
        callbacks=[Record()],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=1,
    )
    trainer.fit(build_module(cfg, datamodule), datamodule=datamodule)
    assert seen == [(0, 0), (1, 0), (2, 0)]


def test_weight_ema_is_what_test_and_prediction_score(tmp_path: Path, data_dir: Path) -> None:
    extra = ["+callbacks.ema._target_=glacier.models.WeightEMA", "+callbacks.ema.decay=0.9"]
    cfg = config(tmp_path, data_dir, [*extra, "tta=false"])
    run_train(cfg)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    from glacier.models import GlacierSegmenter

    ckpt = torch.load(record["best_checkpoint"], map_location="cpu", weights_only=True)
    assert "current_model_state" in ckpt  # the raw weights ride along for resuming
    module = GlacierSegmenter.load_from_checkpoint(record["best_checkpoint"], weights_only=True)
    datamodule: GlacierDataModule = instantiate(cfg.datamodule, _convert_="all")
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (again,) = trainer.test(module, datamodule=datamodule, verbose=False)
    for key in ("test/loss", "test/iou_mean"):  # the loss tells the two weight sets apart
        assert again[key] == pytest.approx(record["test"][key], abs=1e-6)
