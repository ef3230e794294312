"""How well a scene map's uncertainty ranks its errors against reference outlines.

Reads ``<scene>_uncertainty_measures.tif`` (every measure the prediction's passes define, one
named band each; see :mod:`glacier.models.uncertainty`) block by block beside the class map,
and tallies each measure's values of right and wrong pixels
(:class:`~glacier.models.UncertaintyTally`): memory stays at one block whatever the scene size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.output_names import UNCERTAINTY
from glacier.models import (
    MEASURES,
    UNCALIBRATED_CONFIDENCE,
    Passes,
    UncertaintyEvaluation,
    UncertaintyTally,
)
from glacier.viz import uncertainty_png


def file_passes(dataset: Any) -> Passes:
    """The passes an uncertainty GeoTIFF's measures come from (its GDAL metadata)."""
    tags = dataset.tags()
    members = tags.get("member_temperatures", "").split()
    return Passes(
        views=int(tags.get("views", 1)),
        mc_samples=int(tags.get("mc_samples", 0)),
        temperature=float(tags.get("temperature", 1.0)),
        members=int(tags.get("members", 1)),
        member_temperatures=tuple(float(t) for t in members),
    )


def band_measures(path: Path) -> list[str]:
    """The measure of each band of an uncertainty GeoTIFF (its band descriptions)."""
    with rasterio.open(path) as src:
        return [str(name) for name in src.descriptions]


def evaluate_uncertainty(
    measures_tif: Path, class_tif: Path, truth: np.ndarray
) -> UncertaintyEvaluation:
    """Score every measure of a map against a reference map on the same grid.

    Args:
        measures_tif: ``<scene>_uncertainty_measures.tif``.
        class_tif: ``<scene>_classes.tif`` (the map whose errors are ranked).
        truth: (H, W) reference classes (``IGNORE_INDEX`` = not scored, e.g. outside a region).

    Returns:
        AUROC, AP, AURC and error rate by decile per measure; calibration (and without the
        temperature, when the file holds that confidence).
    """
    with rasterio.open(measures_tif) as measures, rasterio.open(class_tif) as classes:
        names = [str(name) for name in measures.descriptions]
        scored = [name for name in names if name in MEASURES]
        raw = names.index(UNCALIBRATED_CONFIDENCE) if UNCALIBRATED_CONFIDENCE in names else None
        tally = UncertaintyTally(scored, uncalibrated=raw is not None)
        for _, window in classes.block_windows(1):
            block: Window = window
            rows = slice(block.row_off, block.row_off + block.height)
            cols = slice(block.col_off, block.col_off + block.width)
            prediction = classes.read(1, window=block)
            reference = truth[rows, cols]
            valid = (prediction != IGNORE_INDEX) & (reference != IGNORE_INDEX)
            if not valid.any():
                continue
            values = measures.read(window=block)[:, valid]
            tally.add(
                prediction[valid] != reference[valid],
                {name: values[names.index(name)] for name in scored},
                None if raw is None else values[raw],
            )
        return tally.result(file_passes(measures))


def _cell(value: float | None, digits: int = 3) -> str:
    return "  n/a" if value is None else f"{value:.{digits}f}"


def format_uncertainty_table(
    evaluation: UncertaintyEvaluation, written: list[str] | None = None
) -> str:
    """An aligned text table: per measure AUROC, AP, AURC, error rate by decile; calibration.

    Args:
        evaluation: The evaluation.
        written: Measures written as ``_uncertainty.tif`` (marked ``*``).

    Returns:
        The table, headed by the passes, pixels and error rate.
    """
    written = written or []
    rate = evaluation.error_rate
    lines = [
        f"uncertainty from {evaluation.passes.describe()}; {evaluation.pixels:,} pixels, "
        f"error rate {_cell(rate)}, AURC of a perfect measure {_cell(evaluation.aurc_oracle)}",
        f"  {'measure':<22} {'AUROC':>6} {'AP':>6} {'AURC':>6} {'inv':>3}  "
        "error rate by decile, most certain first",
    ]
    for name, ranking in evaluation.measures.items():
        mark = "*" if name in written else " "
        deciles = " ".join(_cell(r, 2) for r in ranking.error_by_decile)
        lines.append(
            f"{mark} {name:<22} {_cell(ranking.auroc):>6} {_cell(ranking.average_precision):>6} "
            f"{_cell(ranking.aurc):>6} {ranking.inversions:>3}  {deciles}"
        )
    calibration = evaluation.calibration
    text = (
        f"  ECE {_cell(calibration.ece)} (10 confidence bins); mean confidence "
        f"{_cell(calibration.mean_confidence)}, accuracy {_cell(calibration.accuracy)}"
    )
    if evaluation.uncalibrated is not None:
        raw = evaluation.uncalibrated
        text += (
            f"; without temperature scaling ECE {_cell(raw.ece)}, mean confidence "
            f"{_cell(raw.mean_confidence)}"
        )
    lines.append(text)
    if written:
        lines.append(f"  * written as {UNCERTAINTY}; inv = deciles whose error rate falls")
    return "\n".join(lines)


def uncertainty_figure(
    evaluation: UncertaintyEvaluation, out_path: Path, title: str, written: list[str]
) -> Path:
    """``<scene>_uncertainty.png``: error rate by decile per measure and reliability diagram.

    Args:
        evaluation: The evaluation to draw.
        out_path: PNG to write.
        title: Figure title (the scene and region).
        written: Measures written as ``_uncertainty.tif`` (labelled so).

    Returns:
        ``out_path``.
    """
    deciles = {
        MEASURES[name].title + (" (written)" if name in written else ""): r.error_by_decile
        for name, r in evaluation.measures.items()
    }
    passes = evaluation.passes
    single = f"temperature {passes.temperature:.3g}"
    scaled = "members' temperatures" if passes.members > 1 else single
    calibrations = {scaled: evaluation.calibration}
    if evaluation.uncalibrated is not None:
        calibrations["without temperature scaling"] = evaluation.uncalibrated
    reliability = {
        f"{label} (ECE {_cell(c.ece)})": [
            (b.lower, b.upper, b.confidence, b.accuracy, b.pixels) for b in c.bins
        ]
        for label, c in calibrations.items()
    }
    heading = f"{title}\n{evaluation.passes.describe()}; {evaluation.pixels:,} pixels"
    bold = next((label for label in deciles if label.endswith("(written)")), None)
    return uncertainty_png(out_path, deciles, evaluation.error_rate, reliability, heading, bold)
