"""What ``train.py`` does: build data, model, trainer from config; fit; test; record metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
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
    tested_names,
)
from glacier.utils.io import write_json_atomic
from glacier.utils.reproducibility import apply_threads, run_record
from glacier.utils.runtime import default_wandb_offline, tune_malloc

log = logging.getLogger(__name__)


def _container(node: Any) -> Any:
    """Resolve a config node into plain Python containers."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


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


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """Instantiate the configured loggers; a multirun's W&B runs share one group."""
    loggers: list[Logger] = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        kwargs = {}
        if "wandb" in str(name) and node.get("group") is None:
            kwargs["group"] = sweep_group()
        loggers.append(build(node, **kwargs))
    return loggers


def build_module(cfg: DictConfig, datamodule: GlacierDataModule) -> GlacierSegmenter:
    """Create the LightningModule for the datamodule's channels and classes."""
    return GlacierSegmenter(
        model=_container(cfg.model),
        loss=_container(cfg.loss),
        optimizer=_container(cfg.optimizer),
        scheduler=_container(cfg.get("scheduler")),
        class_names=datamodule.class_names,
        channel_names=datamodule.channel_names,
        data=datamodule.contract.to_dict(),
        monitor=cfg.monitor,
        channels_last=cfg.channels_last,
        tta=bool(cfg.get("tta", False)),
        test_mc_samples=int(cfg.get("test_mc_samples", 0)),
        test_seed=int(cfg.seed),
    )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Instantiate the configured callbacks."""
    return [build(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


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
        cfg: A composed ``train`` config.

    Returns:
        The value of ``cfg.optimized_metric`` (for Optuna sweeps), if logged.
    """
    tune_malloc()
    default_wandb_offline()
    apply_threads(cfg.get("threads"))
    tested_names(cfg)  # an impossible checkpoint policy fails before the fit
    pl.seed_everything(cfg.seed, workers=True)
    datamodule: GlacierDataModule = build(cfg.datamodule, _convert_="all")
    prepare_data_once(datamodule, float(cfg.get("wait_for_data", 3600)))
    datamodule.setup("fit")
    module = build_module(cfg, datamodule)
    loggers = build_loggers(cfg)
    curve = DevCurve(str(cfg.monitor))  # for metrics.json: the policy's choice on the CV mean
    trainer: pl.Trainer = build(
        cfg.trainer,
        callbacks=[*build_callbacks(cfg), *resumption_callbacks(), curve],
        logger=loggers or False,
    )
    refuse_sweep_in_every_process(trainer)
    for logger in loggers:
        logger.log_hyperparams({"config": _container(cfg), "choices": hydra_choices()})
    untested = empty_test_split(datamodule) if cfg.get("test") else None
    try:
        fit(trainer, module, datamodule, cfg.get("ckpt_path"))
        fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        dev_curve = list(curve.points)  # testing a checkpoint restores the curve saved in it
        if trainer.world_size > 1:
            leave_process_group()  # what follows runs on rank 0 alone
        if trainer.is_global_zero:
            test = bool(cfg.get("test")) and untested is None
            tested = test_checkpoints(
                cfg, trainer, module, datamodule, lambda: build_module(cfg, datamodule), test
            )
            _write_metrics(cfg, trainer, datamodule, fit_metrics, tested, dev_curve, untested)
    finally:
        _finish_wandb(loggers)
    value = fit_metrics.get(cfg.get("optimized_metric") or "")
    log.info("Run directory: %s", Path(cfg.paths.output_dir).resolve())
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
    cfg: DictConfig,
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
        Path(cfg.paths.output_dir) / "metrics.json",
        {
            "test": None if untested else (reported.test or {}),
            **({"test_skipped": untested} if untested else {}),
            "test_uncertainty": reported.uncertainty,
            "calibration": reported.to_dict()["calibration"],
            "checkpoint": str(cfg.get("checkpoint", "best")),
            "tests": {name: result.to_dict() for name, result in tested.items()},
            "checkpoints": paths,
            "dev_curve": [[epoch, value] for epoch, value in dev_curve],
            "final_fit": fit_metrics,
            "best_checkpoint": paths.get("best"),
            "best_score": best_score(trainer),
            "monitor": cfg.monitor,
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
