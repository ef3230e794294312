"""Segmentation losses on logits (B, K, H, W) and targets (B, H, W) with 255 = ignore."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glacier.data.contract import BACKGROUND, IGNORE_INDEX
from glacier.errors import GlacierInputError

log = logging.getLogger(__name__)


class _WeightedLoss(nn.Module):
    """Holds optional per-class weights (background first) as a buffer."""

    weight: Tensor | None

    def __init__(self, class_weights: Sequence[float] | None, ignore_index: int) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        weights = (
            None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        )
        self.register_buffer("weight", weights, persistent=False)

    def class_weight(self, classes: int) -> Tensor | None:
        """Weights for ``classes`` outputs, checked against the logits."""
        if self.weight is not None and len(self.weight) != classes:
            raise GlacierInputError(
                f"loss.class_weights has {len(self.weight)} values but the model has {classes} "
                "outputs (background + classes)"
            )
        return self.weight


class DiceLoss(_WeightedLoss):
    """Weighted multi-class soft dice with label smoothing (the predecessor's loss).

    ``loss = Σ_k w_k (1 - dice_k) / Σ_k w_k`` with softmax probabilities against one-hot targets
    smoothed to ``onehot (1 - ε) + ε / K``; ignored pixels count in neither sum.

    Args:
        class_weights: Weight per output (background first); None = equal.
        label_smoothing: ε.
        ignore_index: Target value to ignore.
        smooth: Additive smoothing of numerator and denominator.
    """

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        smooth: float = 1.0,
    ) -> None:
        super().__init__(class_weights, ignore_index)
        self.label_smoothing = label_smoothing
        self.smooth = smooth

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss for a batch."""
        classes = logits.shape[1]
        weight = self.class_weight(classes)
        valid = (target != self.ignore_index).unsqueeze(1).to(logits.dtype)
        probs = logits.softmax(dim=1) * valid
        onehot = F.one_hot(torch.where(valid[:, 0] > 0, target, 0).long(), classes)
        onehot = onehot.permute(0, 3, 1, 2).to(logits.dtype)
        eps = self.label_smoothing
        onehot = (onehot * (1 - eps) + eps / classes) * valid
        dims = (0, 2, 3)
        intersection = (probs * onehot).sum(dims)
        total = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * intersection + self.smooth) / (total + self.smooth)
        per_class = 1 - dice
        if valid.sum() == 0:
            return (logits * 0).sum()
        if weight is None:
            return per_class.mean()
        return (per_class * weight).sum() / weight.sum()


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy with class weights, label smoothing and ignored pixels.

    Args:
        class_weights: Weight per output (background first); None = equal.
        label_smoothing: Label smoothing ε.
        ignore_index: Target value to ignore.
    """

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__(class_weights, ignore_index)
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss for a batch (0 with gradients when every pixel is ignored)."""
        if not (target != self.ignore_index).any():
            return (logits * 0).sum()
        return F.cross_entropy(
            logits,
            target.long(),
            weight=self.class_weight(logits.shape[1]),
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


class FocalLoss(_WeightedLoss):
    """Focal loss ``-(1 - p_t)^γ log p_t`` (optionally class-weighted), mean over valid pixels.

    Args:
        gamma: Focusing parameter (0 = cross-entropy).
        class_weights: Weight per output (background first); None = equal.
        ignore_index: Target value to ignore.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        class_weights: Sequence[float] | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__(class_weights, ignore_index)
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss for a batch."""
        weight = self.class_weight(logits.shape[1])
        valid = target != self.ignore_index
        if not valid.any():
            return (logits * 0).sum()
        safe = torch.where(valid, target, 0).long()
        log_p = logits.log_softmax(dim=1).gather(1, safe.unsqueeze(1))[:, 0]
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if weight is not None:
            w = weight[safe]
            return (loss * w)[valid].sum() / w[valid].sum()
        return loss[valid].mean()


class DiceCELoss(nn.Module):
    """``dice_weight · dice + ce_weight · cross-entropy``.

    Args:
        dice_weight: Weight of the dice term.
        ce_weight: Weight of the cross-entropy term.
        class_weights: Weight per output (background first) for both terms.
        label_smoothing: Label smoothing for both terms.
        ignore_index: Target value to ignore.
    """

    def __init__(
        self,
        dice_weight: float = 0.5,
        ce_weight: float = 0.5,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.dice = DiceLoss(class_weights, label_smoothing, ignore_index)
        self.ce = CrossEntropyLoss(class_weights, label_smoothing, ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss for a batch."""
        dice: Tensor = self.dice(logits, target)
        ce: Tensor = self.ce(logits, target)
        return self.dice_weight * dice + self.ce_weight * ce


def ordered_class_weights(
    weights: Mapping[str, float] | Sequence[float] | None,
    class_names: Sequence[str],
    known_classes: Sequence[str],
) -> list[float] | None:
    """Turn loss class weights given by name into a list in output-channel order.

    Args:
        weights: ``{class: weight}`` (``background`` included), a list in channel order, or None.
        class_names: Selected classes (output channels 1..K-1).
        known_classes: Every class of the dataset (names outside the selection are ignored).

    Returns:
        Weights for ``[background, *class_names]`` (missing names weigh 1.0), or None.

    Raises:
        GlacierInputError: For a list of the wrong length.
    """
    if weights is None:
        return None
    order = [BACKGROUND, *class_names]
    if not isinstance(weights, Mapping):
        if len(weights) != len(order):
            raise GlacierInputError(f"loss.class_weights has {len(weights)} values for {order}")
        return [float(w) for w in weights]
    unknown = [name for name in weights if name not in (BACKGROUND, *known_classes)]
    if unknown:
        log.warning(
            "loss.class_weights: %s are not classes of this dataset %s; ignored",
            unknown,
            list(known_classes),
        )
    return [float(weights.get(name, 1.0)) for name in order]
