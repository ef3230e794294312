"""Turn finished blending sums into output values on the device, then hand them to the host.

Winning class, probabilities (uint8 percent or float32), MC-dropout uncertainty and nodata are
computed where the sums are (the GPU when there is one); only the encoded, much smaller arrays
cross to the host, through page-locked buffers and a CUDA event the writer thread waits on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.engine.blending import BlockRows

NODATA_PERCENT = 255


def winning_class(sums: Tensor) -> Tensor:
    """Index (uint8) of the largest of ``sums`` along dim 0; ties go to the lower index.

    Branch-free passes per class (argmax over a strided class axis costs 3-10x more on a CPU).
    """
    best = sums[0].clone()
    winner = torch.zeros(best.shape, dtype=torch.uint8, device=sums.device)
    for index in range(1, sums.shape[0]):
        better = torch.gt(sums[index], best)
        # a class that beats every earlier one has a higher index than each of them
        torch.maximum(winner, better.to(torch.uint8) * index, out=winner)
        torch.maximum(best, sums[index], out=best)
    return winner


def pick_class(values: Tensor, classes: Tensor) -> Tensor:
    """``values[classes[i, j], i, j]`` for (K, h, w) ``values`` and (h, w) ``classes``.

    Classes outside ``0..K-1`` (nodata) pick class 0's value.
    """
    picked = values[0].clone()
    for index in range(1, values.shape[0]):
        chosen = classes == index
        picked = torch.where(chosen, values[index], picked)
    return picked


def to_percent(probs: Tensor) -> Tensor:
    """Probabilities in [0, 1] as uint8 percent, rounded half up."""
    return (probs * 100.0 + 0.5).clamp_(0, 100).to(torch.uint8)


@dataclass
class EncodedRows:
    """Output values of ``rows`` scene rows from ``top``, as host arrays.

    Attributes:
        top: First scene row.
        classes: (rows, W) uint8 class map (255 = nodata).
        probs: (K, rows, W) uint8 percent (255 = nodata) or float32 (NaN = nodata).
        uncertainty: (rows, W) float32 MC-dropout spread of the winning class, or None.
        ready: Event the host must wait on before reading (GPU copies in flight), or None.
    """

    top: int
    classes: np.ndarray
    probs: np.ndarray
    uncertainty: np.ndarray | None
    ready: torch.cuda.Event | None = None

    def wait(self) -> None:
        """Block until the arrays hold their values."""
        if self.ready is not None:
            self.ready.synchronize()


def _to_host(tensor: Tensor) -> np.ndarray:
    """A host array of ``tensor``: the same memory on a CPU, a non-blocking pinned copy on a GPU."""
    if tensor.device.type == "cpu":
        return tensor.numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    return host.numpy()


def encode_block(block: BlockRows, percent: bool) -> EncodedRows:
    """Normalize a finished block's sums and encode every output (on the block's device).

    The block is consumed: its tensors are divided in place.

    Args:
        block: Finished rows: weighted sums, weights and validity.
        percent: Probabilities as uint8 percent (else float32).

    Returns:
        The encoded rows; call :meth:`EncodedRows.wait` before reading them.
    """
    invalid = ~block.valid
    # the weights are > 0 and equal across classes: the winner of the sums is the winner
    classes = winning_class(block.probs).masked_fill_(invalid, IGNORE_INDEX)
    inverse = block.weights.clamp_(min=1e-12).reciprocal_()
    probs = block.probs.mul_(inverse)
    encoded = to_percent(probs) if percent else probs
    encoded.masked_fill_(invalid, NODATA_PERCENT if percent else float("nan"))
    spread = None
    if block.variance is not None:
        winner = pick_class(block.variance.mul_(inverse), classes)
        spread = winner.clamp_(min=0).sqrt_().masked_fill_(invalid, float("nan"))
    arrays = [_to_host(t) for t in (classes, encoded)]
    uncertainty = None if spread is None else _to_host(spread)
    ready = None
    if block.probs.device.type == "cuda":
        ready = torch.cuda.Event()
        ready.record()
    return EncodedRows(block.top, arrays[0], arrays[1], uncertainty, ready)
