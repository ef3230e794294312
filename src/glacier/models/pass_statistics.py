"""Per-pixel statistics of a prediction's passes: what each pass gives, their sums and means.

A pass (one MC-dropout draw of one TTA view of one member) gives softmax probabilities;
:class:`StatsNeeds` says what else the outputs need (squares for ``spread``, entropies for
``mutual_information``, uncalibrated probabilities, every pass kept for per-pass maps);
:class:`StatsSum` sums passes and :func:`mean_of_members` averages an ensemble's members. The
measures themselves are in :mod:`glacier.models.uncertainty`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from glacier.models.uncertainty import CLASS_AXIS, MEASURES


@dataclass(frozen=True)
class StatsNeeds:
    """Which per-pass statistics to accumulate besides the probabilities.

    Attributes:
        squares: Mean of ``p²`` (for ``spread``).
        entropy: Mean entropy of the passes (for ``mutual_information``).
        uncalibrated: Mean probabilities without the temperature (to score calibration).
        per_pass: Keep each MC pass's probabilities (averaged over the TTA views) instead of
            only their mean: the number of passes kept (0: none), for per-pass maps.
    """

    squares: bool = False
    entropy: bool = False
    uncalibrated: bool = False
    per_pass: int = 0

    @classmethod
    def of(cls, names: Sequence[str], uncalibrated: bool = False) -> StatsNeeds:
        """What the measures ``names`` need (plus uncalibrated probabilities if asked)."""
        chosen = [MEASURES[name] for name in names]
        return cls(
            squares=any(m.squares for m in chosen),
            entropy=any(m.entropy for m in chosen),
            uncalibrated=uncalibrated,
        )


@dataclass
class PassStats:
    """Per-pixel sums or means over passes; (..., K, H, W), entropy (..., 1, H, W).

    Attributes:
        probs: Of the (calibrated) probabilities.
        squares: Of their squares, or None.
        entropy: Of the entropy of each pass, or None.
        uncalibrated: Of the probabilities without the temperature, or None.
        per_pass: Each pass's probabilities, passes stacked along the class axis (P·K
            channels: pass ``i``'s K classes at ``i·K`` …), or None.
    """

    probs: Tensor
    squares: Tensor | None = None
    entropy: Tensor | None = None
    uncalibrated: Tensor | None = None
    per_pass: Tensor | None = None

    def map(self, function: Callable[[Tensor], Tensor]) -> PassStats:
        """Apply ``function`` to every tensor (e.g. undo a view)."""
        optional = [self.squares, self.entropy, self.uncalibrated, self.per_pass]
        return PassStats(
            function(self.probs), *(None if t is None else function(t) for t in optional)
        )

    def add_(self, other: PassStats, at: tuple[slice, ...] | None = None) -> None:
        """Add ``other``'s tensors in place (into the part ``at`` of each, if given).

        Statistics missing on either side are skipped.
        """
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine is None or theirs is None:
                continue
            if at is None:
                mine += theirs
            else:
                mine[at] += theirs


def pass_stats(logits: Tensor, temperature: float, needs: StatsNeeds) -> PassStats:
    """The statistics of one pass: softmax of ``logits / temperature`` and what ``needs`` asks.

    Args:
        logits: (..., K, H, W) logits of one pass.
        temperature: Divides the logits (1 = none; then exactly the plain softmax).
        needs: Optional statistics.
    """
    logits = logits.float()
    probs = (logits if temperature == 1.0 else logits / temperature).softmax(dim=CLASS_AXIS)
    return PassStats(
        probs,
        probs * probs if needs.squares else None,
        torch.special.entr(probs).sum(dim=CLASS_AXIS, keepdim=True) if needs.entropy else None,
        logits.softmax(dim=CLASS_AXIS) if needs.uncalibrated else None,
        probs if needs.per_pass else None,
    )


class StatsSum:
    """Sum pass statistics, then average them (memory: one set of sums)."""

    def __init__(self) -> None:
        self.total: PassStats | None = None
        self.count = 0

    def add(self, stats: PassStats) -> None:
        """Add one pass's (or one view's mean) statistics."""
        if self.total is None:
            self.total = stats.map(torch.clone)
        else:
            self.total.add_(stats)
        self.count += 1

    def mean(self) -> PassStats:
        """The mean of everything added."""
        if self.total is None:
            raise ValueError("no passes added")
        count = self.count
        return self.total.map(lambda t: t / count)


def mean_of_members(stats: Sequence[PassStats]) -> PassStats:
    """An ensemble's statistics: the mean of its members' means, accumulated in float64.

    Every member has as many passes, so this is the mean over all the ensemble's passes (its
    ``mutual_information`` and ``spread`` include the members' disagreement). Summing float32
    values in float64 is exact for any realistic number of members, so an ensemble of identical
    members gives exactly one member's statistics.

    Args:
        stats: Each member's mean statistics (same shapes, same statistics present).

    Returns:
        float32 means (the single member's own tensors for a one-member ensemble); each
        member's kept passes (``per_pass``) are not averaged but stacked, member after member,
        so that per-pass maps hold every pass of the ensemble.
    """
    if len(stats) == 1:
        return stats[0]
    passes = [member.per_pass for member in stats]
    bare = [replace(member, per_pass=None) for member in stats]
    total = bare[0].map(lambda t: t.double())
    for member in bare[1:]:
        total.add_(member.map(lambda t: t.double()))
    count = len(stats)
    mean = total.map(lambda t: (t / count).float())
    if all(kept is not None for kept in passes):
        mean.per_pass = torch.cat([kept for kept in passes if kept is not None], dim=CLASS_AXIS)
    return mean
