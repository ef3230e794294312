"""Turn finished blending sums into output values on the device, then hand them to the host.

Winning class, probabilities (uint8 percent or float32), uncertainty measures and nodata are
computed where the sums are (the GPU when there is one); only the encoded, much smaller arrays
cross to the host, through page-locked buffers and a CUDA event the writer thread waits on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.engine.blending import BlockRows
from glacier.models import measure_maps

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
        uncertainty: (M, rows, W) float32 written uncertainty measures (NaN = nodata), or None.
        measures: (S, rows, W) float32 measures to score (NaN = nodata), or None.
        passes: (P, rows, W) uint8 class map of each MC pass (255 = nodata), or None.
        ready: Event the host must wait on before reading (GPU copies in flight), or None.
    """

    top: int
    classes: np.ndarray
    probs: np.ndarray
    uncertainty: np.ndarray | None
    measures: np.ndarray | None = None
    passes: np.ndarray | None = None
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


def _stack(maps: Sequence[Tensor], invalid: Tensor) -> Tensor | None:
    """(M, rows, W) of the maps, NaN where there is no data (None for no maps)."""
    if not maps:
        return None
    return torch.stack(list(maps)).masked_fill_(invalid, float("nan"))


def pass_classes(per_pass: Tensor, classes: int, invalid: Tensor) -> Tensor:
    """(P, rows, W) uint8 class map of each pass from its (P·K, rows, W) blended sums."""
    passes = per_pass.shape[0] // classes
    maps = [winning_class(per_pass[p * classes : (p + 1) * classes]) for p in range(passes)]
    return torch.stack(maps).masked_fill_(invalid, IGNORE_INDEX)


def encode_block(
    block: BlockRows,
    percent: bool,
    written: Sequence[str] = (),
    scored: Sequence[str] = (),
) -> EncodedRows:
    """Normalize a finished block's sums and encode every output (on the block's device).

    The block is consumed: its tensors are divided in place.

    Args:
        block: Finished rows: weighted sums, weights and validity.
        percent: Probabilities as uint8 percent (else float32).
        written: Measures of ``_uncertainty.tif`` (see :data:`glacier.models.MEASURES`).
        scored: Measures of ``_uncertainty_measures.tif``; the uncalibrated confidence is
            appended when the block holds uncalibrated probabilities.

    Returns:
        The encoded rows; call :meth:`EncodedRows.wait` before reading them.
    """
    invalid = ~block.valid
    # the weights are > 0 and equal across classes: the winner of the sums is the winner
    classes = winning_class(block.stats.probs).masked_fill_(invalid, IGNORE_INDEX)
    inverse = block.weights.clamp_(min=1e-12).reciprocal_()
    stats = block.stats.map(lambda t: t.mul_(inverse))
    maps = measure_maps(stats, list(dict.fromkeys([*written, *scored])), classes)
    uncertainty = _stack([maps[name] for name in written], invalid)
    scores = [maps[name] for name in scored]
    if scored and stats.uncalibrated is not None:
        scores.append(stats.uncalibrated.amax(dim=0))
    measures = _stack(scores, invalid)
    probs = stats.probs
    encoded = to_percent(probs) if percent else probs
    encoded.masked_fill_(invalid, NODATA_PERCENT if percent else float("nan"))
    passes = (
        None
        if block.stats.per_pass is None
        else pass_classes(block.stats.per_pass, probs.shape[0], invalid)
    )
    classes_host, probs_host = (_to_host(t) for t in (classes, encoded))
    extra = [None if t is None else _to_host(t) for t in (uncertainty, measures, passes)]
    ready = None
    if block.probs.device.type == "cuda":
        ready = torch.cuda.Event()
        ready.record()
    return EncodedRows(block.top, classes_host, probs_host, extra[0], extra[1], extra[2], ready)
