"""The per-glacier table: inventory vs mapped area with intervals, and what was not seen.

Columns (one row per inventory glacier that reaches the mapped scenes):

- ``glacier_id`` and the inventory's kept columns (``GLIMSId``, ``Name``...),
  ``inventory_area_km2``, ``inventory_date``;
- ``reference_km2``: the outline's area on the scenes' observed pixels (each pixel counted once,
  as the scene evaluation burns it);
- ``mapped_km2`` (every glacier class) and ``mapped_<class>_km2`` per class, inside the outline
  plus the advance buffer; ``difference_km2`` = mapped − reference and ``difference_pct``;
- ``passes_low_km2``/``passes_high_km2``: the spread of the MC passes (or ensemble members):
  min–max with fewer than 20, else the 5–95 % quantiles; ``passes`` says how many (0: none);
- ``boundary_low_km2``/``boundary_high_km2``: mapped ± half a pixel along the mapped boundary
  (the glaciologists' boundary uncertainty);
- ``nodata_share``: share of the outline's in-scene area that is nodata (clouds flagged by the
  QA band, SLC-off stripes, the scene's nodata); ``cut_by_edge``: the outline reaches beyond
  the mapped scenes; ``status``: ``observed``, ``partly observed`` or ``unobserved``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from glacier.data.labels import Inventory
from glacier.inference.glaciers.counts import GlacierSums
from glacier.utils.io import write_gpkg_atomic, write_text_atomic

QUANTILE_PASSES = 20  # from this many passes on, the interval is the 5-95 % range, not min-max
PASS_NOTE = "passes = min–max over the MC passes or ensemble members (5–95 % from 20 on)"
PARTLY_OBSERVED = 0.05  # nodata share above which a glacier is "partly observed"


def pass_interval(passes_km2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per glacier from per-pass areas (P, N): min–max, or 5–95 % from 20 passes.

    Returns NaN where there are no passes.
    """
    count = passes_km2.shape[0]
    if count == 0:
        nan = np.full(passes_km2.shape[1], np.nan)
        return nan, nan.copy()
    if count < QUANTILE_PASSES:
        return passes_km2.min(axis=0), passes_km2.max(axis=0)
    return np.quantile(passes_km2, 0.05, axis=0), np.quantile(passes_km2, 0.95, axis=0)


def _status(nodata_share: np.ndarray, reference_km2: np.ndarray, cut: np.ndarray) -> list[str]:
    status = np.where(
        reference_km2 <= 0,
        "unobserved",
        np.where((nodata_share > PARTLY_OBSERVED) | cut, "partly observed", "observed"),
    )
    statuses: list[str] = status.tolist()
    return statuses


def glacier_table(
    inventory: Inventory,
    sums: GlacierSums,
    class_names: Sequence[str],
    cut: np.ndarray,
) -> gpd.GeoDataFrame:
    """The per-glacier table (see the module doc) for the glaciers the scenes reach.

    Args:
        inventory: The inventory.
        sums: Per-glacier sums over the run's scenes.
        class_names: The model's classes (background excluded), in output order.
        cut: (N,) outline reaches beyond the mapped scenes.

    Returns:
        One row per glacier with a pixel in the scenes, in the inventory's CRS.
    """
    reached = np.flatnonzero(sums.scenes > 0)
    frame = inventory.frame.iloc[reached].copy()
    mapped_by_class = sums.mapped_km2[reached, 1:]
    mapped = mapped_by_class.sum(axis=1)
    reference = sums.reference_km2[reached]
    inside = sums.inside_km2[reached]
    for column, name in enumerate(class_names):
        frame[f"mapped_{name}_km2"] = mapped_by_class[:, column]
    frame["mapped_km2"] = mapped
    frame["reference_km2"] = reference
    frame["difference_km2"] = mapped - reference
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["difference_pct"] = np.where(
            reference > 0, 100 * (mapped - reference) / reference, np.nan
        )
        nodata_share = np.where(inside > 0, 1 - reference / inside, 1.0)
    low, high = pass_interval(sums.passes_km2[:, reached])
    frame["passes"] = sums.passes_km2.shape[0]
    frame["passes_low_km2"] = low
    frame["passes_high_km2"] = high
    edges = sums.edges_km2[reached]
    frame["boundary_low_km2"] = np.maximum(mapped - edges, 0.0)
    frame["boundary_high_km2"] = mapped + edges
    frame["nodata_share"] = np.clip(nodata_share, 0.0, 1.0)
    frame["cut_by_edge"] = cut[reached]
    frame["scenes"] = sums.scenes[reached]
    frame["status"] = _status(frame["nodata_share"].to_numpy(), reference, cut[reached])
    geometry = frame.pop("geometry")
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=inventory.frame.crs).reset_index(
        drop=True
    )


def write_glacier_table(table: gpd.GeoDataFrame, prefix: Path) -> tuple[Path, Path]:
    """Write ``<prefix>.gpkg`` (outlines + columns, for QGIS) and ``<prefix>.csv``.

    Both are written to temporary names and renamed, so a reader never sees half a file.

    Returns:
        The two paths.
    """
    gpkg = write_gpkg_atomic(table, prefix.with_name(prefix.name + ".gpkg"), "per_glacier")
    csv = prefix.with_name(prefix.name + ".csv")
    write_text_atomic(csv, pd.DataFrame(table.drop(columns="geometry")).to_csv(index=False))
    return gpkg, csv


def largest(table: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The ``count`` largest glaciers by inventory area (for summaries)."""
    return table.sort_values("inventory_area_km2", ascending=False).head(count)


def format_largest(table: pd.DataFrame, count: int = 10) -> str:
    """A text table of the largest glaciers: inventory vs mapped area with intervals."""
    rows = [
        f"{'glacier':<16} {'inventory':>9} {'reference':>9} {'mapped':>8} "
        f"{'passes':>15} {'boundary':>15}  status"
    ]
    for record in largest(table, count).itertuples():
        passes = (
            f"{record.passes_low_km2:.2f}–{record.passes_high_km2:.2f}" if record.passes else "–"
        )
        boundary = f"{record.boundary_low_km2:.2f}–{record.boundary_high_km2:.2f}"
        rows.append(
            f"{record.glacier_id:<16} {record.inventory_area_km2:>9.2f} "
            f"{record.reference_km2:>9.2f} {record.mapped_km2:>8.2f} {passes:>15} "
            f"{boundary:>15}  {record.status}"
        )
    return "\n".join(rows)
