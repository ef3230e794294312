"""Streaming evaluation of uncertainty maps: fixed-size histograms, any number of pixels.

A whole scene or a test split does not fit in memory as exact per-pixel values, so each
measure's values are counted in log-spaced bins (:data:`BINS_PER_DECADE` per factor of ten from
:data:`SMALLEST` to :data:`LARGEST`, below that one bin for "certain"), right and wrong pixels
apart; the metrics of :mod:`glacier.models.uncertainty_metrics` then treat each bin as a tie
group. Two values less than 0.5 % apart may share a bin; nothing else is approximated.
Calibration is tallied exactly (pixels, confidence sums and right pixels per confidence bin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from glacier.models.uncertainty import MEASURES, ONE_MINUS_MAX, Passes
from glacier.models.uncertainty_metrics import (
    CONFIDENCE_BINS,
    Calibration,
    ReliabilityBin,
    TieGroups,
    aurc,
    aurc_oracle,
    auroc,
    average_precision,
    calibration_from_sums,
    confidence_bin,
    error_by_decile,
)

SMALLEST = 1e-8
LARGEST = 10.0  # above ln(K) for any K < 22000
BINS_PER_DECADE = 512
BINS = 1 + round(float(np.log10(LARGEST / SMALLEST)) * BINS_PER_DECADE)


def value_bin(values: np.ndarray) -> np.ndarray:
    """Histogram bin of each value (monotone: a larger value never gets a smaller bin)."""
    values = np.asarray(values, dtype=np.float64)
    scaled = (np.log10(np.maximum(values, SMALLEST)) - np.log10(SMALLEST)) * BINS_PER_DECADE
    index = 1 + np.floor(scaled).astype(np.int64)
    return np.where(values < SMALLEST, 0, np.clip(index, 1, BINS - 1))


@dataclass(frozen=True)
class ErrorRanking:
    """How well one measure ranks the map's wrong pixels.

    Attributes:
        auroc: Area under the ROC curve (0.5 = chance, 1 = perfect).
        average_precision: Average precision (chance = the error rate).
        aurc: Area under the risk–coverage curve (lower is better).
        error_by_decile: Error rate per tenth of the pixels, most certain first.
    """

    auroc: float | None
    average_precision: float | None
    aurc: float | None
    error_by_decile: tuple[float | None, ...]

    @property
    def inversions(self) -> int:
        """Deciles whose error rate is below the previous decile's."""
        rates = [r for r in self.error_by_decile if r is not None]
        return sum(1 for a, b in pairwise(rates) if b < a)


def ranking(groups: TieGroups) -> ErrorRanking:
    """Every ranking metric of one measure's tie groups."""
    return ErrorRanking(
        auroc(groups), average_precision(groups), aurc(groups), tuple(error_by_decile(groups))
    )


@dataclass(frozen=True)
class UncertaintyEvaluation:
    """The quality of a map's uncertainty over one evaluation region.

    Attributes:
        pixels: Valid pixels scored.
        errors: Wrong pixels among them.
        passes: The passes the measures come from (views, MC passes, temperature).
        measures: Per measure, its ranking of the errors.
        calibration: ECE and reliability table of the confidence (max mean probability).
        uncalibrated: The same without the temperature, when it is not 1.
    """

    pixels: int
    errors: int
    passes: Passes
    measures: dict[str, ErrorRanking]
    calibration: Calibration
    uncalibrated: Calibration | None = None

    @property
    def error_rate(self) -> float | None:
        """Share of wrong pixels."""
        return self.errors / self.pixels if self.pixels else None

    @property
    def aurc_oracle(self) -> float | None:
        """AURC of a perfect measure at this error rate."""
        return aurc_oracle(self.pixels, self.errors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (derived figures included)."""
        return asdict(self) | {"error_rate": self.error_rate, "aurc_oracle": self.aurc_oracle}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UncertaintyEvaluation:
        """Read :meth:`to_dict` output back."""

        def calib(block: Mapping[str, Any] | None) -> Calibration | None:
            if block is None:
                return None
            bins = tuple(ReliabilityBin(**b) for b in block["bins"])
            return Calibration(**{**block, "bins": bins})

        order = [*MEASURES, *sorted(set(data["measures"]) - set(MEASURES))]  # JSON sorts keys
        measures = {
            name: ErrorRanking(**{**m, "error_by_decile": tuple(m["error_by_decile"])})
            for name in order
            if (m := data["measures"].get(name)) is not None
        }
        calibration = calib(data["calibration"])
        assert calibration is not None
        return cls(
            pixels=int(data["pixels"]),
            errors=int(data["errors"]),
            passes=Passes(**data["passes"]),
            measures=measures,
            calibration=calibration,
            uncalibrated=calib(data.get("uncalibrated")),
        )


@dataclass
class _Histogram:
    pixels: np.ndarray = field(default_factory=lambda: np.zeros(BINS, dtype=np.int64))
    errors: np.ndarray = field(default_factory=lambda: np.zeros(BINS, dtype=np.int64))

    def add(self, values: np.ndarray, wrong: np.ndarray) -> None:
        index = value_bin(values)
        self.pixels += np.bincount(index, minlength=BINS)
        self.errors += np.bincount(index[wrong], minlength=BINS)

    def groups(self) -> TieGroups:
        used = self.pixels > 0
        return TieGroups(self.pixels[used].astype(np.float64), self.errors[used].astype(np.float64))


@dataclass
class _CalibrationSums:
    pixels: np.ndarray = field(default_factory=lambda: np.zeros(CONFIDENCE_BINS))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(CONFIDENCE_BINS))
    right: np.ndarray = field(default_factory=lambda: np.zeros(CONFIDENCE_BINS))

    def add(self, confidence: np.ndarray, wrong: np.ndarray) -> None:
        index = confidence_bin(confidence)
        self.pixels += np.bincount(index, minlength=CONFIDENCE_BINS)
        self.confidence += np.bincount(index, weights=confidence, minlength=CONFIDENCE_BINS)
        self.right += np.bincount(index, weights=~wrong, minlength=CONFIDENCE_BINS)

    def result(self) -> Calibration:
        return calibration_from_sums(self.pixels, self.confidence, self.right)


class UncertaintyTally:
    """Accumulate measure values of right and wrong pixels, batch by batch or block by block.

    Args:
        measures: The measures to score; ``one_minus_max`` is always scored (the baseline, and
            the confidence that calibration is measured on).
        uncalibrated: Also tally the calibration of uncalibrated confidences.
    """

    def __init__(self, measures: Sequence[str], uncalibrated: bool = False) -> None:
        names = [ONE_MINUS_MAX, *(m for m in measures if m != ONE_MINUS_MAX)]
        self.histograms = {name: _Histogram() for name in names}
        self.calibration = _CalibrationSums()
        self.uncalibrated = _CalibrationSums() if uncalibrated else None
        self.pixels = 0
        self.errors = 0

    @property
    def measures(self) -> list[str]:
        """The measures tallied, ``one_minus_max`` first."""
        return list(self.histograms)

    def add(
        self,
        wrong: np.ndarray,
        values: Mapping[str, np.ndarray],
        uncalibrated_confidence: np.ndarray | None = None,
    ) -> None:
        """Add valid pixels: where the map is wrong, and each measure's value there.

        Args:
            wrong: (N,) bool.
            values: ``{measure: (N,) values}`` for every tallied measure.
            uncalibrated_confidence: (N,) max probability without the temperature.
        """
        wrong = np.asarray(wrong, dtype=bool).ravel()
        for name, histogram in self.histograms.items():
            histogram.add(np.asarray(values[name]).ravel(), wrong)
        confidence = 1.0 - np.asarray(values[ONE_MINUS_MAX], dtype=np.float64).ravel()
        self.calibration.add(confidence, wrong)
        if self.uncalibrated is not None and uncalibrated_confidence is not None:
            raw = np.asarray(uncalibrated_confidence, dtype=np.float64).ravel()
            self.uncalibrated.add(raw, wrong)
        self.pixels += int(wrong.size)
        self.errors += int(wrong.sum())

    def result(self, passes: Passes) -> UncertaintyEvaluation:
        """Every metric of what was added."""
        return UncertaintyEvaluation(
            pixels=self.pixels,
            errors=self.errors,
            passes=passes,
            measures={name: ranking(h.groups()) for name, h in self.histograms.items()},
            calibration=self.calibration.result(),
            uncalibrated=None if self.uncalibrated is None else self.uncalibrated.result(),
        )
