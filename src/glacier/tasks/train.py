"""What ``train.py`` does: build data, model, trainer from config; fit; test; record metrics."""

from __future__ import annotations

import logging
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger, WandbLogger

from glacier.data.loading import GlacierDataModule
from glacier.errors import RunInterrupted
from glacier.models import DevCurve, GlacierSegmenter, RandomStates, RequeueBetweenBatches
from glacier.tasks import hydra_entry
from glacier.tasks.config import build
from glacier.tasks.ddp import leave_process_group, prepare_data_once, refuse_sweep_in_every_process
from glacier.tasks.train_checkpoints import (
    CheckpointTest,
    best_score,
    checkpoint_paths,
    test_checkpoints,
)
from glacier.tasks.train_options import ModuleOptions, TrainOptions
from glacier.utils.io import write_json_atomic
from glacier.utils.reproducibility import apply_threads, run_record
from glacier.utils.runtime import default_wandb_offline, tune_malloc

log = logging.getLogger(__name__)


def hydra_choices() -> dict[str, Any]:
    """Config-group choices of the running Hydra job (empty outside Hydra)."""
    if not HydraConfig.initialized():
        return {}
    choices = dict(HydraConfig.get().runtime.choices)
    return {k: v for k, v in choices.items() if not k.startswith("hydra/")}


def sweep_group() -> str | None:
    """A W&B group shared by every job of one multirun (None for single runs).

    Under a sweeper with a study (Optuna) it is the study name, so the jobs of every worker
    that shares the study land in one group; otherwise ``sweep-<sweep folder>``.
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    study = HydraConfig.get().sweeper.get("study_name")
    if study:
        return str(study)
    return f"sweep-{Path(HydraConfig.get().sweep.dir).name}"


def build_loggers(options: TrainOptions) -> list[Logger]:
    """Instantiate the configured loggers; a multirun's W&B runs share one group."""
    loggers: list[Logger] = []
    for name, node in options.loggers:
        kwargs = {}
        if "wandb" in str(name) and node.get("group") is None:
            kwargs["group"] = sweep_group()
        loggers.append(build(node, **kwargs))
    return loggers


def build_module(cfg: DictConfig, datamodule: GlacierDataModule) -> GlacierSegmenter:
    """The LightningModule of a composed ``train`` config (for scripts holding a config)."""
    return segmenter(ModuleOptions.from_config(cfg), datamodule)


def segmenter(options: ModuleOptions, datamodule: GlacierDataModule) -> GlacierSegmenter:
    """Create the LightningModule for the datamodule's channels and classes."""
    return GlacierSegmenter(
        model=deepcopy(options.model),
        loss=deepcopy(options.loss),
        optimizer=deepcopy(options.optimizer),
        scheduler=deepcopy(options.scheduler),
        class_names=datamodule.class_names,
        channel_names=datamodule.channel_names,
        data=datamodule.contract.to_dict(),
        monitor=options.monitor,
        channels_last=options.channels_last,
        tta=options.tta,
        test_mc_samples=options.test_mc_samples,
        test_seed=options.seed,
    )


def build_callbacks(options: TrainOptions) -> list[pl.Callback]:
    """Instantiate the configured callbacks."""
    return [build(c) for c in options.callbacks]


def resumption_callbacks() -> list[pl.Callback]:
    """What every fit has, whatever ``callbacks=`` says: exact resumption after a requeue.

    Random states go into every checkpoint, and SLURM's requeue signal (Lightning saves
    ``hpc_ckpt_<n>.ckpt`` and requeues the job) is taken between training batches.
    """
    return [RandomStates(), RequeueBetweenBatches()]


def run_train(cfg: DictConfig) -> float | None:
    """Fit, calibrate and test the policy's checkpoint(s); write ``metrics.json`` in the run folder.

    Under DDP every rank fits; rank 0 alone preprocesses (the others wait up to
    ``wait_for_data`` seconds), tests and writes ``metrics.json``.

    Args:
        cfg: A composed ``train`` config (checked and typed at once: :class:`TrainOptions`).

    Returns:
        The value of ``cfg.optimized_metric`` (for Optuna sweeps), if logged.
    """
    return train(TrainOptions.from_config(cfg))


def train(options: TrainOptions) -> float | None:
    """:func:`run_train` with its settings checked and typed.

    Returns:
        The value of ``optimized_metric`` (for Optuna sweeps), if logged.
    """
    tune_malloc()
    default_wandb_offline()
    apply_threads(options.threads)
    pl.seed_everything(options.seed, workers=True)
    datamodule: GlacierDataModule = build(options.datamodule, _convert_="all")
    prepare_data_once(datamodule, options.wait_for_data)
    datamodule.setup("fit")
    module = segmenter(options.module, datamodule)
    loggers = build_loggers(options)
    curve = DevCurve(options.module.monitor)  # for metrics.json: the policy's choice on the CV mean
    trainer: pl.Trainer = build(
        options.trainer,
        callbacks=[*build_callbacks(options), *resumption_callbacks(), curve],
        logger=loggers or False,
    )
    refuse_sweep_in_every_process(trainer)
    for logger in loggers:
        logger.log_hyperparams({"config": options.hyperparams, "choices": hydra_choices()})
    untested = empty_test_split(datamodule) if options.test else None
    try:
        fit(trainer, module, datamodule, options.ckpt_path)
        fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        dev_curve = list(curve.points)  # testing a checkpoint restores the curve saved in it
        if trainer.world_size > 1:
            leave_process_group()  # what follows runs on rank 0 alone
        if trainer.is_global_zero:
            test = options.test and untested is None
            tested = test_checkpoints(
                options,
                trainer,
                module,
                datamodule,
                lambda: segmenter(options.module, datamodule),
                test,
            )
            _write_metrics(options, trainer, datamodule, fit_metrics, tested, dev_curve, untested)
    finally:
        _finish_wandb(loggers)
    value = fit_metrics.get(options.optimized_metric or "")
    log.info("Run directory: %s", options.output_dir.resolve())
    if untested is not None:
        log.warning("%s", untested)  # the last line: not a silent "test": {}
    return value


def empty_test_split(datamodule: GlacierDataModule) -> str | None:
    """Why the run cannot be tested (its dataset's test split is empty), or None."""
    if len(datamodule.datasets["test"]):
        return None
    return (
        f"the test split of {datamodule.processed_dir} is empty (0 slices): this run has no "
        "test metrics; give split/ a test share or test region and re-run preprocessing"
    )


def fit(
    trainer: pl.Trainer, module: GlacierSegmenter, datamodule: GlacierDataModule, ckpt: Any
) -> None:
    """``trainer.fit``; Ctrl-C (which Lightning turns into ``exit(1)``) says what was kept.

    Raises:
        RunInterrupted: On SIGINT/SIGTERM, naming the last checkpoint to resume from.
    """
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    except (SystemExit, KeyboardInterrupt, RunInterrupted) as stop:
        if isinstance(stop, SystemExit) and not trainer.interrupted:
            raise
        last = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        callback = trainer.checkpoint_callback
        if isinstance(callback, ModelCheckpoint) and callback.last_model_path:
            last = Path(callback.last_model_path)
        kept = (
            f"kept {last}; resume with the same command and ckpt_path={last}"
            if last.is_file()
            else "no checkpoint was saved yet (the first is written when the first epoch ends)"
        )
        signal_stop = stop if isinstance(stop, RunInterrupted) else KeyboardInterrupt()
        raise RunInterrupted.of(signal_stop, kept) from None


def _write_metrics(
    options: TrainOptions,
    trainer: pl.Trainer,
    datamodule: GlacierDataModule,
    fit_metrics: dict[str, float],
    tested: dict[str, CheckpointTest],
    dev_curve: list[tuple[int, float]],
    untested: str | None = None,
) -> None:
    """Write ``metrics.json``.

    The reported checkpoint's test (``test``, ``test_uncertainty``, ``calibration``), every
    tested checkpoint under ``tests``, the dev curve and the fold.
    """
    reported = next(iter(tested.values()), CheckpointTest(None))
    paths = checkpoint_paths(trainer)
    write_json_atomic(
        options.output_dir / "metrics.json",
        {
            "test": None if untested else (reported.test or {}),
            **({"test_skipped": untested} if untested else {}),
            "test_uncertainty": reported.uncertainty,
            "calibration": reported.to_dict()["calibration"],
            "checkpoint": options.checkpoint,
            "tests": {name: result.to_dict() for name, result in tested.items()},
            "checkpoints": paths,
            "dev_curve": [[epoch, value] for epoch, value in dev_curve],
            "final_fit": fit_metrics,
            "best_checkpoint": paths.get("best"),
            "best_score": best_score(trainer),
            "monitor": options.module.monitor,
            "epochs": trainer.current_epoch,
            **run_record(trainer),
            "data": {
                "processed_dir": str(datamodule.processed_dir),
                "fold": datamodule.fold,
                "batch_size": datamodule.batch_size,
                "folds": datamodule.info.folds,
            },
            "classes": datamodule.class_names,
            "channels": datamodule.channel_names,
            "choices": hydra_choices(),
            "overrides": _overrides(),
            "processes": trainer.world_size,
        },
    )


def _overrides() -> list[str]:
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def _finish_wandb(loggers: list[Logger]) -> None:
    """Close the W&B run so the next job of a multirun starts cleanly, even after a crash."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()


main = hydra_entry("train", run_train)

if __name__ == "__main__":
    main()
