"""Cross-validation sweeps: the folds' runs, the checkpoint policy chosen on their mean.

``glacier train -m split=everest_folds 'split.fold=0,1,2,3,4' checkpoint=cv`` writes one run per
fold into Hydra's sweep folder (``0/`` … ``4/``, each with ``metrics.json`` and
``checkpoints/best.ckpt``, ``last.ckpt``). The choice between the best-on-dev and the last
checkpoint is made on the folds' mean dev curve, with a one-standard-error rule
(:func:`choose_policy`): comparing each fold's best dev score with its last one would always
pick ``best`` (the best on dev is, by construction, at least the last on that same dev).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glacier.errors import GlacierInputError

METRICS_FILE = "metrics.json"
SUMMARY_FILE = "cv.json"  # written into the sweep folder at the end of a cross-validation sweep
POLICIES = ("best", "last")


@dataclass(frozen=True)
class FoldRun:
    """One training run of a sweep folder.

    Attributes:
        path: The run folder.
        metrics: Its ``metrics.json``.
    """

    path: Path
    metrics: dict[str, Any]

    @property
    def fold(self) -> int | None:
        """The cross-validation fold it trained (None: not a fold run)."""
        fold = (self.metrics.get("data") or {}).get("fold")
        return None if fold is None else int(fold)

    @property
    def dev_curve(self) -> list[tuple[int, float]]:
        """``(epoch, monitored dev score)`` after every validation."""
        return [(int(e), float(v)) for e, v in self.metrics.get("dev_curve") or []]

    def checkpoint(self, policy: str) -> Path:
        """The run's ``best.ckpt`` or ``last.ckpt``.

        Raises:
            GlacierInputError: If that file is not there.
        """
        path = self.path / "checkpoints" / f"{policy}.ckpt"
        if not path.is_file():
            raise GlacierInputError(
                f"{self.path}: no checkpoints/{policy}.ckpt (train with callbacks=default)"
            )
        return path

    def test(self, policy: str) -> dict[str, float] | None:
        """The test metrics of its ``policy`` checkpoint, when that one was tested."""
        tested = (self.metrics.get("tests") or {}).get(policy) or {}
        return tested.get("test") or None


def fold_runs(folder: Path) -> list[FoldRun]:
    """The runs directly inside ``folder`` (those with a ``metrics.json``), by fold then name."""
    runs = []
    for path in sorted(p for p in folder.iterdir() if (p / METRICS_FILE).is_file()):
        runs.append(FoldRun(path, json.loads((path / METRICS_FILE).read_text())))
    return sorted(runs, key=lambda r: (r.fold if r.fold is not None else math.inf, r.path.name))


def is_cross_validation(runs: list[FoldRun]) -> bool:
    """Whether the runs are the folds of one cross-validation (several, each fold once)."""
    folds = [run.fold for run in runs]
    sources = {(run.metrics.get("data") or {}).get("processed_dir") for run in runs}
    return (
        len(runs) > 1
        and None not in folds
        and len(set(folds)) == len(folds) == len(runs)
        and (len(sources) == 1)
    )


@dataclass(frozen=True)
class PolicyChoice:
    """The checkpoint policy chosen on the folds' mean dev curve (one-standard-error rule).

    Attributes:
        chosen: ``best`` or ``last``.
        reason: One sentence: the numbers behind the choice.
        epochs: Epochs every fold validated at.
        mean: Mean dev score over the folds at each of those epochs.
        sem: Its standard error (sample std over the folds / sqrt(folds)).
        best_epoch: The epoch of the highest mean.
        last_mean: Mean over the folds of each fold's last dev score.
    """

    chosen: str
    reason: str
    epochs: list[int]
    mean: list[float]
    sem: list[float]
    best_epoch: int | None
    last_mean: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def choose_policy(curves: list[list[tuple[int, float]]]) -> PolicyChoice:
    """``best`` only if stopping early beats training to the end by more than one standard error.

    The folds' dev curves are averaged epoch by epoch; at the epoch where the mean is highest
    it is compared with the mean of the folds' last scores. ``last`` (no selection, so no
    selection bias) is kept unless the highest mean exceeds it by more than its standard error
    over the folds; then ``best`` (each fold's best on its own dev) is chosen. With one fold, or
    no curves, there is no standard error: ``best``, as a single run does.

    Args:
        curves: Per fold, ``(epoch, dev score)`` points.

    Returns:
        The choice and the numbers behind it.
    """
    usable = [dict(curve) for curve in curves if curve]
    if len(usable) < 2:
        return PolicyChoice("best", "fewer than 2 folds with a dev curve", [], [], [], None, None)
    epochs = sorted(set.intersection(*(set(curve) for curve in usable)))
    values = np.array([[curve[e] for e in epochs] for curve in usable])
    mean = values.mean(axis=0)
    sem = values.std(axis=0, ddof=1) / math.sqrt(len(usable))
    top = int(np.argmax(mean))
    last_mean = float(np.mean([curve[max(curve)] for curve in usable]))
    margin = float(mean[top] - last_mean)
    chosen = "best" if margin > sem[top] else "last"
    reason = (
        f"mean dev score over {len(usable)} folds: {mean[top]:.4f} at epoch {epochs[top]} "
        f"(standard error {sem[top]:.4f}), {last_mean:.4f} at the end of training: "
        f"{'more' if chosen == 'best' else 'not more'} than one standard error apart"
    )
    return PolicyChoice(chosen, reason, epochs, mean.tolist(), sem.tolist(), epochs[top], last_mean)


def fold_statistics(runs: list[FoldRun], policy: str) -> dict[str, dict[str, Any]]:
    """Mean ± sample std (ddof 1) over the folds of each test metric of ``policy``'s checkpoint.

    Returns:
        ``{metric: {"mean", "std", "values"}}`` over the folds whose checkpoint was tested.
    """
    values: dict[str, list[float]] = {}
    for run in runs:
        for name, value in (run.test(policy) or {}).items():
            values.setdefault(name, []).append(float(value))
    return {name: _mean_std(found) for name, found in values.items()}


def _mean_std(values: list[float]) -> dict[str, Any]:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "values": values}


def uncertainty_statistics(runs: list[FoldRun], policy: str) -> dict[str, Any]:
    """Mean ± std over the folds of the test passes' uncertainty quality (``policy``'s checkpoint).

    Returns:
        ``{"auroc": {measure: {"mean", "std", "values"}}, "ece": …, "ece_uncalibrated": …}``
        over the folds whose test step scored it.
    """
    found = [
        block
        for run in runs
        if (block := ((run.metrics.get("tests") or {}).get(policy) or {}).get("uncertainty"))
    ]
    auroc: dict[str, list[float]] = {}
    ece: dict[str, list[float]] = {"ece": [], "ece_uncalibrated": []}
    for block in found:
        for name, ranking in block["measures"].items():
            if ranking.get("auroc") is not None:
                auroc.setdefault(name, []).append(float(ranking["auroc"]))
        for key, part in (("ece", "calibration"), ("ece_uncalibrated", "uncalibrated")):
            value = (block.get(part) or {}).get("ece")
            if value is not None:
                ece[key].append(float(value))
    result: dict[str, Any] = {"auroc": {k: _mean_std(v) for k, v in auroc.items()}}
    result |= {key: _mean_std(values) for key, values in ece.items() if values}
    return result


def read_summary(folder: Path) -> dict[str, Any] | None:
    """The sweep's ``cv.json``, if written."""
    path = folder / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def sweep_policy(folder: Path, runs: list[FoldRun]) -> str:
    """``checkpoint=auto`` for a folder of runs: the sweep's choice on the CV mean, else best."""
    summary = read_summary(folder)
    if summary and summary.get("policy", {}).get("chosen") in POLICIES:
        return str(summary["policy"]["chosen"])
    if is_cross_validation(runs):
        return choose_policy([run.dev_curve for run in runs]).chosen
    return "best"


CALIBRATIONS = ("none", "pooled", "one_strip")  # cv.json's candidates for an ensemble's temperature


@dataclass(frozen=True)
class SweepCalibration:
    """The temperature a cross-validation sweep's dev logits choose for its ensemble.

    Attributes:
        chosen: ``none`` (1), ``pooled`` (one temperature fitted on every fold's out-of-fold
            dev logits) or ``one_strip`` (each member its own, fitted on its one dev strip):
            the lowest mean dev ECE, leave one fold out (``cv.json``'s ``calibration``).
        temperature: The temperature every member uses; None for ``one_strip``.
        dev_ece: The mean leave-one-fold-out dev ECE of each candidate.
    """

    chosen: str
    temperature: float | None
    dev_ece: dict[str, float]


def sweep_calibration(folder: Path) -> SweepCalibration | None:
    """The ensemble temperature a sweep's ``cv.json`` supports, or None without one."""
    summary = read_summary(folder)
    return choose_calibration((summary or {}).get("calibration") or {})


def choose_calibration(calibration: dict[str, Any]) -> SweepCalibration | None:
    """The candidate with the lowest mean leave-one-fold-out dev ECE (None: not measured).

    Args:
        calibration: ``cv.json``'s ``calibration`` block.
    """
    mean = (calibration.get("dev_ece_leave_one_fold_out") or {}).get("mean") or {}
    scored = {name: float(mean[name]) for name in CALIBRATIONS if mean.get(name) is not None}
    if not scored:
        return None
    chosen = min(scored, key=lambda name: scored[name])
    temperature = {"none": 1.0, "pooled": calibration.get("pooled_temperature")}.get(chosen)
    return SweepCalibration(chosen, None if temperature is None else float(temperature), scored)
