"""Uncertainty evaluation: metrics against hand-computed values, ties, histograms, measures."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from glacier.models import (
    MEASURES,
    Passes,
    StatsNeeds,
    StatsSum,
    TieGroups,
    UncertaintyEvaluation,
    UncertaintyTally,
    measure_maps,
    pass_stats,
)
from glacier.models.uncertainty_metrics import (
    aurc,
    aurc_oracle,
    auroc,
    average_precision,
    calibration,
    error_by_decile,
    harmonic,
)

U = np.array([0.1, 0.2, 0.3, 0.4])
WRONG = np.array([False, True, False, True])


def test_ranking_metrics_match_hand_computed_values() -> None:
    groups = TieGroups.of(U, WRONG)
    # wrong {0.2, 0.4} above right {0.1, 0.3} in 3 of 4 pairs
    assert auroc(groups) == pytest.approx(0.75)
    # from the top: 0.4 wrong (P 1, R ½), 0.3 right, 0.2 wrong (P ⅔, R 1)
    assert average_precision(groups) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # keep the n most certain: risks 0, ½, ⅓, ½
    assert aurc(groups) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    # perfect order (right, right, wrong, wrong): risks 0, 0, ⅓, ½
    assert aurc_oracle(4, 2) == pytest.approx((1 / 3 + 1 / 2) / 4)
    assert error_by_decile(groups, parts=4) == [0.0, 1.0, 0.0, 1.0]


def test_a_perfect_and_a_reversed_measure() -> None:
    wrong = np.array([False] * 6 + [True] * 4)
    rising = np.arange(10.0)
    assert auroc(TieGroups.of(rising, wrong)) == 1.0
    assert average_precision(TieGroups.of(rising, wrong)) == 1.0
    assert aurc(TieGroups.of(rising, wrong)) == pytest.approx(aurc_oracle(10, 4))
    assert error_by_decile(TieGroups.of(rising, wrong)) == [0.0] * 6 + [1.0] * 4
    assert auroc(TieGroups.of(-rising, wrong)) == 0.0


def test_ties_count_as_a_random_order_would_on_average() -> None:
    # one wrong and one right pixel tied, one right pixel above: ½ of one pair of two
    assert auroc(TieGroups.of(np.array([0.0, 0.0, 1.0]), np.array([True, False, False]))) == 0.25
    # two tied pixels, one wrong: orders (wrong, right) risks 1, ½; (right, wrong) 0, ½
    assert aurc(TieGroups.of(np.zeros(2), np.array([True, False]))) == pytest.approx(0.5)
    # four tied pixels holding one error, then one wrong pixel: each fifth shares the tie
    values, wrong = np.array([0, 0, 0, 0, 1.0]), np.array([True, False, False, False, True])
    assert error_by_decile(TieGroups.of(values, wrong), parts=5) == pytest.approx(
        [0.25, 0.25, 0.25, 0.25, 1.0]
    )
    # AP: one threshold per distinct value (the tied pair is flagged together)
    assert average_precision(TieGroups.of(np.array([1.0, 1.0, 0.0]), wrong[:3])) == 0.5


def _orders(values: np.ndarray) -> list[np.ndarray]:
    """Every ranking of the pixels, most certain first, that sorting by value allows."""
    groups = [np.flatnonzero(values == v) for v in np.unique(values)]
    return [np.concatenate(p) for p in itertools.product(*map(itertools.permutations, groups))]


def test_tie_handling_equals_the_mean_over_every_order_of_tied_pixels() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        values = rng.integers(0, 3, size=7).astype(float)
        wrong = rng.random(7) < 0.4
        wrong[:2] = [True, False]
        orders = _orders(values)
        risks = [np.mean(np.cumsum(wrong[o]) / np.arange(1, 8)) for o in orders]
        groups = TieGroups.of(values, wrong)
        assert aurc(groups) == pytest.approx(np.mean(risks))
        rates = error_by_decile(groups, parts=7)
        expected = np.mean([wrong[o] for o in orders], axis=0)
        assert rates == pytest.approx(list(expected))
        pairs = [(a, b) for a in np.flatnonzero(wrong) for b in np.flatnonzero(~wrong)]
        wins = [np.sign(values[a] - values[b]) / 2 + 0.5 for a, b in pairs]
        assert auroc(groups) == pytest.approx(np.mean(wins))


def test_undefined_figures_are_none() -> None:
    right = TieGroups.of(np.arange(3.0), np.zeros(3, dtype=bool))
    assert auroc(right) is None and average_precision(right) is None
    assert aurc(right) == 0.0
    empty = TieGroups.of(np.zeros(0), np.zeros(0, dtype=bool))
    assert aurc(empty) is None and error_by_decile(empty) == [None] * 10


def test_harmonic_numbers_are_exact_across_the_switch_to_the_series() -> None:
    n = np.array([0, 1, 2, 10, 255, 256, 1000, 10**6])
    exact = [sum(1 / k for k in range(1, int(m) + 1)) for m in n[:-1]]
    np.testing.assert_allclose(harmonic(n[:-1]), exact, rtol=1e-13)
    assert harmonic(n[-1:])[0] == pytest.approx(math.log(1e6) + 0.5772156649 + 5e-7, rel=1e-10)


def test_calibration_matches_hand_computed_values() -> None:
    confidence = np.array([0.95, 0.95, 0.65, 0.65])
    result = calibration(confidence, np.array([False, True, False, False]))
    # bin (0.9, 1]: accuracy ½ at confidence 0.95; bin (0.6, 0.7]: accuracy 1 at 0.65
    assert result.ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.35)
    assert result.mean_confidence == pytest.approx(0.8) and result.accuracy == 0.75
    assert [b.pixels for b in result.bins] == [0, 0, 0, 0, 0, 0, 2, 0, 0, 2]
    assert result.bins[9].accuracy == 0.5 and result.bins[0].confidence is None
    edges = calibration(np.array([0.3, 0.0, 1.0]), np.zeros(3, dtype=bool))
    assert [b.pixels for b in edges.bins] == [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]  # (b/10, (b+1)/10]


def test_the_histogram_tally_agrees_with_the_exact_metrics() -> None:
    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 0.05, size=20_000)
    wrong = rng.random(20_000) < np.clip(values * 4, 0, 0.9)
    tally = UncertaintyTally(["entropy"])
    for part in np.array_split(np.arange(20_000), 3):  # in batches
        tally.add(wrong[part], {"one_minus_max": values[part], "entropy": values[part]})
    result = tally.result(Passes())
    exact = TieGroups.of(values, wrong)
    got = result.measures["entropy"]
    assert got.auroc == pytest.approx(auroc(exact), abs=1e-3)
    assert got.average_precision == pytest.approx(average_precision(exact), abs=2e-3)
    assert got.aurc == pytest.approx(aurc(exact), abs=1e-3)
    assert got.error_by_decile == pytest.approx(error_by_decile(exact), abs=5e-3)
    assert result.calibration.ece == pytest.approx(calibration(1 - values, wrong).ece)
    assert result.pixels == 20_000 and result.errors == int(wrong.sum())
    again = UncertaintyEvaluation.from_dict(result.to_dict())
    assert again == result


def _stats(pass_probs: list[np.ndarray], needs: StatsNeeds) -> object:
    """Mean statistics of passes given as (K, H, W) probabilities (logits = log p)."""
    total = StatsSum()
    for probs in pass_probs:
        total.add(pass_stats(torch.log(torch.tensor(probs, dtype=torch.float32)), 1.0, needs))
    return total.mean()


def test_measures_match_hand_computed_values() -> None:
    first = np.array([[[0.9]], [[0.1]]])  # two classes, one pixel
    second = np.array([[[0.5]], [[0.5]]])
    stats = _stats([first, second], StatsNeeds(squares=True, entropy=True))
    maps = {k: float(v) for k, v in measure_maps(stats, list(MEASURES)).items()}
    entropy = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    passes = (-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) + math.log(2)) / 2
    assert maps["one_minus_max"] == pytest.approx(0.3)
    assert maps["entropy"] == pytest.approx(entropy, rel=1e-5)
    assert maps["mutual_information"] == pytest.approx(entropy - passes, rel=1e-4)
    assert maps["spread"] == pytest.approx(0.2, rel=1e-4)  # 0.9 and 0.5 around 0.7


def test_errors_exactly_where_the_passes_disagree_give_auroc_1() -> None:
    """Agreeing passes (0.6, 0.6) are right; disagreeing ones (0.99, 0.21) are wrong.

    Both kinds have the same mean (0.6): the confidence of the mean cannot tell them apart
    (AUROC ½); the spread and the mutual information of the passes can (AUROC 1).
    """
    disagree = np.zeros((8, 8), dtype=bool)
    disagree[2:5, 3:7] = True
    high = np.where(disagree, 0.99, 0.6)
    low = np.where(disagree, 0.21, 0.6)
    passes = [np.stack([1 - p, p]) for p in (high, low, high, low)]
    stats = _stats(passes, StatsNeeds(squares=True, entropy=True))
    maps = measure_maps(stats, list(MEASURES))
    prediction = stats.probs.argmax(dim=0)
    assert bool((prediction == 1).all())
    truth = np.where(disagree, 0, 1)
    wrong = prediction.numpy() != truth
    tally = UncertaintyTally(list(MEASURES))
    tally.add(wrong.ravel(), {k: v.numpy().ravel() for k, v in maps.items()})
    result = tally.result(Passes(mc_samples=4))
    assert result.measures["mutual_information"].auroc == 1.0
    assert result.measures["spread"].auroc == 1.0
    assert result.measures["one_minus_max"].auroc == 0.5
    assert result.measures["spread"].error_by_decile[-1] == 1.0
