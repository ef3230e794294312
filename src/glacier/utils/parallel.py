"""Results of a function over items, in order: in this process, or by joblib's workers.

joblib (with loky, psutil and asyncio) takes ~35 ms to import: a run of one job at a time
(``n_jobs=1``, the preprocessing default) never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def ordered_results(
    function: Callable[[Item], Result], items: Iterable[Item], n_jobs: int = 1
) -> Iterator[Result]:
    """``function(item)`` for each item, in order, as each is ready.

    Args:
        function: What to compute.
        items: Its arguments.
        n_jobs: 1: one after the other in this process (joblib is not imported); otherwise
            joblib's ``Parallel(n_jobs)`` (-1: every core).

    Returns:
        A generator of the results (an error raised by ``function`` is raised from it).
    """
    if n_jobs == 1:
        return (function(item) for item in items)
    from joblib import Parallel, delayed

    runner = Parallel(n_jobs=n_jobs, return_as="generator")
    results: Iterator[Result] = runner(delayed(function)(item) for item in items)
    return results
