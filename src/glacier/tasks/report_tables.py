"""Text and Markdown tables of demo metrics (:func:`glacier.tasks.report.demo_metrics`).

The README's demo table is :func:`readme_table` of the committed ``docs/demo_metrics.json``;
:func:`parse_readme_table` reads it back so a test can check that the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from glacier.tasks.report_uncertainty import (
    format_uncertainty,
    format_uncertainty_seed_summary,
    uncertainty_seed_summary,
)

EVALUATIONS = {
    "test_split": "held-out test split",
    "test_region_map": "held-out test region, scene map",
    "full_scene": "full scene (incl. training area)",
}
NOTES = {
    "test_split": "test slices, best checkpoint, as the training run's test step scores them",
    "test_region_map": "the full-scene map, scored on the test slices' pixels only",
    "full_scene": "includes the pixels the model was trained on: not a held-out score",
}
METRICS = ("iou", "precision", "recall", "f1")
TABLE_HEADER = (
    "| evaluation | class | IoU | precision | recall | F1 | predicted km² | reference km² |\n"
    "|---|---|---|---|---|---|---|---|"
)
MEAN_ROW = "mean IoU"


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _area(evaluation: dict[str, Any], kind: str, name: str) -> float | None:
    areas = evaluation.get("areas_km2")
    return None if not areas else areas[kind].get(name)


def evaluation_rows(evaluation: dict[str, Any]) -> list[list[str]]:
    """Table rows (class, IoU, precision, recall, F1, predicted km², reference km²)."""
    metrics = evaluation["metrics"]
    rows = []
    for name in evaluation["classes"]:
        cells = [_cell(metrics.get(f"{m}/{name}")) for m in METRICS]
        areas = [_cell(_area(evaluation, k, name), 1) for k in ("predicted", "reference")]
        rows.append([name, *cells, *areas])
    rows.append([MEAN_ROW, _cell(metrics.get("iou_mean")), "", "", "", "", ""])
    return rows


def readme_table(metrics: dict[str, Any]) -> str:
    """The README's demo table (Markdown) for ``docs/demo_metrics.json``.

    Args:
        metrics: :func:`glacier.tasks.report.demo_metrics` output.

    Returns:
        One row per evaluation and class plus a mean-IoU row per evaluation.
    """
    lines = [TABLE_HEADER]
    for key, label in EVALUATIONS.items():
        evaluation = metrics["evaluations"].get(key)
        if evaluation is None:
            continue
        for row in evaluation_rows(evaluation):
            if row[0] == MEAN_ROW:
                row = [f"**{MEAN_ROW}**", f"**{row[1]}**", *row[2:]]
            lines.append("| " + " | ".join([label, *row]) + " |")
    return "\n".join(lines)


def _number(cell: str) -> float | None:
    text = cell.strip().strip("*").strip()
    return None if text in ("", "–", "-") else float(text)


def parse_readme_table(text: str) -> dict[tuple[str, str], list[float | None]]:
    """Read a demo table back from Markdown (e.g. the README).

    Args:
        text: Markdown holding a table that starts with :data:`TABLE_HEADER`'s first line.

    Returns:
        ``{(evaluation label, class or "mean IoU"): [IoU, precision, recall, F1, predicted km²,
        reference km²]}`` with None for empty cells.

    Raises:
        ValueError: If there is no such table.
    """
    header = TABLE_HEADER.splitlines()[0]
    start = text.find(header)
    if start < 0:
        raise ValueError("no demo metrics table found")
    rows: dict[tuple[str, str], list[float | None]] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.sub(r"\*", "", cells[1]).strip()
        rows[(cells[0], name)] = [_number(c) for c in cells[2:]]
    return rows


def expected_rows(metrics: dict[str, Any]) -> dict[tuple[str, str], list[float | None]]:
    """What :func:`parse_readme_table` must find for ``metrics``, rounded as the table rounds."""
    return parse_readme_table(readme_table(metrics))


def _training_line(training: dict[str, Any]) -> list[str]:
    fired = training.get("max_time_fired")
    limit = training.get("max_time")
    if not limit:
        ending = "no max_time"
    else:
        ending = f"max_time {limit:.0f} s {'FIRED' if fired else 'did not fire'}"
    line = (
        f"Training: seed {training.get('seed')}, {training.get('epochs')} epochs / "
        f"{training.get('global_step')} steps, {training.get('threads')} threads, "
        f"deterministic kernels: {training.get('deterministic')}, test-time augmentation: "
        f"{training.get('tta')}, temperature {training.get('temperature', 1.0):.3f}; {ending}"
    )
    if not fired:
        return [line]
    warning = (
        "!!! WARNING: max_time stopped training before its epoch/step budget. These numbers "
        "depend on this machine's speed and load and will NOT repeat; raise trainer.max_time "
        "or run on a quieter machine. !!!"
    )
    return ["!" * 100, warning, "!" * 100, line]


def format_evaluation(key: str, evaluation: dict[str, Any]) -> list[str]:
    """An aligned text table of one evaluation, titled with its label and what it measures."""
    head = f"{'class':<10} {'IoU':>6} {'prec':>6} {'recall':>6} {'F1':>6} {'pred km2':>9} "
    head += f"{'ref km2':>9}"
    lines = [f"{evaluation['label'].upper()}: {NOTES[key]}", head, "-" * len(head)]
    for row in evaluation_rows(evaluation):
        cells = [f"{c:>6}" for c in row[1:5]] + [f"{c:>9}" for c in row[5:]]
        lines.append(f"{row[0]:<10} " + " ".join(cells).rstrip())
    return lines


def format_summary(metrics: dict[str, Any]) -> str:
    """The ``glacier report`` text of one run."""
    lines = [f"Demo run: {metrics['run_dir']}", *_training_line(metrics["training"]), ""]
    for key, evaluation in metrics["evaluations"].items():
        lines += [*format_evaluation(key, evaluation), ""]
    uncertainty = format_uncertainty(metrics.get("uncertainty"))
    lines += [*uncertainty, ""] if uncertainty else []
    checkpoint = metrics["training"].get("best_checkpoint")
    if checkpoint:
        lines.append(f"checkpoint   {checkpoint}")
    for scene, outputs in metrics["outputs"].items():
        lines.append(f"Maps of {scene}:")
        lines += [f"  {name:12s} {path}" for name, path in outputs.items()]
    if metrics.get("notes"):  # what could not be scored, and why
        lines += ["", "Not scored:", *(f"  {note}" for note in metrics["notes"])]
    return "\n".join(lines).rstrip()


def seed_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof 1) of every metric over several runs.

    Args:
        runs: :func:`glacier.tasks.report.demo_metrics` of each run (e.g. one per seed).

    Returns:
        ``{"runs", "seeds", "max_time_fired", "evaluations": {key: {"label", "mean", "std",
        "values"}}}``; a metric missing from a run is left out of its statistics.
    """
    evaluations: dict[str, Any] = {}
    for key, label in EVALUATIONS.items():
        found = [run["evaluations"][key] for run in runs if key in run["evaluations"]]
        if not found:
            continue
        values: dict[str, list[float]] = {}
        for evaluation in found:
            for name, value in evaluation["metrics"].items():
                if value is not None:
                    values.setdefault(name, []).append(float(value))
        evaluations[key] = {
            "label": label,
            "mean": {k: float(np.mean(v)) for k, v in values.items()},
            "std": {k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()},
            "values": values,
        }
    return {
        "runs": [run["run_dir"] for run in runs],
        "seeds": [run["training"].get("seed") for run in runs],
        "max_time_fired": [bool(run["training"].get("max_time_fired")) for run in runs],
        "evaluations": evaluations,
        "uncertainty": uncertainty_seed_summary([run.get("uncertainty") for run in runs]),
    }


def format_seed_summary(summary: dict[str, Any]) -> str:
    """The ``glacier report`` text of a multi-seed folder: mean ± std per metric."""
    lines = [f"{len(summary['runs'])} runs, seeds {summary['seeds']}: mean ± std (ddof 1)"]
    if any(summary["max_time_fired"]):
        lines.append(
            "!!! WARNING: max_time cut training short in runs "
            f"{[r for r, f in zip(summary['runs'], summary['max_time_fired'], strict=True) if f]}"
        )
    for evaluation in summary["evaluations"].values():
        lines.append(f"{evaluation['label'].upper()}:")
        for name, mean in evaluation["mean"].items():
            lines.append(f"  {name:<22} {mean:.3f} ± {evaluation['std'][name]:.3f}")
    lines += format_uncertainty_seed_summary(summary.get("uncertainty"))
    return "\n".join(lines)
