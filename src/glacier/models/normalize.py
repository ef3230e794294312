"""Normalization (and nodata imputation) as the model's first module, statistics as buffers.

Training, validation, test, the prediction panels and full-scene prediction all pass raw values
through this one module, so there is no second implementation to drift; its statistics are
saved with the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """``(x - mean) / std`` per channel; nodata (NaN, ±inf) becomes 0, the channel mean.

    Args:
        mean: Channel means.
        std: Channel standard deviations (> 0).
    """

    scale: Tensor
    shift: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        scale = 1.0 / torch.tensor(list(std), dtype=torch.float32)
        # (x - mean) / std as one fused multiply-add: x * (1 / std) + (-mean / std)
        self.register_buffer("scale", scale.view(1, -1, 1, 1))
        self.register_buffer("shift", (-torch.tensor(list(mean)) * scale).view(1, -1, 1, 1))

    def forward(self, image: Tensor) -> Tensor:
        """Normalized (B, C, H, W) float image without NaN (memory format kept)."""
        out = torch.addcmul(self.shift.to(image.dtype), image, self.scale.to(image.dtype))
        return without_nodata(out)

    def into(self, image: Tensor, out: Tensor) -> None:
        """Write the normalized (C, H, W) ``image`` into ``out`` (a batch's slot), NaN kept.

        The same arithmetic as :meth:`forward`, element by element, without the copy of the
        raw tile into the batch first; :func:`without_nodata` on the batch finishes it.
        """
        dtype = image.dtype
        torch.addcmul(self.shift[0].to(dtype), image, self.scale[0].to(dtype), out=out)


def without_nodata(image: Tensor) -> Tensor:
    """``image`` with NaN and ±inf (nodata) set to 0, the channel mean once normalized."""
    return torch.nan_to_num_(image, nan=0.0, posinf=0.0, neginf=0.0)


class AfterNormalizer(nn.Module):
    """A model from its normalized input on: ``model.classify`` (see :func:`split_normalizer`).

    Args:
        model: A model whose ``forward`` is ``classify(normalizer(image))``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        """Logits of a normalized batch."""
        classify = cast(Callable[[Tensor], Tensor], self.model.classify)
        return classify(image)


def split_normalizer(model: nn.Module) -> tuple[Normalizer, nn.Module] | None:
    """A model's leading :class:`Normalizer` and the module that takes its output on.

    Known shapes: an ``nn.Sequential`` that starts with a Normalizer, and a model with a
    ``normalizer`` attribute and a ``classify`` method (``forward = classify ∘ normalizer``,
    as :class:`glacier.models.GlacierSegmenter`). The predictor normalizes tiles as it puts
    them into a batch (one pass over the pixels instead of a copy and a normalization).

    Returns:
        ``(normalizer, rest)``, or None for any other model (it normalizes itself).
    """
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[0], Normalizer):
        return model[0], model[1:]
    normalizer = getattr(model, "normalizer", None)
    if isinstance(normalizer, Normalizer) and callable(getattr(model, "classify", None)):
        return normalizer, AfterNormalizer(model)
    return None
