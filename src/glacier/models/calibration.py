"""Temperature scaling: one scalar T > 0 divides the logits so probabilities mean what they say.

After training, the best checkpoint predicts the dev split once; ``T`` minimizes the negative
log-likelihood of the dev labels under ``softmax(logits / T)`` (LBFGS on ``log T``, so T stays
positive). Dividing by T never changes a single pass's winning class; it makes confident
pixels less (T > 1) or more (T < 1) confident. ``T`` is stored in the checkpoint
(:class:`~glacier.models.segmenter.GlacierSegmenter`'s ``temperature`` buffer) and applied in
every pass of the test step and of ``glacier predict``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glacier.data.contract import IGNORE_INDEX
from glacier.models.uncertainty_metrics import calibration

MAX_PIXELS = 2_000_000  # dev pixels kept for the fit (every n-th valid pixel beyond that)
# T is kept within these bounds: a model no better than chance on dev would otherwise drive T
# towards infinity (every probability 1/K)
TEMPERATURE_BOUNDS = (0.01, 100.0)


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature and what it did to the dev pixels it was fitted on.

    Attributes:
        temperature: The fitted T.
        pixels: Dev pixels used.
        nll_before: Mean negative log-likelihood at T = 1.
        nll_after: At the fitted T.
        ece_before: Expected calibration error at T = 1.
        ece_after: At the fitted T.
    """

    temperature: float
    pixels: int
    nll_before: float
    nll_after: float
    ece_before: float | None
    ece_after: float | None


def collect_logits(
    model: nn.Module, batches: Iterable[dict[str, Tensor]], stride: int = 1
) -> tuple[Tensor, Tensor]:
    """Logits and labels of every ``stride``-th valid pixel of ``batches`` (eval mode).

    Args:
        model: Maps raw (B, C, H, W) batches to logits (B, K, H, W).
        batches: ``{"image", "mask"}`` on the model's device (``IGNORE_INDEX`` = nodata).
        stride: Keep every ``stride``-th valid pixel (bounds memory on large dev splits).

    Returns:
        (N, K) float32 logits and (N,) int64 labels, on the CPU.
    """
    logits, labels = [], []
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                out = model(batch["image"]).float()
                valid = batch["mask"] != IGNORE_INDEX
                picked = out.permute(0, 2, 3, 1)[valid][::stride]
                logits.append(picked.cpu())
                labels.append(batch["mask"][valid][::stride].cpu())
    finally:
        for module, training in modes.items():
            module.training = training
    if not logits:
        return torch.zeros((0, 0)), torch.zeros(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels).long()


def _nll(logits: Tensor, labels: Tensor, temperature: float) -> float:
    return float(F.cross_entropy(logits.double() / temperature, labels))


def ece_at(logits: Tensor, labels: Tensor, temperature: float) -> float | None:
    """Expected calibration error of ``softmax(logits / temperature)`` (None without pixels)."""
    probs = (logits.double() / temperature).softmax(dim=1)
    confidence, winner = probs.max(dim=1)
    return calibration(confidence.numpy(), (winner != labels).numpy()).ece


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 100) -> TemperatureFit:
    """The temperature minimizing the NLL of ``labels`` under ``softmax(logits / T)``.

    Args:
        logits: (N, K) logits.
        labels: (N,) classes.
        max_iter: LBFGS iterations.

    Returns:
        The fit; T = 1 when there are no pixels; T within :data:`TEMPERATURE_BOUNDS`.
    """
    if len(labels) == 0:
        return TemperatureFit(1.0, 0, math.nan, math.nan, None, None)
    data = logits.double()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(data / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    low, high = TEMPERATURE_BOUNDS
    temperature = min(max(float(log_t.detach().exp()), low), high)
    return TemperatureFit(
        temperature=temperature,
        pixels=len(labels),
        nll_before=_nll(logits, labels, 1.0),
        nll_after=_nll(logits, labels, temperature),
        ece_before=ece_at(logits, labels, 1.0),
        ece_after=ece_at(logits, labels, temperature),
    )


def store_temperature(checkpoint: Path, temperature: float) -> None:
    """Write ``temperature`` into a Lightning checkpoint file (atomically, in place)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["state_dict"]["temperature"] = torch.tensor(float(temperature))
    partial = checkpoint.with_name(f".{checkpoint.name}.partial")
    torch.save(state, partial)
    os.replace(partial, checkpoint)
