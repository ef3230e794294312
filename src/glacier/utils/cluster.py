"""Several processes, one run: ranks, a shared run folder under SLURM, and waiting for files.

Before the Lightning ``Trainer`` exists (config composition, preprocessing), a process learns
its rank from its launcher's environment: ``RANK`` (torchrun), ``LOCAL_RANK``/``NODE_RANK``
(the children Lightning starts on one machine) or ``SLURM_PROCID`` (``srun``). Rank 0 writes
what a run writes once (``.hydra/``, ``metrics.json``, the processed dataset); the others wait.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

log = logging.getLogger(__name__)
Missing = TypeVar("Missing")


def process_rank(environ: Mapping[str, str] | None = None) -> str:
    """This process's rank as its launcher set it: ``"0"`` alone or for the first process.

    Args:
        environ: Environment to read (default: ``os.environ``).

    Returns:
        The global rank (``"3"``), or ``"NODE.LOCAL"`` for a Lightning child on another node,
        where the global rank is not known before the ``Trainer`` exists.
    """
    env = os.environ if environ is None else environ
    if env.get("RANK"):
        return str(int(env["RANK"]))
    node = int(env.get("NODE_RANK") or env.get("GROUP_RANK") or 0)
    if env.get("LOCAL_RANK") or node:  # checked before SLURM_PROCID: `srun --pty bash` sets it
        local = int(env.get("LOCAL_RANK") or 0)
        return str(local) if node == 0 else f"{node}.{local}"
    return str(int(env.get("SLURM_PROCID") or 0))


def is_rank_zero(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is rank 0 (or alone); see :func:`process_rank`."""
    return process_rank(environ) == "0"


def on_rank_zero(value: str) -> str | None:
    """``value`` on rank 0, None elsewhere (resolver ``${glacier_rank_zero:VALUE}``).

    ``hydra.output_subdir: ${glacier_rank_zero:.hydra}`` lets only rank 0 write ``.hydra/``.
    """
    return value if is_rank_zero() else None


def rank_name(name: str) -> str:
    """``name`` on rank 0, ``name_rankN`` elsewhere (resolver ``${glacier_rank_name:NAME}``).

    As ``hydra.job.name`` it gives every process of an ``srun`` step its own log file.
    """
    rank = process_rank()
    return name if rank == "0" else f"{name}_rank{rank}"


def run_id(default: str, environ: Mapping[str, str] | None = None) -> str:
    """A run folder name that every task of one multi-task ``srun`` step agrees on.

    Each ``srun`` task composes its config on its own, so a timestamp would differ between
    them; inside a step of several tasks the name is ``slurm-JOB.STEP`` instead. Single
    processes (including ``sbatch`` scripts without ``srun`` and ``srun --pty bash``) keep
    ``default``. Resolver: ``${glacier_run_id:${now:%Y-%m-%d_%H-%M-%S}}``.

    Args:
        default: The name outside multi-task SLURM steps (a timestamp).
        environ: Environment to read (default: ``os.environ``).

    Returns:
        The folder name.
    """
    env = os.environ if environ is None else environ
    job, step = env.get("SLURM_JOB_ID"), env.get("SLURM_STEP_ID")
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1)
    if job and step is not None and tasks > 1:
        return f"slurm-{job}.{step}"
    return default


def wait_until(
    missing: Callable[[], Sequence[Missing]],
    timeout: float,
    poll: float,
    what: str,
) -> Sequence[Missing]:
    """Call ``missing()`` until it returns nothing or ``timeout`` seconds have passed.

    Args:
        missing: What is still missing (empty when done).
        timeout: Seconds to wait at most (0: check once).
        poll: Seconds between checks.
        what: What is awaited, for the log.

    Returns:
        What is still missing at the end (empty on success).
    """
    deadline = time.monotonic() + max(0.0, timeout)
    left = missing()
    announced = False
    while left and time.monotonic() < deadline:
        if not announced:
            log.info("waiting up to %.0f s for %s (%d missing)", timeout, what, len(left))
            announced = True
        time.sleep(max(0.01, min(poll, deadline - time.monotonic())))
        left = missing()
    return left
