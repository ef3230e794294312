"""Exact resumption after a SLURM requeue: random states in checkpoints, the signal between batches.

On SLURM, Lightning's cluster environment (``SLURMEnvironment``, ``auto_requeue=True``) handles
the requeue signal (SIGUSR1; ``#SBATCH --signal=USR1@120``): it saves ``hpc_ckpt_<n>.ckpt`` in the
run folder and calls ``scontrol requeue``; the requeued job finds that file in the same folder and
resumes from it. Two callbacks make the resumed run train exactly as the uninterrupted one:

* :class:`RequeueBetweenBatches` holds the signal until the current training batch has ended and
  then hands it to Lightning's handler. Python runs a handler between any two bytecodes, e.g.
  half way through an optimizer step, which would save a state no uninterrupted run ever had.
* :class:`RandomStates` keeps the global random states (torch's on the CPU and on the process's
  GPU, NumPy's, Python's) in every checkpoint and restores them just before the first training
  batch of the resumed run, so dropout draws the masks it would have drawn.

The data side (the training order, the augmentation's generator) resumes with the data module
(:class:`~glacier.data.loading.ResumableLoader`).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)
Handler = Callable[[int, FrameType | None], Any]


def global_random_states() -> dict[str, Any]:
    """The global random states (torch CPU and current GPU, NumPy, Python) as plain values.

    Returns:
        Tensors, ints and lists only: a checkpoint holding them loads with ``weights_only``.
    """
    numpy_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        # this process's device only: reading every GPU's state would open a context on each
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [],
        "numpy_key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
        "numpy_pos": int(numpy_state["state"]["pos"]),
        "numpy_gauss": [int(numpy_state["has_gauss"]), float(numpy_state["gauss"])],
        "python": [version, list(internal), gauss],
    }


def set_global_random_states(states: dict[str, Any]) -> None:
    """Restore :func:`global_random_states` (the CUDA state on this process's current GPU)."""
    torch.set_rng_state(states["torch"])
    cuda = list(states.get("cuda") or [])
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda[0])
    has_gauss, gauss = states["numpy_gauss"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {
                "key": states["numpy_key"].numpy().astype(np.uint32),
                "pos": states["numpy_pos"],
            },
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        }
    )
    version, internal, python_gauss = states["python"]
    random.setstate((version, tuple(internal), python_gauss))


class RandomStates(pl.Callback):
    """Keep the global random states in checkpoints; restore them before the next training batch.

    They are restored at the first training epoch or batch start after loading (whichever comes
    first), not while loading: between the two, a resumed run validates once more (sanity check)
    and builds its loaders, which an uninterrupted run did not do at that point.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The states at the moment the checkpoint is written."""
        return global_random_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Hold the states until training goes on."""
        self._pending = dict(state_dict)

    def _restore(self) -> None:
        if self._pending is not None:
            set_global_random_states(self._pending)
            self._pending = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A run resumed at an epoch boundary: restore before the epoch draws its order."""
        self._restore()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """A run resumed inside an epoch: restore before the batch's dropout draws."""
        self._restore()


class RequeueBetweenBatches(pl.Callback):
    """Pass a signal to its handler at the end of a training batch, not in the middle of one.

    At the start of training it takes over ``signum``'s handler, if one is set (Lightning's SLURM
    auto-requeue handler for SIGUSR1); the signal then only marks the request, and the handler
    runs after the batch in progress (the first batch end after the signal, the same one in
    every process of a DDP run).

    Args:
        signum: The signal (SLURM's requeue signal as Lightning expects it: SIGUSR1).
    """

    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self.signum = signal.Signals(signum)
        self._handler: Handler | None = None
        self._requested = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Take over the signal's handler (only the main thread may set one)."""
        handler = signal.getsignal(self.signum)
        if not callable(handler) or threading.current_thread() is not threading.main_thread():
            return
        self._handler = handler
        signal.signal(self.signum, self._request)

    def _request(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s received: handled at the end of the current training batch", self.signum.name)
        self._requested = True

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Run the held handler now that the batch is complete (on every rank at once).

        Under DDP the signal reaches each process at a slightly different moment, and the
        handler saves a checkpoint, which all processes must do together: any process's
        request makes all of them hand over at this batch end.
        """
        if self._handler is None:
            return
        if trainer.strategy.reduce_boolean_decision(self._requested, all=False):
            self._requested = False
            log.info("%s: passing it on after training batch %d", self.signum.name, batch_idx)
            self._handler(self.signum, None)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Give the signal back to its handler."""
        if self._handler is not None and signal.getsignal(self.signum) == self._request:
            signal.signal(self.signum, self._handler)
        self._handler = None
