"""The test step's uncertainty evaluation: every measure its passes define, against the labels."""

from __future__ import annotations

from torch import Tensor

from glacier.data.contract import IGNORE_INDEX
from glacier.models.pass_statistics import PassStats
from glacier.models.uncertainty import CLASS_AXIS, Passes, measure_maps
from glacier.models.uncertainty_tally import UncertaintyEvaluation, UncertaintyTally


class TestUncertainty:
    """Tally, batch by batch, how well each measure of the test passes ranks the wrong pixels.

    Args:
        passes: The test step's passes (which measures exist follows from them).
    """

    __test__ = False  # not a pytest class

    def __init__(self, passes: Passes) -> None:
        self.passes = passes
        self.tally = UncertaintyTally(passes.available(), uncalibrated=passes.scaled)

    def update(self, stats: PassStats, prediction: Tensor, target: Tensor) -> None:
        """Add one batch.

        Args:
            stats: Means of the batch's passes (:meth:`GlacierSegmenter.test_outputs`).
            prediction: (B, H, W) predicted classes.
            target: (B, H, W) reference classes (``IGNORE_INDEX`` = nodata).
        """
        valid = target != IGNORE_INDEX
        maps = measure_maps(stats, self.tally.measures, prediction)
        values = {name: value[valid].float().cpu().numpy() for name, value in maps.items()}
        wrong = (prediction != target)[valid].cpu().numpy()
        raw = None
        if stats.uncalibrated is not None:
            raw = stats.uncalibrated.amax(dim=CLASS_AXIS)[valid].float().cpu().numpy()
        self.tally.add(wrong, values, raw)

    def result(self) -> UncertaintyEvaluation:
        """Every metric of the batches added."""
        return self.tally.result(self.passes)

    @staticmethod
    def scalars(evaluation: UncertaintyEvaluation, stage: str) -> dict[str, float]:
        """Logger scalars: AUROC, AP and AURC per measure, ECE (before and after calibration).

        Also which passes the measures come from (``uncertainty_views``,
        ``uncertainty_mc_samples``, ``uncertainty_members``, ``temperature``). Undefined figures
        (no wrong pixel) are left out.
        """
        passes = evaluation.passes
        values: dict[str, float | None] = {
            f"{stage}/uncertainty_views": passes.views,
            f"{stage}/uncertainty_mc_samples": passes.mc_samples,
            f"{stage}/uncertainty_members": passes.members,
            f"{stage}/temperature": passes.temperature,
            f"{stage}/error_rate": evaluation.error_rate,
            f"{stage}/ece": evaluation.calibration.ece,
        }
        if evaluation.uncalibrated is not None:
            values[f"{stage}/ece_uncalibrated"] = evaluation.uncalibrated.ece
        for name, ranking in evaluation.measures.items():
            values[f"{stage}/auroc_{name}"] = ranking.auroc
            values[f"{stage}/ap_{name}"] = ranking.average_precision
            values[f"{stage}/aurc_{name}"] = ranking.aurc
        return {k: float(v) for k, v in values.items() if v is not None}
