"""Models: networks, losses, metrics, MC dropout, TTA, and the LightningModule.

Our dropout U-Net and smp architectures, the segmentation losses and metrics, MC dropout and
test-time augmentation, and :class:`GlacierSegmenter` with its training callbacks.

Names load on first use (PEP 562), so code that needs only a loss or the metrics does not pay
for importing PyTorch Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glacier.models.callbacks import PredictionPanels, WeightEMA
    from glacier.models.losses import CrossEntropyLoss, DiceCELoss, DiceLoss, FocalLoss
    from glacier.models.mc_dropout import has_dropout, mc_dropout_moments, mc_dropout_sampling
    from glacier.models.metrics import METRICS, confusion_matrix, metrics_from_confusion
    from glacier.models.normalize import Normalizer
    from glacier.models.requeue import RandomStates, RequeueBetweenBatches
    from glacier.models.segmenter import GlacierSegmenter
    from glacier.models.smp_model import SmpSegmentationModel
    from glacier.models.tta import apply_view, tta_codes, tta_probabilities, undo_view
    from glacier.models.unet import DropoutUNet

_HOMES = {
    "PredictionPanels": "callbacks",
    "WeightEMA": "callbacks",
    "CrossEntropyLoss": "losses",
    "DiceCELoss": "losses",
    "DiceLoss": "losses",
    "FocalLoss": "losses",
    "has_dropout": "mc_dropout",
    "mc_dropout_sampling": "mc_dropout",
    "mc_dropout_moments": "mc_dropout",
    "METRICS": "metrics",
    "confusion_matrix": "metrics",
    "metrics_from_confusion": "metrics",
    "Normalizer": "normalize",
    "RandomStates": "requeue",
    "RequeueBetweenBatches": "requeue",
    "GlacierSegmenter": "segmenter",
    "SmpSegmentationModel": "smp_model",
    "apply_view": "tta",
    "tta_codes": "tta",
    "tta_probabilities": "tta",
    "undo_view": "tta",
    "DropoutUNet": "unet",
}

__all__ = [
    "METRICS",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceLoss",
    "DropoutUNet",
    "FocalLoss",
    "GlacierSegmenter",
    "Normalizer",
    "PredictionPanels",
    "RandomStates",
    "RequeueBetweenBatches",
    "SmpSegmentationModel",
    "WeightEMA",
    "apply_view",
    "confusion_matrix",
    "has_dropout",
    "mc_dropout_moments",
    "mc_dropout_sampling",
    "metrics_from_confusion",
    "tta_codes",
    "tta_probabilities",
    "undo_view",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
