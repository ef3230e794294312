"""Models: networks, losses, metrics, MC dropout, TTA, and the LightningModule.

Our dropout U-Net and smp architectures, the segmentation losses and metrics, MC dropout and
test-time augmentation, uncertainty measures and their evaluation, temperature scaling, and
:class:`GlacierSegmenter` with its training callbacks.

Names load on first use (PEP 562), so code that needs only a loss or the metrics does not pay
for importing PyTorch Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glacier.models.calibration import (
        TemperatureFit,
        collect_logits,
        ece_at,
        fit_temperature,
        store_temperature,
    )
    from glacier.models.callbacks import DevCurve, PredictionPanels, WeightEMA
    from glacier.models.ensemble import MembersTest, ensemble_test_step, member_passes
    from glacier.models.losses import CrossEntropyLoss, DiceCELoss, DiceLoss, FocalLoss
    from glacier.models.mc_dropout import (
        has_dropout,
        mc_dropout_moments,
        mc_dropout_sampling,
        mc_dropout_stats,
    )
    from glacier.models.metrics import METRICS, confusion_matrix, metrics_from_confusion
    from glacier.models.normalize import Normalizer, split_normalizer, without_nodata
    from glacier.models.pass_statistics import (
        PassStats,
        StatsNeeds,
        StatsSum,
        mean_of_members,
        pass_stats,
    )
    from glacier.models.requeue import RandomStates, RequeueBetweenBatches
    from glacier.models.segmenter import GlacierSegmenter
    from glacier.models.smp_model import SmpSegmentationModel
    from glacier.models.tta import apply_view, tta_codes, tta_probabilities, tta_stats, undo_view
    from glacier.models.uncertainty import (
        DEFAULT_MEASURE,
        MEASURES,
        UNCALIBRATED_CONFIDENCE,
        Passes,
        measure_maps,
    )
    from glacier.models.uncertainty_metrics import Calibration, ReliabilityBin, TieGroups
    from glacier.models.uncertainty_tally import (
        ErrorRanking,
        UncertaintyEvaluation,
        UncertaintyTally,
    )
    from glacier.models.unet import DropoutUNet

_HOMES = {
    "TemperatureFit": "calibration",
    "collect_logits": "calibration",
    "ece_at": "calibration",
    "fit_temperature": "calibration",
    "store_temperature": "calibration",
    "DevCurve": "callbacks",
    "PredictionPanels": "callbacks",
    "WeightEMA": "callbacks",
    "MembersTest": "ensemble",
    "member_passes": "ensemble",
    "ensemble_test_step": "ensemble",
    "CrossEntropyLoss": "losses",
    "DiceCELoss": "losses",
    "DiceLoss": "losses",
    "FocalLoss": "losses",
    "has_dropout": "mc_dropout",
    "mc_dropout_sampling": "mc_dropout",
    "mc_dropout_moments": "mc_dropout",
    "mc_dropout_stats": "mc_dropout",
    "METRICS": "metrics",
    "confusion_matrix": "metrics",
    "metrics_from_confusion": "metrics",
    "Normalizer": "normalize",
    "split_normalizer": "normalize",
    "without_nodata": "normalize",
    "RandomStates": "requeue",
    "RequeueBetweenBatches": "requeue",
    "GlacierSegmenter": "segmenter",
    "SmpSegmentationModel": "smp_model",
    "apply_view": "tta",
    "tta_codes": "tta",
    "tta_probabilities": "tta",
    "tta_stats": "tta",
    "undo_view": "tta",
    "DEFAULT_MEASURE": "uncertainty",
    "MEASURES": "uncertainty",
    "Passes": "uncertainty",
    "PassStats": "pass_statistics",
    "StatsNeeds": "pass_statistics",
    "StatsSum": "pass_statistics",
    "UNCALIBRATED_CONFIDENCE": "uncertainty",
    "measure_maps": "uncertainty",
    "mean_of_members": "pass_statistics",
    "pass_stats": "pass_statistics",
    "Calibration": "uncertainty_metrics",
    "ReliabilityBin": "uncertainty_metrics",
    "TieGroups": "uncertainty_metrics",
    "ErrorRanking": "uncertainty_tally",
    "UncertaintyEvaluation": "uncertainty_tally",
    "UncertaintyTally": "uncertainty_tally",
    "DropoutUNet": "unet",
}

__all__ = [
    "DEFAULT_MEASURE",
    "MEASURES",
    "METRICS",
    "UNCALIBRATED_CONFIDENCE",
    "Calibration",
    "CrossEntropyLoss",
    "DevCurve",
    "DiceCELoss",
    "DiceLoss",
    "DropoutUNet",
    "ErrorRanking",
    "FocalLoss",
    "GlacierSegmenter",
    "MembersTest",
    "Normalizer",
    "PassStats",
    "Passes",
    "PredictionPanels",
    "RandomStates",
    "ReliabilityBin",
    "RequeueBetweenBatches",
    "SmpSegmentationModel",
    "StatsNeeds",
    "StatsSum",
    "TemperatureFit",
    "TieGroups",
    "UncertaintyEvaluation",
    "UncertaintyTally",
    "WeightEMA",
    "apply_view",
    "collect_logits",
    "confusion_matrix",
    "ece_at",
    "ensemble_test_step",
    "fit_temperature",
    "has_dropout",
    "mc_dropout_moments",
    "mc_dropout_sampling",
    "mc_dropout_stats",
    "mean_of_members",
    "measure_maps",
    "member_passes",
    "metrics_from_confusion",
    "pass_stats",
    "split_normalizer",
    "store_temperature",
    "tta_codes",
    "tta_probabilities",
    "tta_stats",
    "undo_view",
    "without_nodata",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
