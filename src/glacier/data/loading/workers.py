"""How many loader workers and training processes share this machine's CPUs and RAM."""

from __future__ import annotations

import os

MAX_AUTO_WORKERS = 16


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; all CPUs where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def node_ranks() -> int:
    """Training processes on this machine: ``LOCAL_WORLD_SIZE`` or ``SLURM_NTASKS_PER_NODE``."""
    env = os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("SLURM_NTASKS_PER_NODE") or "1"
    return max(1, int(env.split("(")[0]))


def auto_workers(cpus: int | None = None, ranks_per_node: int | None = None) -> int:
    """Loader workers for this process: 0 with two CPUs or fewer per rank, else CPUs - 1.

    With ≤ 2 CPUs the training step already uses every core and a worker only steals them
    (measured in ``benchmarks/``: the main process reads a 512² sample in a few ms).

    Args:
        cpus: CPUs available to this process (default: its affinity mask).
        ranks_per_node: Training processes sharing those CPUs (default: :func:`node_ranks`).

    Returns:
        The number of worker processes.
    """
    cpus = available_cpus() if cpus is None else cpus
    ranks = node_ranks() if ranks_per_node is None else ranks_per_node
    per_rank = cpus // ranks
    return 0 if per_rank <= 2 else min(per_rank - 1, MAX_AUTO_WORKERS)
