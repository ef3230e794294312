"""What each command does, in one shape: ``run(cfg)`` (plain, testable) and ``main()`` (Hydra).

``glacier preprocess|train|predict|report`` (see :mod:`glacier.cli`), ``python train.py`` and
``python -m glacier.tasks.train`` all reach the same ``main``. Configs ship inside the package
(``glacier/configs``); users add their own folders with ``hydra.searchpath=[file://DIR]``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import TypeVar

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from glacier.errors import (
    GlacierInputError,
    RunInterrupted,
    environment_message,
    one_line,
)
from glacier.tasks.config import register_resolvers
from glacier.utils.signals import EXIT_SIGNAL_BASE, raise_on_sigterm

__all__ = [
    "CONFIG_PATH",
    "EXIT_BAD_INPUT",
    "EXIT_ENVIRONMENT",
    "failure_line",
    "hydra_entry",
    "run_task",
]

CONFIG_PATH = "pkg://glacier.configs"
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 1  # the machine: disk full, read-only folder, a missing file behind a VRT
UNCHANGED = "earlier outputs are unchanged; re-run the same command to continue"
log = logging.getLogger(__name__)
Result = TypeVar("Result")
# Our hydra/launcher/{joblib,submitit_local,submitit_slurm}.yaml come first on the search path,
# so they replace the launcher plugins' configs of the same names. Hydra 1.3 still validates them
# against those typed schemas (a misspelled key or a wrong type fails) and warns that this
# "automatic schema matching" will go; the files name their _target_ and every key, so they
# work without it too.
register_resolvers()
warnings.filterwarnings(
    "ignore",
    message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema",
    category=UserWarning,
)


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def failure_line(error: BaseException) -> tuple[int, str]:
    """The exit status and the one line that end a task stopped by ``error``.

    Args:
        error: What stopped it.

    Returns:
        2 and ``error: <file or key>: <problem>; <what to do>`` for bad input; 1 and
        ``error: <file>: <cause>; <what to do>`` for the machine (any :class:`OSError`: disk
        full, read-only folder, a missing file behind a VRT) and for anything unexpected;
        128 + the signal and ``interrupted by SIGINT: <what was kept>`` for SIGINT/SIGTERM.
    """
    if isinstance(error, GlacierInputError):
        return EXIT_BAD_INPUT, f"error: {one_line(error)}"
    if isinstance(error, KeyboardInterrupt | RunInterrupted):
        stop = RunInterrupted.of(error, error.kept if isinstance(error, RunInterrupted) else "")
        return EXIT_SIGNAL_BASE + stop.signum, (
            f"interrupted by {stop.signal_name}: {stop.kept or UNCHANGED}"
        )
    if isinstance(error, OSError):
        return EXIT_ENVIRONMENT, f"error: {environment_message(error)}"
    return EXIT_ENVIRONMENT, (
        f"error: {type(error).__name__}: {one_line(error)} (unexpected: HYDRA_FULL_ERROR=1 "
        "shows where it happened; please report it)"
    )


def run_task(run: Callable[[DictConfig], Result], cfg: DictConfig) -> Result:
    """Run a task; any failure ends it with one line on stderr (see :func:`failure_line`).

    The line names the file or key and the problem, without Hydra's traceback; set
    ``HYDRA_FULL_ERROR=1`` for the full trace. SIGTERM stops the task as Ctrl-C does, so its
    clean-ups run. In a multirun the error is re-raised so the sweep records the failed job.

    Args:
        run: The task's plain function.
        cfg: The composed config.

    Returns:
        What ``run`` returns.
    """
    raise_on_sigterm()
    try:
        return run(cfg)
    except SystemExit:
        raise
    except BaseException as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or _multirun():
            raise
        status, line = failure_line(error)
        task = cfg.get("task_name", "glacier")
        print(f"glacier {task}: {line}", file=sys.stderr)
        raise SystemExit(status) from None


def hydra_entry(
    config_name: str, run: Callable[[DictConfig], Result]
) -> Callable[[], Result | None]:
    """Wrap ``run`` as a Hydra entry point reading the packaged ``config_name.yaml``.

    Args:
        config_name: Entry config (``train``, ``predict``, ...).
        run: The task's plain function.

    Returns:
        A function that parses ``sys.argv`` as Hydra overrides and runs the task.
    """

    def task(cfg: DictConfig) -> Result:
        return run_task(run, cfg)

    entry: Callable[[], Result | None] = hydra.main(
        version_base="1.3", config_path=CONFIG_PATH, config_name=config_name
    )(task)
    return entry
