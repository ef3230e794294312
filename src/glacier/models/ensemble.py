"""Ensembles of trained segmenters (e.g. the folds of a cross-validation): their test step.

Each member runs its own test passes (TTA views × MC-dropout passes, divided by its own
temperature); :func:`~glacier.models.uncertainty.mean_of_members` averages the members' pass
statistics in float64, so the class is the argmax of the mean probability over every pass of
every member and the uncertainty measures (mutual information, spread) include the members'
disagreement. An ensemble of one member is that model's test step exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from glacier.errors import GlacierInputError
from glacier.models.metrics import confusion_matrix, stage_metrics
from glacier.models.pass_statistics import PassStats, StatsNeeds, mean_of_members
from glacier.models.segmenter import GlacierSegmenter
from glacier.models.test_uncertainty import TestUncertainty
from glacier.models.uncertainty import Passes
from glacier.models.uncertainty_tally import UncertaintyEvaluation


@dataclass(frozen=True)
class MembersTest:
    """The test step of an ensemble (or of one model) over a split.

    Attributes:
        metrics: ``test/iou_<class>`` …, ``test/iou_mean`` (as the test step logs them).
        uncertainty: How well each measure of the passes ranks the wrong pixels.
    """

    metrics: dict[str, float]
    uncertainty: UncertaintyEvaluation


def member_passes(members: Sequence[GlacierSegmenter]) -> Passes:
    """The test passes of an ensemble: every member's views × MC passes, their temperatures.

    Raises:
        GlacierInputError: If the members' test steps differ (TTA, MC passes).
    """
    first = members[0].test_passes()
    for number, member in enumerate(members[1:], start=1):
        other = member.test_passes()
        if (other.views, other.mc_samples) != (first.views, first.mc_samples):
            raise GlacierInputError(
                f"ensemble member {number} tests with {other.views} views × {other.mc_samples} "
                f"MC passes, member 0 with {first.views} × {first.mc_samples}"
            )
    temperatures = [m.temperature_value for m in members]
    return Passes.of_members(first.views, first.mc_samples, temperatures)


def ensemble_outputs(
    members: Sequence[GlacierSegmenter], image: Tensor, batch_idx: int, needs: StatsNeeds
) -> tuple[Tensor, PassStats]:
    """Logits (log of the mean probability) and mean pass statistics of every member's passes.

    Args:
        members: The models, in eval mode, on the image's device.
        image: Raw (B, C, H, W) batch.
        batch_idx: Batch number (seeds each member's MC-dropout draws, as its test step does).
        needs: The statistics the ensemble's measures need.
    """
    if len(members) == 1:
        return members[0].test_outputs(image, batch_idx, needs)
    stats = mean_of_members([m.test_outputs(image, batch_idx, needs)[1] for m in members])
    return stats.probs.clamp_min(1e-8).log(), stats


def ensemble_test_step(
    members: Sequence[GlacierSegmenter], batches: Iterable[dict[str, Tensor]], stage: str = "test"
) -> MembersTest:
    """Run the test step of ``members`` as one ensemble over ``batches``.

    Args:
        members: Trained models with the same classes, on the batches' device.
        batches: ``{"image", "mask"}`` model inputs, in the test loader's order.
        stage: Prefix of the metric names.

    Returns:
        Pooled metrics and the uncertainty evaluation of the ensemble's passes.
    """
    passes = member_passes(members)
    needs = StatsNeeds.of(passes.available(), uncalibrated=passes.scaled)
    names = members[0].output_names
    tally = TestUncertainty(passes)
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    for member in members:
        member.eval()
    with torch.inference_mode():
        for batch_idx, batch in enumerate(batches):
            logits, stats = ensemble_outputs(members, batch["image"], batch_idx, needs)
            prediction = logits.argmax(dim=1)
            target = batch["mask"]
            confusion += confusion_matrix(
                prediction.cpu().numpy(), target.cpu().numpy(), len(names)
            )
            tally.update(stats, prediction, target)
    return MembersTest(stage_metrics(confusion, names, stage), tally.result())
