"""Small utilities: the bottom layer with :mod:`glacier.errors` (imports nothing above).

Atomic file writes and fingerprints (:mod:`~glacier.utils.io`), scene and output names
(:mod:`~glacier.utils.names`), ranks and shared run folders (:mod:`~glacier.utils.cluster`),
progress bars, results in order in this process or joblib's (:mod:`~glacier.utils.parallel`),
runtime tuning, a function in a forked child (:mod:`~glacier.utils.forked`),
repeatable CPU runs and shared Optuna storage.

Import from the modules (nothing is imported here, so using one costs only that one).
"""

__all__ = [
    "cluster",
    "forked",
    "io",
    "names",
    "parallel",
    "progress",
    "reproducibility",
    "runtime",
    "sweeps",
]
