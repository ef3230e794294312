"""The uncertainty part of ``glacier report``: per region, how well each measure ranks errors.

Also calibration before and after temperature scaling, and means over seeds.

Regions: the held-out test split (the training run's test step, its TTA views), and the scene
map scored on the dev region (where the written measure is chosen), the held-out test region
and the full scene (``_uncertainty_measures.tif`` against the reference outlines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from glacier.inference.evaluation import format_uncertainty_table
from glacier.inference.output_names import UNCERTAINTY
from glacier.models import MEASURES, UncertaintyEvaluation

UNCERTAINTY_REGIONS = {
    "test_split": "held-out test split (test step)",
    "dev_region_map": "dev region, scene map",
    "test_region_map": "held-out test region, scene map",
    "full_scene": "full scene (incl. training area)",
}
# Shown with the figures of a data config's runs: what a reader must know about its reference
REFERENCE_NOTES = {
    "everest": (
        "part of the 'errors' are reference errors: 76 of the 86 RGI 6.0 outlines are dated "
        "2002 or 2010, the scene 2000-10-30"
    ),
}
HEADING = (
    "UNCERTAINTY: how well each measure ranks the map's wrong pixels (AUROC: 0.5 chance, "
    "1 perfect; AP: chance = error rate; AURC: lower is better)"
)


def uncertainty_block(
    regions: Mapping[str, dict[str, Any]],
    written: Sequence[str],
    calibration: dict[str, Any] | None,
    data_name: str | None,
) -> dict[str, Any] | None:
    """The report's JSON block of uncertainty figures (None when no region was scored).

    Args:
        regions: Per key of :data:`UNCERTAINTY_REGIONS`, an evaluation
            (:meth:`UncertaintyEvaluation.to_dict`).
        written: The measures of ``_uncertainty.tif``.
        calibration: The training run's temperature fit on dev, or None; for an ensemble
            ``{"members": [each member's temperature]}``.
        data_name: The data config's name (selects the reference note).
    """
    if not regions:
        return None
    return {
        "written": list(written),
        "calibration": calibration,
        "note": REFERENCE_NOTES.get(str(data_name)),
        "regions": {
            key: {"label": label, **regions[key]}
            for key, label in UNCERTAINTY_REGIONS.items()
            if key in regions
        },
    }


def _calibration_line(calibration: dict[str, Any] | None) -> str:
    if not calibration:
        return "Temperature: 1 (not fitted)"
    if "members" in calibration:  # an ensemble: its members' (their own, or the sweep's choice)
        members = ", ".join(f"{t:.3f}" for t in calibration["members"])
        return f"Temperatures of the ensemble's members: {members}"
    fit = calibration
    return (
        f"Temperature {fit['temperature']:.3f}, fitted on {fit['pixels']:,} dev pixels: "
        f"dev NLL {fit['nll_before']:.4f} -> {fit['nll_after']:.4f}, dev ECE "
        f"{fit['ece_before']:.4f} -> {fit['ece_after']:.4f}"
    )


def format_uncertainty(block: dict[str, Any] | None) -> list[str]:
    """Text lines of :func:`uncertainty_block` (empty for None)."""
    if block is None:
        return []
    lines = [HEADING, _calibration_line(block["calibration"])]
    if block.get("note"):
        lines.append(f"Note: {block['note']}")
    for region in block["regions"].values():
        evaluation = UncertaintyEvaluation.from_dict(region)
        lines += ["", f"{region['label'].upper()}:"]
        lines.append(format_uncertainty_table(evaluation, list(block["written"])))
    return lines


def uncertainty_scalars(region: Mapping[str, Any]) -> dict[str, float]:
    """One region's figures as flat scalars (for means over seeds).

    Keys: ``error_rate``, ``ece``, ``ece_uncalibrated``, and per measure ``auroc/<m>``,
    ``ap/<m>``, ``aurc/<m>``, ``inversions/<m>``, ``decile_<d>/<m>`` (d = 1…10).
    """
    evaluation = UncertaintyEvaluation.from_dict(region)
    values: dict[str, float | None] = {
        "error_rate": evaluation.error_rate,
        "ece": evaluation.calibration.ece,
        "ece_uncalibrated": None
        if evaluation.uncalibrated is None
        else evaluation.uncalibrated.ece,
    }
    for name, ranking in evaluation.measures.items():
        values |= {
            f"auroc/{name}": ranking.auroc,
            f"ap/{name}": ranking.average_precision,
            f"aurc/{name}": ranking.aurc,
            f"inversions/{name}": float(ranking.inversions),
        }
        for index, rate in enumerate(ranking.error_by_decile, start=1):
            values[f"decile_{index}/{name}"] = rate
    return {k: float(v) for k, v in values.items() if v is not None}


def uncertainty_seed_summary(blocks: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Mean and sample std (ddof 1) of every uncertainty figure per region over runs."""
    found = [b for b in blocks if b]
    if not found:
        return None
    regions: dict[str, Any] = {}
    for key, label in UNCERTAINTY_REGIONS.items():
        values: dict[str, list[float]] = {}
        for block in found:
            if key in block["regions"]:
                for name, value in uncertainty_scalars(block["regions"][key]).items():
                    values.setdefault(name, []).append(value)
        if values:
            regions[key] = {
                "label": label,
                "mean": {k: float(np.mean(v)) for k, v in values.items()},
                "std": {
                    k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()
                },
                "values": values,
            }
    written = found[0]["written"]
    return {"written": written, "note": found[0].get("note"), "regions": regions}


def _mean_std(region: dict[str, Any], key: str) -> str:
    if key not in region["mean"]:
        return "     n/a     "
    return f"{region['mean'][key]:.3f} ± {region['std'][key]:.3f}"


def format_uncertainty_seed_summary(summary: dict[str, Any] | None) -> list[str]:
    """Text lines of :func:`uncertainty_seed_summary`: per region and measure, mean ± std."""
    if summary is None:
        return []
    lines = [HEADING]
    if summary.get("note"):
        lines.append(f"Note: {summary['note']}")
    for region in summary["regions"].values():
        lines.append(
            f"{region['label'].upper()}:  ECE {_mean_std(region, 'ece')}, "
            f"without temperature scaling {_mean_std(region, 'ece_uncalibrated')}"
        )
        lines.append(
            f"  {'measure':<22} {'AUROC':>13} {'AP':>13} {'AURC':>13}  inversions"
            "  error rate by decile (mean over runs)"
        )
        for name in MEASURES:
            if f"auroc/{name}" not in region["mean"]:
                continue
            mark = "*" if name in summary["written"] else " "
            deciles = [region["mean"].get(f"decile_{d}/{name}") for d in range(1, 11)]
            inversions = sum(
                1 for a, b in pairwise(deciles) if a is not None and b is not None and b < a
            )
            per_run = [int(v) for v in region["values"].get(f"inversions/{name}", [])]
            cells = " ".join(f"{rate:.2f}" for rate in deciles if rate is not None)
            lines.append(
                f"{mark} {name:<22} {_mean_std(region, f'auroc/{name}')} "
                f"{_mean_std(region, f'ap/{name}')} {_mean_std(region, f'aurc/{name}')}  "
                f"{inversions} (runs {per_run})  {cells}"
            )
    lines.append(f"  * written as {UNCERTAINTY}; inversions: deciles whose error rate falls")
    return lines


def _md(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def uncertainty_readme_tables(block: dict[str, Any]) -> str:
    """The README's uncertainty tables (Markdown) of one run's :func:`uncertainty_block`.

    One row per region and measure (AUROC, AP, AURC, inverted deciles), then one row per region
    of calibration (error rate, ECE with and without the temperature, mean confidence).
    """
    lines = [
        "| region | measure | AUROC | AP | AURC | inverted deciles |",
        "|---|---|---|---|---|---|",
    ]
    calibration = [
        "| region | error rate | ECE | ECE without temperature scaling | mean confidence |",
        "|---|---|---|---|---|",
    ]
    for region in block["regions"].values():
        evaluation = UncertaintyEvaluation.from_dict(region)
        for name, ranking in evaluation.measures.items():
            shown = f"**{name}** (written)" if name in block["written"] else name
            cells = [ranking.auroc, ranking.average_precision, ranking.aurc]
            lines.append(
                f"| {region['label']} | {shown} | "
                + " | ".join(_md(c) for c in cells)
                + f" | {ranking.inversions} |"
            )
        raw = evaluation.uncalibrated
        cells = [
            evaluation.error_rate,
            evaluation.calibration.ece,
            None if raw is None else raw.ece,
            evaluation.calibration.mean_confidence,
        ]
        calibration.append(f"| {region['label']} | " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(calibration)
