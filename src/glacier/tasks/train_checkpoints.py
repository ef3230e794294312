"""After the fit: which checkpoint is calibrated and tested (the ``checkpoint`` policy).

``checkpoint: best`` (the best on the dev split, ``best.ckpt``), ``last`` (the weights at the end
of training, ``last.ckpt``) or ``cv``: both, so that the choice between them can be made on the
mean over the folds of a cross-validation (:mod:`glacier.tasks.cv`). Each tested checkpoint gets
its temperature fitted on dev (stored in the file) and is scored on the test split; the first
(``best`` under ``cv``) through Lightning's test step (logged as ``test/…``), the other through
the same test step run by :func:`~glacier.models.ensemble_test_step` (logged as ``test_last/…``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import move_data_to_device

from glacier.data.loading import GlacierDataModule
from glacier.models import (
    GlacierSegmenter,
    TemperatureFit,
    collect_logits,
    ensemble_test_step,
    fit_temperature,
    store_temperature,
)
from glacier.models.calibration import MAX_PIXELS
from glacier.tasks.config import build
from glacier.tasks.ddp import single_device_trainer
from glacier.tasks.train_options import TrainOptions

log = logging.getLogger(__name__)


@dataclass
class CheckpointTest:
    """What one checkpoint gave after the fit.

    Attributes:
        path: The checkpoint file (None: the final weights, when nothing was checkpointed).
        calibration: The temperature fitted on dev (stored in the file), or None.
        test: Test metrics (``test/iou_mean`` …), empty when not tested.
        uncertainty: The uncertainty evaluation of the test passes, or None.
    """

    path: str | None
    calibration: TemperatureFit | None = None
    test: dict[str, float] | None = None
    uncertainty: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        fit = None if self.calibration is None else asdict(self.calibration)
        return {
            "checkpoint": self.path,
            "calibration": fit,
            "test": self.test or {},
            "uncertainty": self.uncertainty,
        }


def checkpoint_paths(trainer: pl.Trainer) -> dict[str, str]:
    """``best`` and ``last`` checkpoint files of the fit (those that were written)."""
    paths: dict[str, str] = {}
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint) or not callback.best_model_path:
            continue
        name = "last" if callback.monitor is None else "best"
        paths.setdefault(name, str(callback.best_model_path))
    if "best" not in paths and "last" in paths:  # no monitored checkpoint (``callbacks=none``):
        paths["best"] = paths["last"]  # Lightning's own "best" is then its last save
    return paths


def best_score(trainer: pl.Trainer) -> float | None:
    """The monitored dev score of the best checkpoint."""
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_score is not None:
        return float(callback.best_model_score)
    return None


def calibrate(
    name: str,
    path: str | None,
    trainer: pl.Trainer,
    datamodule: GlacierDataModule,
    loggers: list[Logger],
) -> TemperatureFit | None:
    """Fit the temperature of a checkpoint on the dev split and store it there.

    The checkpoint predicts every dev window once (eval mode, on the training device); the
    temperature that minimizes the NLL of the dev labels (:func:`fit_temperature`) is written
    into the file, which the test step and ``glacier predict`` then apply.

    Returns:
        The fit, or None when there is no checkpoint or no dev split (T stays 1).
    """
    dev = datamodule.datasets.get("dev")
    if path is None or dev is None or not len(dev):
        log.warning("no checkpoint or no dev split: the temperature stays 1 (uncalibrated)")
        return None
    device = trainer.strategy.root_device
    module = GlacierSegmenter.load_from_checkpoint(path, map_location=device, weights_only=True)
    area = datamodule.contract.slice_size**2
    stride = max(1, math.ceil(len(dev) * area / MAX_PIXELS))
    batches = (
        datamodule.prepare_batch(move_data_to_device(batch, device), train=False)
        for batch in datamodule.val_dataloader()
    )
    fit = fit_temperature(*collect_logits(module, batches, stride))
    store_temperature(Path(path), fit.temperature)
    prefix = "calibration" if name == "best" else f"calibration_{name}"
    scalars = {f"{prefix}/{k}": v for k, v in asdict(fit).items() if v is not None}
    for logger in loggers:
        logger.log_metrics(scalars, step=trainer.global_step)
    log.info(
        "temperature %.3f fitted on %d dev pixels: NLL %.4f -> %.4f, ECE %s -> %s (stored in %s)",
        fit.temperature,
        fit.pixels,
        fit.nll_before,
        fit.nll_after,
        fit.ece_before,
        fit.ece_after,
        path,
    )
    return fit


def lightning_test(
    options: TrainOptions,
    path: str | None,
    trainer: pl.Trainer,
    module: GlacierSegmenter,
    datamodule: GlacierDataModule,
    rebuild: Callable[[], GlacierSegmenter],
) -> CheckpointTest:
    """Test a checkpoint (or the final weights) once, on one device, with Lightning.

    After a distributed fit (called on rank 0 only, after leaving the process group), a fresh
    single-device Trainer tests it: Lightning's distributed test pads the test set with
    repeated samples.
    """
    tested = module
    loggers = list(trainer.loggers)
    if trainer.world_size == 1:
        results = trainer.test(module, datamodule=datamodule, ckpt_path=path)
    else:
        callbacks = [build(c) for c in options.callbacks]
        tester = single_device_trainer(options.trainer, callbacks, loggers)
        tested = rebuild()
        if path is None:  # nothing checkpointed (fast_dev_run): the final weights
            tested.load_state_dict(module.state_dict())
        results = tester.test(tested, datamodule=datamodule, ckpt_path=path)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    quality = tested.test_uncertainty
    uncertainty = None if quality is None else quality.to_dict()
    return CheckpointTest(path, test=metrics, uncertainty=uncertainty)


def members_test(
    path: str, trainer: pl.Trainer, datamodule: GlacierDataModule, loggers: list[Logger]
) -> CheckpointTest:
    """Test a checkpoint with the test step run outside Lightning (logged as ``test_<name>/``)."""
    device = trainer.strategy.root_device
    module = GlacierSegmenter.load_from_checkpoint(path, map_location=device, weights_only=True)
    batches = (
        datamodule.prepare_batch(move_data_to_device(batch, device), train=False)
        for batch in datamodule.test_dataloader()
    )
    result = ensemble_test_step([module], batches)
    name = Path(path).stem
    scalars = {k.replace("test/", f"test_{name}/", 1): v for k, v in result.metrics.items()}
    for logger in loggers:
        logger.log_metrics(scalars, step=trainer.global_step)
    log.info("%s checkpoint: test mean IoU %.4f", name, result.metrics["test/iou_mean"])
    return CheckpointTest(path, test=result.metrics, uncertainty=result.uncertainty.to_dict())


def test_checkpoints(
    options: TrainOptions,
    trainer: pl.Trainer,
    module: GlacierSegmenter,
    datamodule: GlacierDataModule,
    rebuild: Callable[[], GlacierSegmenter],
    test: bool,
) -> dict[str, CheckpointTest]:
    """Calibrate (``calibrate``) and test (``test``) the checkpoints of the policy, in order.

    ``test``: whether to test (``options.test``, and a test split that is not empty); without,
    the checkpoints are only calibrated.

    Returns:
        Per checkpoint name (``best``, ``last``), what it gave; the reported one first.
    """
    paths = checkpoint_paths(trainer)
    loggers = list(trainer.loggers)
    results: dict[str, CheckpointTest] = {}
    for number, name in enumerate(options.tested):
        path = paths.get(name)
        fit = calibrate(name, path, trainer, datamodule, loggers) if options.calibrate else None
        if not test:
            results[name] = CheckpointTest(path, fit)
        elif number == 0:
            results[name] = lightning_test(options, path, trainer, module, datamodule, rebuild)
        elif path is not None:
            results[name] = members_test(path, trainer, datamodule, loggers)
        else:
            continue
        results[name].calibration = fit
    return results
