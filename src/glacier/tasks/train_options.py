"""``glacier train``'s settings: the composed config turned into one typed object, checked once.

:meth:`TrainOptions.from_config` is the only place that reads the ``train`` config; the
checkpoint policy is checked there, before anything is built, and the rest of the task gets
typed values. The nodes Hydra instantiates (datamodule, trainer, loggers, callbacks) stay
config nodes, built where they were built before; the model, loss, optimizer and scheduler
become the plain dicts the LightningModule stores in its checkpoints.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from glacier.errors import GlacierConfigError

POLICIES = {"best": ("best",), "last": ("last",), "cv": ("best", "last")}
"""Checkpoint policies: the checkpoints each calibrates and tests, the reported one first."""
CALLBACK_OF = {"best": "model_checkpoint", "last": "last_checkpoint"}
"""The callback (``callbacks/default.yaml``) that writes each checkpoint."""


def tested_names(policy: str, callbacks: Collection[str]) -> tuple[str, ...]:
    """The checkpoints the ``checkpoint`` policy tests, the reported one first.

    Args:
        policy: ``checkpoint=``.
        callbacks: The names of the configured callbacks (those set).

    Raises:
        GlacierConfigError: For an unknown policy, or one whose checkpoint callback is off.
    """
    if policy not in POLICIES:
        raise GlacierConfigError(f"checkpoint={policy!r}: one of {sorted(POLICIES)}")
    for name in POLICIES[policy]:
        if name == "last" and CALLBACK_OF[name] not in callbacks:
            raise GlacierConfigError(
                f"checkpoint={policy} needs last.ckpt: keep callbacks.{CALLBACK_OF[name]} "
                "(callbacks=default)"
            )
    return POLICIES[policy]


def _container(node: Any) -> Any:
    """Resolve a config node into plain Python containers."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


@dataclass(frozen=True)
class ModuleOptions:
    """What the LightningModule is made of (``model``, ``loss``, ``optimizer``... of ``train``).

    Attributes:
        model: The ``model`` config as a plain dict.
        loss: The ``loss`` config as a plain dict.
        optimizer: The ``optimizer`` config as a plain dict.
        scheduler: The ``scheduler`` config as a plain dict (None: none).
        monitor: The dev metric the best checkpoint is chosen on.
        channels_last: Channels-last memory format for the network.
        tta: Test step: average over the 8 dihedral views.
        test_mc_samples: Test step: MC-dropout passes per view.
        seed: Seeds the test step's MC draws.
    """

    model: dict[str, Any]
    loss: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    monitor: str
    channels_last: bool
    tta: bool
    test_mc_samples: int
    seed: int

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ModuleOptions:
        """The module's part of a composed ``train`` config."""
        return cls(
            model=_container(cfg.model),
            loss=_container(cfg.loss),
            optimizer=_container(cfg.optimizer),
            scheduler=_container(cfg.get("scheduler")),
            monitor=str(cfg.monitor),
            channels_last=bool(cfg.channels_last),
            tta=bool(cfg.get("tta", False)),
            test_mc_samples=int(cfg.get("test_mc_samples", 0)),
            seed=int(cfg.seed),
        )


@dataclass(frozen=True)
class TrainOptions:
    """Every setting of one ``glacier train`` call (the keys of ``configs/train.yaml``).

    Attributes:
        module: What the LightningModule is made of.
        seed: Seeds everything.
        threads: Torch intra-op threads (None: torch's default).
        wait_for_data: Seconds DDP ranks other than 0 wait for rank 0 to preprocess.
        ckpt_path: A checkpoint to resume from (None: a fresh fit).
        test: Test the policy's checkpoint(s) after fitting.
        calibrate: Fit their temperature on dev (stored in them).
        checkpoint: The checkpoint policy (``best``, ``last``, ``cv``).
        tested: The checkpoints the policy tests, the reported one first.
        optimized_metric: The metric returned to a sweeper (None: none).
        output_dir: The run folder (``metrics.json`` goes there).
        datamodule: The ``datamodule`` node (built by Hydra).
        trainer: The ``trainer`` node (built by Hydra).
        loggers: The ``logger`` nodes by name (those set).
        callbacks: The ``callbacks`` nodes (those set).
        hyperparams: The whole config, resolved, as the loggers record it (None: no logger).
    """

    module: ModuleOptions
    seed: int
    threads: int | None
    wait_for_data: float
    ckpt_path: str | None
    test: bool
    calibrate: bool
    checkpoint: str
    tested: tuple[str, ...]
    optimized_metric: str | None
    output_dir: Path
    datamodule: Any
    trainer: Any
    loggers: tuple[tuple[str, Any], ...]
    callbacks: tuple[Any, ...]
    hyperparams: dict[str, Any] | None

    @classmethod
    def from_config(cls, cfg: DictConfig) -> TrainOptions:
        """Check a composed ``train`` config (the checkpoint policy) and type it.

        Raises:
            GlacierConfigError: For an unknown policy, or one whose checkpoint callback is off.
        """
        policy = str(cfg.get("checkpoint", "best"))
        callbacks = cfg.get("callbacks") or {}
        names = {str(name) for name, node in callbacks.items() if node is not None}
        tested = tested_names(policy, names)  # fails before anything is built
        loggers = tuple(
            (str(name), node)
            for name, node in (cfg.get("logger") or {}).items()
            if node is not None
        )
        threads = cfg.get("threads")
        return cls(
            module=ModuleOptions.from_config(cfg),
            seed=int(cfg.seed),
            threads=None if threads is None else int(threads),
            wait_for_data=float(cfg.get("wait_for_data", 3600)),
            ckpt_path=None if cfg.get("ckpt_path") is None else str(cfg.ckpt_path),
            test=bool(cfg.get("test")),
            calibrate=bool(cfg.get("calibrate")),
            checkpoint=policy,
            tested=tested,
            optimized_metric=cfg.get("optimized_metric") or None,
            output_dir=Path(cfg.paths.output_dir),
            datamodule=cfg.datamodule,
            trainer=cfg.trainer,
            loggers=loggers,
            callbacks=tuple(c for c in callbacks.values() if c is not None),
            hyperparams=_container(cfg) if loggers else None,
        )
