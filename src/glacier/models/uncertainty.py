"""Uncertainty measures of a pixel from the passes of a prediction (MC dropout × TTA × members).

Each pass gives softmax probabilities ``p`` (of the logits divided by the checkpoint's
temperature). Per pixel the passes are summarized by their means — of ``p``, of ``p²`` and of
the entropy ``H(p)`` — which blend across overlapping tiles like the probabilities themselves
(a blend is a mixture of the tiles' passes). From those means (``m`` = mean probabilities):

* ``one_minus_max``: ``1 − max_k m_k``; with calibrated probabilities, the chance that the map's
  class is wrong.
* ``entropy``: predictive entropy ``H(m) = −Σ m_k ln m_k`` in nats (0 … ln K): total uncertainty.
* ``mutual_information``: ``H(m) − mean H(p)`` (nats): how much the passes disagree, the
  epistemic part (0 for a single pass).
* ``spread``: standard deviation over the passes of the winning class's probability.

A single deterministic pass (``mc_samples=0``, one view) has the first two only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glacier.errors import GlacierConfigError

if TYPE_CHECKING:  # measure_maps reads them; they live with the pass statistics
    from glacier.models.pass_statistics import PassStats

CLASS_AXIS = -3  # (..., K, H, W)


@dataclass(frozen=True)
class Measure:
    """One uncertainty measure.

    Attributes:
        name: Its key (``uncertainty=`` value, band description, metric names).
        title: A short title for tables and figures.
        description: One sentence: what it is and its range.
        several_passes: Needs more than one pass (MC dropout or TTA).
        squares: Needs the mean of ``p²`` over the passes.
        entropy: Needs the mean entropy of the passes.
    """

    name: str
    title: str
    description: str
    several_passes: bool = False
    squares: bool = False
    entropy: bool = False


ONE_MINUS_MAX = "one_minus_max"
ENTROPY = "entropy"
MUTUAL_INFORMATION = "mutual_information"
SPREAD = "spread"
MEASURES = {
    m.name: m
    for m in (
        Measure(
            ONE_MINUS_MAX,
            "1 − max probability",
            "1 minus the largest mean class probability (0 … 1 − 1/K)",
        ),
        Measure(
            ENTROPY,
            "predictive entropy",
            "entropy of the mean class probabilities (nats, 0 … ln K)",
        ),
        Measure(
            MUTUAL_INFORMATION,
            "mutual information",
            "predictive entropy minus the mean entropy of the passes (nats): their disagreement",
            several_passes=True,
            entropy=True,
        ),
        Measure(
            SPREAD,
            "spread of the passes",
            "standard deviation over the passes of the winning class's probability",
            several_passes=True,
            squares=True,
        ),
    )
}

# Last band of `_uncertainty_measures.tif` when the temperature is not 1: the confidence
# (largest mean probability) the map would have without it, to score calibration before/after
UNCALIBRATED_CONFIDENCE = "confidence_uncalibrated"
# The measure written as `_uncertainty.tif` by default: the best on dev (docs/demo_results.md)
DEFAULT_MEASURE = ONE_MINUS_MAX


@dataclass(frozen=True)
class Passes:
    """The passes a prediction averages.

    Attributes:
        views: Test-time augmentation views (dihedral transforms) per tile.
        mc_samples: MC-dropout passes per view (0 = one deterministic pass).
        temperature: The logits are divided by it before the softmax, in every pass; for an
            ensemble the mean of its members' temperatures (each member divides by its own).
        members: Models of an ensemble (1 = a single model); each gives ``views`` ×
            ``mc_samples`` passes, so the measures include the members' disagreement.
        member_temperatures: Each member's temperature (empty for a single model).
    """

    views: int = 1
    mc_samples: int = 0
    temperature: float = 1.0
    members: int = 1
    member_temperatures: tuple[float, ...] = ()

    def __post_init__(self) -> None:  # JSON gives lists
        temperatures = tuple(float(t) for t in self.member_temperatures)
        object.__setattr__(self, "member_temperatures", temperatures)

    @classmethod
    def of_members(cls, views: int, mc_samples: int, temperatures: Sequence[float]) -> Passes:
        """The passes of ``len(temperatures)`` members, each with its own temperature."""
        if len(temperatures) == 1:
            return cls(views, mc_samples, float(temperatures[0]))
        mean = sum(temperatures) / len(temperatures)
        return cls(views, mc_samples, mean, len(temperatures), tuple(temperatures))

    @property
    def count(self) -> int:
        """Passes per pixel (before tile blending)."""
        return self.members * self.views * max(self.mc_samples, 1)

    @property
    def temperatures(self) -> tuple[float, ...]:
        """The temperature of each member (one for a single model)."""
        return self.member_temperatures or (self.temperature,)

    @property
    def scaled(self) -> bool:
        """Whether some pass divides its logits by a temperature other than 1."""
        return any(t != 1.0 for t in self.temperatures)

    def available(self) -> list[str]:
        """The measures these passes define, in :data:`MEASURES` order."""
        return [m.name for m in MEASURES.values() if self.count > 1 or not m.several_passes]

    def describe(self) -> str:
        """E.g. ``8 passes (1 view × 8 MC-dropout passes), temperature 1.21``."""
        views = "1 view" if self.views == 1 else f"{self.views} TTA views"
        if self.mc_samples:
            each = f"{views} × {self.mc_samples} MC-dropout passes"
        else:
            each = f"{views}, deterministic"
        if self.members > 1:
            temperatures = ", ".join(f"{t:.3g}" for t in self.temperatures)
            text = f"{self.count} passes ({self.members} members × {each})"
            return f"{text}, temperatures {temperatures}"
        if self.mc_samples:
            text = f"{self.count} passes ({each})"
        else:
            text = f"{self.count} deterministic pass{'es' if self.count > 1 else ''} ({views})"
        return f"{text}, temperature {self.temperature:.3g}"

    def check(self, names: Sequence[str], key: str = "uncertainty") -> list[str]:
        """Refuse unknown measures and measures these passes cannot give.

        Raises:
            GlacierConfigError: Naming ``key``, the measure and what would make it available.
        """
        for name in names:
            if name not in MEASURES:
                raise GlacierConfigError(f"{key}={name!r}: choose from {list(MEASURES)}")
            if name not in self.available():
                raise GlacierConfigError(
                    f"{key}={name!r} needs several passes per pixel; this prediction has one "
                    "(set mc_samples > 0 or tta > 1)"
                )
        return list(names)


def pick(values: Tensor, winner: Tensor) -> Tensor:
    """``values`` of the class ``winner`` per pixel (class axis -3; other indices pick class 0)."""
    picked = values.select(CLASS_AXIS, 0).clone()
    for index in range(1, values.shape[CLASS_AXIS]):
        picked = torch.where(winner == index, values.select(CLASS_AXIS, index), picked)
    return picked


def entropy_of(probs: Tensor) -> Tensor:
    """Entropy in nats over the class axis (0 ln 0 = 0)."""
    entropy: Tensor = torch.special.entr(probs).sum(dim=CLASS_AXIS)
    return entropy


def measure_maps(
    stats: PassStats, names: Sequence[str], winner: Tensor | None = None
) -> dict[str, Tensor]:
    """Per-pixel maps of the measures ``names`` from mean pass statistics.

    Args:
        stats: Means over the passes (and blended tiles).
        names: Measures (see :data:`MEASURES`); their statistics must be present.
        winner: The map's class per pixel (argmax of ``stats.probs`` when None); only
            ``spread`` uses it.

    Returns:
        ``{name: (..., H, W) float32 map}``.
    """
    maps: dict[str, Tensor] = {}
    for name in names:
        if name == ONE_MINUS_MAX:
            maps[name] = 1.0 - stats.probs.amax(dim=CLASS_AXIS)
        elif name == ENTROPY:
            maps[name] = entropy_of(stats.probs)
        elif name == MUTUAL_INFORMATION:
            if stats.entropy is None:
                raise ValueError("mutual_information needs the mean entropy of the passes")
            mean_entropy = stats.entropy.squeeze(CLASS_AXIS)
            maps[name] = (entropy_of(stats.probs) - mean_entropy).clamp_(min=0.0)
        elif name == SPREAD:
            if stats.squares is None:
                raise ValueError("spread needs the mean of the squared probabilities")
            classes = stats.probs.argmax(dim=CLASS_AXIS) if winner is None else winner
            mean = pick(stats.probs, classes)
            maps[name] = (pick(stats.squares, classes) - mean * mean).clamp_(min=0.0).sqrt_()
        else:
            raise ValueError(f"unknown uncertainty measure {name!r}")
    return maps
