"""Repeatable CPU runs: a fixed thread count, and a record of whether ``max_time`` cut a run.

Two runs of the same config on the same machine give the same numbers when every random draw is
seeded (``seed_everything(workers=True)``, :class:`~glacier.data.loading.augment.Augment`'s seed,
the random-window sampler), the kernels are deterministic (``trainer.deterministic``) and the thread
count is fixed: a float reduction split over a different number of threads sums in another order. A
wall-clock limit (``trainer.max_time``) is the one thing seeds cannot fix: where it fires, the
result depends on the machine's load, so it is recorded and reported.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer

from glacier.errors import GlacierInputError

log = logging.getLogger(__name__)


def apply_threads(threads: int | None) -> int:
    """Fix torch's intra-op thread count (``threads: N`` in the train config).

    Args:
        threads: Threads to use; None or 0 keeps torch's default.

    Returns:
        The thread count in effect.

    Raises:
        GlacierInputError: For a negative count.
    """
    if threads is not None and threads < 0:
        raise GlacierInputError(f"threads={threads}: use a positive count, or null for the default")
    if threads:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _timer(trainer: pl.Trainer) -> Timer | None:
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, Timer):
            return callback
    return None


def max_time_fired(trainer: pl.Trainer) -> bool:
    """Whether ``trainer.max_time`` ended fitting before its epoch/step budget was done."""
    timer = _timer(trainer)
    if timer is None or timer._duration is None:
        return False
    remaining = timer.time_remaining("train")
    if remaining is None or remaining > 0:
        return False
    epochs_left = trainer.max_epochs is not None and trainer.current_epoch < trainer.max_epochs
    steps_left = trainer.max_steps not in (None, -1) and trainer.global_step < trainer.max_steps
    return bool(epochs_left or steps_left)


def run_record(trainer: pl.Trainer) -> dict[str, Any]:
    """What ``metrics.json`` records about how fitting ended, with a loud warning if cut short.

    Args:
        trainer: The trainer after ``fit``.

    Returns:
        ``max_time`` (seconds or None), ``max_time_fired``, ``global_step``, ``threads`` and
        ``deterministic``.
    """
    timer = _timer(trainer)
    duration = None if timer is None or timer._duration is None else float(timer._duration)
    fired = max_time_fired(trainer)
    if fired:
        log.warning(
            "max_time (%s s) stopped training after %d epochs / %d steps, before the configured "
            "budget: the result depends on this machine's speed and load and will not repeat",
            duration,
            trainer.current_epoch,
            trainer.global_step,
        )
    return {
        "max_time": duration,
        "max_time_fired": fired,
        "global_step": int(trainer.global_step),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
