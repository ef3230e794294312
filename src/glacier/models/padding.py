"""Inputs of any size through networks that halve their input a fixed number of times."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor


def padded_forward(run: Callable[[Tensor], Tensor], x: Tensor, multiple: int) -> Tensor:
    """Logits of ``run`` for an input of any size.

    The input (B, C, H, W) is padded with zeros at the bottom and right to a multiple of
    ``multiple`` in both dimensions, and the logits are cropped back to (H, W).

    Args:
        run: The network's forward pass on a padded input.
        x: Input (B, C, H, W).
        multiple: What the padded height and width must be a multiple of.

    Returns:
        Logits (B, K, H, W).
    """
    height, width = x.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="constant", value=0.0)
    return run(x)[..., :height, :width]
