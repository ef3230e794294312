"""Normalization (and nodata imputation) as the model's first module, statistics as buffers.

Training, validation, test, the prediction panels and full-scene prediction all pass raw values
through this one module, so there is no second implementation to drift; its statistics are
saved with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        return torch.nan_to_num_(out, nan=0.0, posinf=0.0, neginf=0.0)
