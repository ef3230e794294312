"""How well an uncertainty map ranks a map's errors, and how calibrated its confidence is.

Pure NumPy, with one definition for the test step, full-scene maps and reports. Every ranking
metric works on *tie groups*: pixels sharing one uncertainty value (exact arrays) or one
histogram bin (:mod:`glacier.models.uncertainty_tally`), given as ascending groups with their
pixel and error counts. Ties are treated as a random order of the tied pixels would be on
average, so no metric depends on how equal values happen to be sorted:

* **AUROC**: the chance that a wrong pixel is more uncertain than a correct one (ties count
  half); 0.5 is a useless measure, 1 a perfect detector of the map's errors.
* **average precision** (AP): precision averaged over the recall steps of wrong pixels, one
  threshold per distinct value (as scikit-learn defines it); chance level is the error rate.
* **AURC**: area under the risk–coverage curve, i.e. the mean error rate of the map when only
  its ``n`` most confident pixels are kept, averaged over ``n`` (lower is better; the error rate
  itself for a useless measure, :func:`aurc_oracle` for a perfect one).
* **error rate by decile**: the share of wrong pixels in each tenth of the pixels ranked from
  the most to the least certain (tied pixels shared out in proportion).
* **ECE**: expected calibration error over equal-width confidence bins, with the reliability
  table (per bin: pixels, mean confidence, accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DECILES = 10
CONFIDENCE_BINS = 10
_EULER_GAMMA = 0.5772156649015329
_EXACT_HARMONIC = 256  # harmonic numbers below this are summed, above it the series is exact


@dataclass(frozen=True)
class TieGroups:
    """Pixels grouped by uncertainty value, in ascending order of the value.

    Attributes:
        pixels: (G,) pixels per group.
        errors: (G,) wrong pixels per group.
    """

    pixels: np.ndarray
    errors: np.ndarray

    @classmethod
    def of(cls, uncertainty: np.ndarray, wrong: np.ndarray) -> TieGroups:
        """Group per-pixel values exactly (one group per distinct value).

        Args:
            uncertainty: Per-pixel uncertainty (any shape; higher = less certain).
            wrong: Same shape, True where the map is wrong.
        """
        values = np.asarray(uncertainty, dtype=np.float64).ravel()
        errors = np.asarray(wrong, dtype=bool).ravel()
        if values.shape != errors.shape:
            raise ValueError(f"uncertainty {values.shape} and errors {errors.shape} differ")
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        wrong_counts = np.bincount(inverse, weights=errors, minlength=len(counts))
        return cls(counts.astype(np.float64), wrong_counts.astype(np.float64))

    @property
    def total(self) -> float:
        """Pixels in all groups."""
        return float(self.pixels.sum())

    @property
    def wrong(self) -> float:
        """Wrong pixels in all groups."""
        return float(self.errors.sum())


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def auroc(groups: TieGroups) -> float | None:
    """Area under the ROC curve of the uncertainty as a detector of wrong pixels (ties = ½).

    Returns:
        The AUROC, or None when every pixel is right or every pixel is wrong.
    """
    wrong = groups.errors
    right = groups.pixels - groups.errors
    positives, negatives = wrong.sum(), right.sum()
    if positives == 0 or negatives == 0:
        return None
    right_below = np.cumsum(right) - right
    return float(np.sum(wrong * (right_below + 0.5 * right)) / (positives * negatives))


def average_precision(groups: TieGroups) -> float | None:
    """Average precision of wrong pixels ranked from the most uncertain down.

    Returns:
        The AP, or None when no pixel is wrong.
    """
    positives = groups.wrong
    if positives == 0 or groups.total == 0:
        return None
    found = np.cumsum(groups.errors[::-1])
    flagged = np.cumsum(groups.pixels[::-1])
    recall_steps = groups.errors[::-1] / positives
    return float(np.sum(recall_steps * found / flagged))


def harmonic(n: np.ndarray) -> np.ndarray:
    """Harmonic numbers H(n) = 1 + 1/2 + ... + 1/n (H(0) = 0), to float64 precision."""
    n = np.asarray(n, dtype=np.float64)
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, _EXACT_HARMONIC))])
    small = table[np.clip(n, 0, _EXACT_HARMONIC - 1).astype(np.int64)]
    big = np.maximum(n, _EXACT_HARMONIC)
    series = np.log(big) + _EULER_GAMMA + 1 / (2 * big) - 1 / (12 * big**2) + 1 / (120 * big**4)
    harmonic: np.ndarray = np.where(n < _EXACT_HARMONIC, small, series)
    return harmonic


def aurc(groups: TieGroups) -> float | None:
    """Area under the risk–coverage curve (mean error rate of the ``n`` most certain pixels).

    For pixels ranked from the most certain, ``(1/N) Σ_n errors(n)/n``; inside a tie group the
    expected value over the orders of its pixels, in closed form through harmonic numbers.

    Returns:
        The AURC, or None for no pixels.
    """
    total = groups.total
    if total == 0:
        return None
    before = np.cumsum(groups.pixels) - groups.pixels
    errors_before = np.cumsum(groups.errors) - groups.errors
    rate = groups.errors / np.maximum(groups.pixels, 1)
    inside = harmonic(before + groups.pixels) - harmonic(before)
    area = groups.pixels * rate + (errors_before - before * rate) * inside
    return float(area.sum() / total)


def aurc_oracle(pixels: float, errors: float) -> float | None:
    """The AURC of a perfect ranking (every wrong pixel after every right one)."""
    if pixels == 0:
        return None
    right = pixels - errors
    inside = float(harmonic(np.array(pixels)) - harmonic(np.array(right)))
    return (errors - right * inside) / pixels


def error_by_decile(groups: TieGroups, parts: int = DECILES) -> list[float | None]:
    """Error rate in each of ``parts`` equal shares of the pixels, most certain first.

    Tied pixels across a boundary are shared out in proportion (errors too), as a random order
    of them would on average.

    Returns:
        ``parts`` error rates (None for no pixels).
    """
    total = groups.total
    if total == 0:
        return [None] * parts
    cum_pixels = np.concatenate([[0.0], np.cumsum(groups.pixels)])
    cum_errors = np.concatenate([[0.0], np.cumsum(groups.errors)])
    edges = np.linspace(0.0, total, parts + 1)
    found = np.interp(edges, cum_pixels, cum_errors)
    return [float(v) for v in np.diff(found) / np.diff(edges)]


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability table.

    Attributes:
        lower: Lower edge (exclusive, except the first bin's 0).
        upper: Upper edge (inclusive).
        pixels: Pixels whose confidence falls in the bin.
        confidence: Their mean confidence (None when empty).
        accuracy: The share of them that is right (None when empty).
    """

    lower: float
    upper: float
    pixels: int
    confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error and its reliability table.

    Attributes:
        ece: Σ_b (pixels_b / N) |accuracy_b − confidence_b| (None for no pixels).
        mean_confidence: Mean confidence of all pixels.
        accuracy: Share of right pixels.
        bins: The reliability table, one row per confidence bin.
    """

    ece: float | None
    mean_confidence: float | None
    accuracy: float | None
    bins: tuple[ReliabilityBin, ...]


def confidence_bin(confidence: np.ndarray, bins: int = CONFIDENCE_BINS) -> np.ndarray:
    """Bin index of each confidence in [0, 1]: ``(b/bins, (b+1)/bins]``, 0 in the first bin."""
    scaled = np.round(np.asarray(confidence, dtype=np.float64) * bins, 9)  # 0.3 * 10 is 3, not 3+ε
    index = np.ceil(scaled).astype(np.int64) - 1
    return np.clip(index, 0, bins - 1)


def calibration_from_sums(
    pixels: np.ndarray, confidence_sums: np.ndarray, right: np.ndarray
) -> Calibration:
    """ECE and reliability table from per-bin pixel counts, confidence sums and right pixels."""
    bins = len(pixels)
    total = float(pixels.sum())
    rows = []
    gap = 0.0
    for b in range(bins):
        count = float(pixels[b])
        mean = float(confidence_sums[b] / count) if count else None
        accuracy = float(right[b] / count) if count else None
        if mean is not None and accuracy is not None:
            gap += count / total * abs(accuracy - mean)
        rows.append(ReliabilityBin(b / bins, (b + 1) / bins, int(count), mean, accuracy))
    return Calibration(
        ece=gap if total else None,
        mean_confidence=float(confidence_sums.sum() / total) if total else None,
        accuracy=float(right.sum() / total) if total else None,
        bins=tuple(rows),
    )


def calibration(
    confidence: np.ndarray, wrong: np.ndarray, bins: int = CONFIDENCE_BINS
) -> Calibration:
    """ECE and reliability table of per-pixel confidences (the max class probability).

    Args:
        confidence: Per-pixel confidence in [0, 1].
        wrong: Same shape, True where the map is wrong.
        bins: Equal-width confidence bins.
    """
    values = np.asarray(confidence, dtype=np.float64).ravel()
    right = ~np.asarray(wrong, dtype=bool).ravel()
    index = confidence_bin(values, bins)
    return calibration_from_sums(
        np.bincount(index, minlength=bins).astype(np.float64),
        np.bincount(index, weights=values, minlength=bins),
        np.bincount(index, weights=right, minlength=bins),
    )
