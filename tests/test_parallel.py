"""Results in order, in this process or by joblib's workers (glacier.utils.parallel)."""

from __future__ import annotations

import operator

import pytest

from glacier.utils.parallel import ordered_results


def test_one_job_runs_in_this_process_lazily_and_in_order() -> None:
    calls: list[int] = []

    def square(value: int) -> int:
        calls.append(value)
        return value * value

    results = ordered_results(square, [3, 1, 2])
    assert calls == []  # nothing runs before the first result is asked for
    assert next(results) == 9 and calls == [3]
    assert list(results) == [1, 4]


def test_two_jobs_give_the_same_results_in_the_same_order() -> None:
    items = list(range(-5, 6))
    assert list(ordered_results(operator.neg, items, n_jobs=2)) == [-i for i in items]


def reciprocal(value: float) -> float:
    """1 / value (a module-level function: joblib's workers unpickle it)."""
    return 1 / value


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_an_error_of_the_function_reaches_the_caller(n_jobs: int) -> None:
    with pytest.raises(ZeroDivisionError):
        list(ordered_results(reciprocal, [1.0, 0.0], n_jobs=n_jobs))
