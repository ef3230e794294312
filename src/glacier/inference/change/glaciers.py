"""Per-glacier change between two dates, on the pixels observed at both.

Both dates' maps are first cut to the pixels valid in both (a cloud or a scene edge at either
date removes the pixel from both), then summed per inventory glacier as the single-date answers
are (:mod:`glacier.inference.glaciers`): so unobserved pixels never count as loss, and the
boundary interval (± half a pixel along each date's mapped outline) is each date's own. Where
the runs wrote per-glacier tables with MC-pass intervals, their relative spread is carried over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd

from glacier.data.contract import IGNORE_INDEX
from glacier.data.labels import Inventory
from glacier.inference.glaciers import GlacierSums

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class DatedSums:
    """Per-glacier sums of one date on the pixels observed at both dates.

    Attributes:
        sums: The sums (mapped area per class, reference, boundary edges).
        acquired: Acquisition date of each glacier's scene (None where absent).
        pass_spread: (N, 2) relative low/high of the run's MC-pass interval (NaN: none).
    """

    sums: GlacierSums
    acquired: np.ndarray
    pass_spread: np.ndarray


def common_maps(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both class maps with every pixel that is nodata at either date set to nodata."""
    unobserved = (before == IGNORE_INDEX) | (after == IGNORE_INDEX)
    return np.where(unobserved, IGNORE_INDEX, before), np.where(unobserved, IGNORE_INDEX, after)


def pass_spread(inventory: Inventory, table: pd.DataFrame | None) -> np.ndarray:
    """(N, 2) passes_low/mapped and passes_high/mapped of a run's per-glacier table, by id."""
    spread = np.full((len(inventory), 2), np.nan)
    if table is None or "passes_low_km2" not in table:
        return spread
    rows = table.set_index(table["glacier_id"].astype(str))
    for number, glacier in enumerate(inventory.frame["glacier_id"]):
        if glacier in rows.index:
            row = rows.loc[glacier]
            if row["mapped_km2"] > 0 and row["passes"] > 0:
                spread[number] = [
                    row["passes_low_km2"] / row["mapped_km2"],
                    row["passes_high_km2"] / row["mapped_km2"],
                ]
    return spread


def _years(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    days = [
        (a - b).days if isinstance(a, date) and isinstance(b, date) else np.nan
        for b, a in zip(before, after, strict=True)
    ]
    return np.asarray(days, dtype=float) / DAYS_PER_YEAR


def change_table(
    inventory: Inventory,
    before: DatedSums,
    after: DatedSums,
    cut: np.ndarray,
    class_names: Sequence[str],
) -> gpd.GeoDataFrame:
    """Per-glacier area at both dates with intervals, and the change (km², %, %/yr).

    Args:
        inventory: The inventory.
        before: Sums of the earlier date (common pixels).
        after: Sums of the later date (common pixels).
        cut: (N,) outline reaches beyond the compared scenes.
        class_names: The model's classes.

    Returns:
        One row per glacier observed at both dates, in the inventory's CRS.
    """
    seen = np.flatnonzero((after.sums.scenes > 0) & (after.sums.inside_km2 > 0))
    frame = inventory.frame.iloc[seen].copy()
    dates: dict[str, np.ndarray] = {}
    for name, dated in (("before", before), ("after", after)):
        mapped = dated.sums.mapped_km2[seen, 1:].sum(axis=1)
        edges = dated.sums.edges_km2[seen]
        frame[f"{name}_date"] = [d.isoformat() if d else None for d in dated.acquired[seen]]
        frame[f"{name}_km2"] = mapped
        frame[f"{name}_low_km2"] = np.maximum(mapped - edges, 0.0)
        frame[f"{name}_high_km2"] = mapped + edges
        frame[f"{name}_passes_low_km2"] = mapped * dated.pass_spread[seen, 0]
        frame[f"{name}_passes_high_km2"] = mapped * dated.pass_spread[seen, 1]
        dates[name] = dated.acquired[seen]
    years = _years(dates["before"], dates["after"])
    change = frame["after_km2"] - frame["before_km2"]
    frame["years"] = years
    frame["change_km2"] = change
    frame["change_low_km2"] = frame["after_low_km2"] - frame["before_high_km2"]
    frame["change_high_km2"] = frame["after_high_km2"] - frame["before_low_km2"]
    frame["change_passes_low_km2"] = frame["after_passes_low_km2"] - frame["before_passes_high_km2"]
    frame["change_passes_high_km2"] = (
        frame["after_passes_high_km2"] - frame["before_passes_low_km2"]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = np.where(frame["before_km2"] > 0, 100 * change / frame["before_km2"], np.nan)
        frame["change_pct"] = percent
        frame["change_pct_per_year"] = percent / years
        frame["change_km2_per_year"] = change / years
    observed = after.sums.reference_km2[seen]
    inside = after.sums.inside_km2[seen]
    frame["observed_share"] = np.where(inside > 0, observed / np.maximum(inside, 1e-12), 0.0)
    frame["cut_by_edge"] = cut[seen]
    geometry = frame.pop("geometry")
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=inventory.frame.crs).reset_index(
        drop=True
    )


def change_summary(table: pd.DataFrame) -> dict[str, float]:
    """Totals over the glaciers observed at both dates (km², %, %/yr)."""
    before, after = float(table["before_km2"].sum()), float(table["after_km2"].sum())
    years = float(np.nanmedian(table["years"])) if len(table) else float("nan")
    change = after - before
    percent = 100 * change / before if before > 0 else float("nan")
    return {
        "glaciers": float(len(table)),
        "before_km2": before,
        "after_km2": after,
        "change_km2": change,
        "change_low_km2": float(table["change_low_km2"].sum()),
        "change_high_km2": float(table["change_high_km2"].sum()),
        "change_pct": percent,
        "years": years,
        "change_pct_per_year": percent / years if years else float("nan"),
    }


def format_change(summary: dict[str, float], table: pd.DataFrame, count: int = 10) -> str:
    """Text summary: totals, then the glaciers with the largest losses."""
    lines = [
        f"{int(summary['glaciers'])} glaciers observed at both dates, "
        f"{summary['years']:.2f} years apart: {summary['before_km2']:.2f} → "
        f"{summary['after_km2']:.2f} km², change {summary['change_km2']:+.2f} km² "
        f"({summary['change_low_km2']:+.2f} to {summary['change_high_km2']:+.2f}), "
        f"{summary['change_pct']:+.1f} %, {summary['change_pct_per_year']:+.2f} %/yr",
        f"{'glacier':<16} {'before':>8} {'after':>8} {'change':>8} {'interval':>17} {'%/yr':>7}",
    ]
    for row in table.sort_values("change_km2").head(count).itertuples():
        interval = f"{row.change_low_km2:+.2f}…{row.change_high_km2:+.2f}"
        lines.append(
            f"{row.glacier_id:<16} {row.before_km2:>8.2f} {row.after_km2:>8.2f} "
            f"{row.change_km2:>+8.2f} {interval:>17} {row.change_pct_per_year:>+7.2f}"
        )
    return "\n".join(lines)
