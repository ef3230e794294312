"""Training with several processes (DDP): who preprocesses, who writes, and an exact test.

* Preprocessing runs on rank 0 only; the other ranks wait for the dataset (they may start
  together under ``srun``, before any ``Trainer`` or process group exists).
* Testing runs on rank 0 alone, on one device: a distributed test pads the test set with
  repeated samples (``DistributedSampler``), so its metrics would not be those of the test set.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.plugins.environments import (  # type: ignore[attr-defined]
    LightningEnvironment,
)

from glacier.data.loading import GlacierDataModule
from glacier.errors import GlacierInputError
from glacier.tasks.config import build
from glacier.utils.cluster import is_rank_zero, process_rank, wait_until

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0
# Trainer arguments that make a training config's Trainer a single process on one device,
# whatever cluster environment (SLURM, torchrun) the process runs in.
SINGLE_DEVICE: dict[str, Any] = {
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "sync_batchnorm": False,
}


def prepare_data_once(datamodule: GlacierDataModule, timeout: float) -> None:
    """Preprocess on rank 0; on other ranks wait until the dataset is complete.

    Lightning's own ``prepare_data`` call during ``fit`` is limited to global rank 0 as well
    (``prepare_data_per_node = False``), so no two processes ever preprocess into one folder.

    Args:
        datamodule: The training data.
        timeout: Seconds a rank other than 0 waits before failing.

    Raises:
        GlacierInputError: If the dataset is still incomplete after ``timeout`` seconds.
    """
    datamodule.prepare_data_per_node = False
    if is_rank_zero():
        datamodule.prepare_data()
        return
    preprocessor = datamodule.preprocessor
    if preprocessor is None:
        return
    where = datamodule.processed_dir

    def missing() -> list[str]:
        return [] if preprocessor.is_complete() else [str(where)]

    if wait_until(missing, timeout, POLL_SECONDS, f"rank 0 to preprocess {where}"):
        raise GlacierInputError(
            f"rank {process_rank()}: the processed dataset {where} is still incomplete after "
            f"{timeout:g} s (rank 0 preprocesses it: see its log). Preprocess before training "
            "(`glacier preprocess` with the same data/filter/split), or raise wait_for_data="
        )


def refuse_sweep_in_every_process(trainer: pl.Trainer) -> None:
    """Refuse a sweep job whose processes would each run the whole sweep.

    Lightning's ``ddp`` launcher on one machine starts its other processes by re-running the
    command line, and ``srun``/``torchrun`` start every process with it: inside a multirun
    (``-m``, ``hparams_search=``) that command is the whole sweep, so each process would run
    its own sweep (and its own Optuna trials). Only the submitit SLURM launcher starts the
    processes of one job of the sweep (``hydra.launcher.tasks_per_node``).

    Raises:
        GlacierInputError: With the ways that work instead.
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    strategy: Any = trainer.strategy
    processes = int(getattr(strategy, "num_processes", 1)) * int(getattr(strategy, "num_nodes", 1))
    environment = getattr(strategy, "cluster_environment", None)
    external = environment is not None and environment.creates_processes_externally
    if processes <= 1 or (external and os.environ.get("SUBMITIT_EXECUTOR") == "slurm"):
        return
    raise GlacierInputError(
        f"a sweep (-m or hparams_search=) with {processes} training processes per job: each "
        "process would run the whole sweep. Submit the sweep with hydra/launcher=submitit_slurm "
        "hydra.launcher.tasks_per_node=DEVICES hydra.launcher.gpus_per_node=DEVICES (SLURM "
        "starts the processes of each job), or train one configuration per command"
    )


def leave_process_group() -> None:
    """Destroy the default process group after ``fit``, so nothing later waits on other ranks.

    Metrics (torchmetrics) sync whenever a process group exists; rank 0's single-process test
    would then wait forever for ranks that have returned.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def single_device_trainer(
    trainer_cfg: DictConfig, callbacks: list[pl.Callback], loggers: list[Any]
) -> pl.Trainer:
    """The configured Trainer as one process on one device (for testing after DDP).

    Args:
        trainer_cfg: The ``trainer`` config (accelerator, precision, limits are kept).
        callbacks: Callbacks of the new Trainer.
        loggers: Loggers (the fit's loggers, so test metrics join the same runs).

    Returns:
        The Trainer.
    """
    trainer: pl.Trainer = build(
        trainer_cfg,
        **SINGLE_DEVICE,
        plugins=[LightningEnvironment()],  # not SLURM's or torchrun's: no other process
        callbacks=callbacks,
        logger=loggers or False,
    )
    return trainer
