"""The cross-validation part of ``glacier report``: folds, the policy, single models vs ensemble.

``glacier report run_dir=DIR`` on a sweep folder over ``split.fold`` (or on a folder whose
``train/`` is one, as ``make demo-ensemble`` writes, with the ensemble's map in ``predict/``)
shows the checkpoint policy chosen on the folds' mean dev curve, the single models' held-out
test scores as mean ± std over the folds, the ensemble's score on the same test split, side by
side, and the ensemble map's scores (held-out test region, full scene).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glacier.inference.products import read_records
from glacier.tasks.cv import fold_runs, is_cross_validation, read_summary
from glacier.tasks.cv_summary import summarize_sweep
from glacier.tasks.report_regions import scene_evaluations
from glacier.tasks.report_tables import EVALUATIONS, format_evaluation
from glacier.tasks.report_uncertainty import format_uncertainty, uncertainty_block

FORMAT = 1
SHOWN_MEASURES = ("one_minus_max", "mutual_information", "spread")


def cv_folder(run_dir: Path) -> Path | None:
    """The sweep folder of a cross-validation at ``run_dir`` or ``run_dir/train`` (or None)."""
    for folder in (run_dir, run_dir / "train"):
        if folder.is_dir() and (
            read_summary(folder) is not None or is_cross_validation(fold_runs(folder))
        ):
            return folder
    return None


def cv_metrics(run_dir: Path, sweep: Path) -> dict[str, Any]:
    """Everything ``glacier report`` shows of a cross-validation (and its ensemble's map).

    Args:
        run_dir: The report's folder (``predict/`` in it: the ensemble's map, if any).
        sweep: The sweep folder (:func:`cv_folder`).

    Returns:
        ``{"format", "run_dir", "cv": cv.json's content, "evaluations", "uncertainty"}``;
        without ``cv.json`` the policy and fold statistics are computed (no ensemble test).
    """
    summary = read_summary(sweep) or summarize_sweep(sweep, test_ensemble=False, write=False)
    assert summary is not None
    runs = fold_runs(sweep)
    processed = (runs[0].metrics.get("data") or {}).get("processed_dir") if runs else None
    quality: dict[str, Any] = {}
    predict = run_dir / "predict"
    predictions = read_records(predict) if predict.is_dir() else []
    maps, written = scene_evaluations(predictions, processed, quality)
    first: dict[str, Any] = next(iter(quality.values()), {})
    passes = first.get("passes") or {}
    temperatures = {"members": passes.get("member_temperatures") or [passes.get("temperature")]}
    data_name = (runs[0].metrics.get("choices") or {}).get("data") if runs else None
    evaluations = {
        key: {"label": EVALUATIONS[key], **{k: value.get(k) for k in ("classes", "metrics")}}
        for key, value in maps.items()
    }
    return {
        "format": FORMAT,
        "run_dir": str(run_dir),
        "cv": summary,
        "evaluations": evaluations,
        "uncertainty": uncertainty_block(quality, written, temperatures, data_name),
    }


def _classes(metrics: dict[str, Any]) -> list[str]:
    names = [k.removeprefix("test/iou_") for k in metrics if k.startswith("test/iou_")]
    return [n for n in names if n not in ("mean", "background")]


def _pm(stats: dict[str, Any], key: str) -> str:
    value = stats.get(key)
    return "–" if value is None else f"{value['mean']:.3f} ± {value['std']:.3f}"


def _value(metrics: dict[str, Any], key: str) -> str:
    return _number(metrics.get(key))


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def test_split_lines(summary: dict[str, Any]) -> list[str]:
    """Single models (mean ± std over folds) and ensembles, per policy, on the test split."""
    chosen = summary["policy"]["chosen"]
    single = summary.get("single") or {}
    first: dict[str, Any] = next(iter(single.values()), {})
    classes = _classes({k: 0 for k in first})
    keys = ["test/iou_mean", *(f"test/iou_{c}" for c in classes)]
    names = ["mean IoU", *(f"IoU {c}" for c in classes)]
    head = f"{'':<44}" + "".join(f"{n:>17}" for n in names)
    lines = ["HELD-OUT TEST SPLIT (test slices, the test step: TTA views of every model)", head]
    count = len(summary["runs"])
    for policy, stats in single.items():
        mark = " *" if policy == chosen else ""
        label = f"single model, {policy} checkpoint{mark} ({count} folds)"
        lines.append(f"{label:<44}" + "".join(f"{_pm(stats, k):>17}" for k in keys))
        ensemble = (summary.get("ensemble") or {}).get(policy)
        if ensemble:
            label = f"ensemble of the {count} {policy} checkpoints{mark}"
            cells = "".join(f"{_value(ensemble['test'], k):>17}" for k in keys)
            gain = ensemble["test"]["test/iou_mean"] - stats["test/iou_mean"]["mean"]
            lines.append(f"{label:<44}{cells}   ({gain:+.3f} mean IoU)")
    return [*lines, "* the policy chosen on the folds' mean dev curve"]


def uncertainty_lines(summary: dict[str, Any]) -> list[str]:
    """AUROC of the measures and ECE of the test passes: single models vs the ensemble."""
    chosen = summary["policy"]["chosen"]
    single = (summary.get("single_uncertainty") or {}).get(chosen) or {}
    ensemble = ((summary.get("ensemble") or {}).get(chosen) or {}).get("uncertainty")
    if not single and not ensemble:
        return []
    head = f"{'':<44}" + "".join(f"{m:>22}" for m in SHOWN_MEASURES) + f"{'ECE':>17}"
    lines = [
        f"UNCERTAINTY OF THE TEST PASSES ({chosen} checkpoints): AUROC as error detector",
        head,
    ]
    if single:
        cells = "".join(f"{_pm(single['auroc'], m):>22}" for m in SHOWN_MEASURES)
        lines.append(f"{'single model (mean ± std over folds)':<44}{cells}{_pm(single, 'ece'):>17}")
    if ensemble:
        auroc = {m: r.get("auroc") for m, r in ensemble["measures"].items()}
        cells = "".join(f"{_value(auroc, m):>22}" for m in SHOWN_MEASURES)
        ece = _value(ensemble["calibration"], "ece")
        lines.append(f"{'ensemble (every member x view pass)':<44}{cells}{ece:>17}")
    return lines


def calibration_lines(calibration: dict[str, Any] | None) -> list[str]:
    """The cross-fitted temperature against one-strip temperatures and none."""
    if not calibration:
        return []
    dev = calibration["dev_ece_leave_one_fold_out"]["mean"]
    own = ", ".join(f"{t:.3f}" for t in calibration["fold_temperatures"])
    lines = [
        f"CALIBRATION ACROSS FOLDS: one temperature fitted on every fold's out-of-fold dev "
        f"logits: T = {calibration['pooled_temperature']:.3f} (the folds' own: {own})",
        f"  dev ECE, leave one fold out: pooled T {dev['pooled']:.3f}, another fold's "
        f"one-strip T {dev['one_strip']:.3f}, no T {dev['none']:.3f}"
        + (f"; chosen for predict: {calibration['chosen']}" if calibration.get("chosen") else ""),
    ]
    for key, label in (("with_pooled", "the pooled T"), ("without", "no T")):
        tested = calibration.get(f"ensemble_{key}_temperature") or {}
        quality = tested.get("uncertainty") or {}
        ece = (quality.get("calibration") or {}).get("ece")
        auroc = ((quality.get("measures") or {}).get("mutual_information") or {}).get("auroc")
        iou = (tested.get("test") or {}).get("test/iou_mean")
        if tested:
            lines.append(
                f"  ensemble test with {label}: mean IoU {_number(iou)}, ECE {_number(ece)}, "
                f"mutual information AUROC {_number(auroc)}"
            )
    return lines


def format_cv_summary(summary: dict[str, Any]) -> str:
    """The text of ``cv.json``: folds, the policy, single models vs ensembles."""
    policy = summary["policy"]
    lines = [
        f"CROSS-VALIDATION: {len(summary['runs'])} folds (runs {' '.join(summary['runs'])}) "
        f"in {summary['folder']}",
        f"Checkpoint policy: {policy['chosen'].upper()} ({policy['reason']})",
        "",
        *test_split_lines(summary),
    ]
    for part in (uncertainty_lines(summary), calibration_lines(summary.get("calibration"))):
        lines += ["", *part] if part else []
    if not summary.get("ensemble"):
        lines += ["", "(ensembles not tested: cv.json is written at the end of the sweep)"]
    return "\n".join(lines)


def format_cv_report(result: dict[str, Any]) -> str:
    """The ``glacier report`` text of a cross-validation and its ensemble's map."""
    lines = [format_cv_summary(result["cv"]), ""]
    for key, evaluation in result["evaluations"].items():
        lines += [f"ENSEMBLE MAP, {' '.join(format_evaluation(key, evaluation)[:1])}"]
        lines += [*format_evaluation(key, evaluation)[1:], ""]
    uncertainty = format_uncertainty(result.get("uncertainty"))
    return "\n".join([*lines, *uncertainty]).rstrip()
