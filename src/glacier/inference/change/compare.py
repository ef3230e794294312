"""Compare two prediction runs: checks, change maps per scene, per-glacier change, STAC items."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from glacier.data.labels import Inventory
from glacier.data.raster import row_pixel_areas_km2
from glacier.errors import GlacierInputError
from glacier.inference.change.glaciers import (
    DatedSums,
    change_summary,
    change_table,
    common_maps,
    pass_spread,
)
from glacier.inference.change.maps import GAIN, LOSS, STABLE_GLACIER, scene_change
from glacier.inference.change.runs import MappedScene, PredictionRun
from glacier.inference.change.stac import write_change_item
from glacier.inference.glaciers import (
    GlacierSums,
    SceneFootprint,
    SceneGrid,
    assign_pixels,
    earlier_footprints,
    scene_sums,
    write_glacier_table,
)
from glacier.utils.io import write_json_atomic

log = logging.getLogger(__name__)
TABLE_PREFIX = "change_per_glacier"


@dataclass(frozen=True)
class ChangeSettings:
    """How to compare two runs.

    Attributes:
        allow_different_checkpoints: Compare runs mapped by different models (their
            differences then mix change and model).
        before_date: Acquisition date of the before run's scenes, when they do not tell.
        after_date: The same for the after run.
        cog: Write the change maps as Cloud-Optimized GeoTIFFs.
    """

    allow_different_checkpoints: bool = False
    before_date: date | None = None
    after_date: date | None = None
    cog: bool = True


@dataclass
class ChangeResult:
    """What a comparison wrote.

    Attributes:
        maps: Change map per after scene.
        items: STAC item per after scene.
        summary: Totals (per-glacier when an inventory was given, else by pixels).
        table: The per-glacier change table, if any.
    """

    maps: dict[str, Path] = field(default_factory=dict)
    items: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    table: gpd.GeoDataFrame | None = None


def _footprint(scene: MappedScene) -> SceneFootprint:
    return SceneFootprint(scene.scene, scene.crs, scene.box)


def overlapping(before: PredictionRun, scene: MappedScene) -> list[MappedScene]:
    """The before scenes that overlap an after scene."""
    return [s for s in before.scenes if _footprint(s).in_crs(scene.crs).intersects(scene.box)]


def check_runs(before: PredictionRun, after: PredictionRun, settings: ChangeSettings) -> None:
    """Refuse comparisons that would mislead, each in one line.

    Raises:
        GlacierInputError: Different class sets, different checkpoints (unless allowed),
            missing acquisition dates, or no overlap at all.
    """
    if before.class_names != after.class_names:
        raise GlacierInputError(
            f"before={before.folder} maps classes {list(before.class_names)} but "
            f"after={after.folder} maps {list(after.class_names)}: compare runs of one class set"
        )
    if before.checkpoints != after.checkpoints and not settings.allow_different_checkpoints:
        raise GlacierInputError(
            f"before={before.folder} and after={after.folder} were mapped with different "
            "checkpoints: their difference mixes glacier change and model; map both dates with "
            "one checkpoint, or set allow_different_checkpoints=true"
        )
    for key, run, given in (
        ("before", before, settings.before_date),
        ("after", after, settings.after_date),
    ):
        undated = [s.scene for s in run.scenes if s.acquired is None]
        if undated and given is None:
            raise GlacierInputError(
                f"{key}={run.folder}: no acquisition date for scene(s) {undated[:3]} (neither the "
                f"STAC item nor the scene id gives one); set {key}_date=YYYY-MM-DD"
            )
    if not any(overlapping(before, scene) for scene in after.scenes):
        raise GlacierInputError(
            f"before={before.folder} and after={after.folder} do not overlap: no scene of one "
            "covers any of the other"
        )


def _date(scenes: list[MappedScene], given: date | None, key: str, where: str) -> date:
    """The one acquisition date of ``scenes`` (or the given one)."""
    if given is not None:
        return given
    dates = {s.acquired for s in scenes}
    if len(dates) != 1:
        raise GlacierInputError(
            f"{key} scenes {[s.scene for s in scenes]} overlapping {where} have different "
            f"dates {sorted(str(d) for d in dates)}; compare one date at a time"
        )
    found = dates.pop()
    assert found is not None
    return found


def _pixel_summary(change: np.ndarray, areas: np.ndarray) -> dict[str, float]:
    """Areas (km²) of stable glacier, loss and gain on a change map."""
    weights = np.broadcast_to(areas[:, None], change.shape)
    return {
        name: float(weights[change == code].sum())
        for name, code in (
            ("stable_glacier_km2", STABLE_GLACIER),
            ("loss_km2", LOSS),
            ("gain_km2", GAIN),
        )
    }


@dataclass
class _Totals:
    """Per-glacier sums of both dates, added over the after scenes."""

    glaciers: int
    before: GlacierSums | None = None
    after: GlacierSums | None = None
    acquired: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, name: str, sums: GlacierSums, present: np.ndarray, when: date) -> None:
        previous = getattr(self, name)
        setattr(self, name, sums if previous is None else previous + sums)
        dates = self.acquired.setdefault(name, np.full(self.glaciers, None, dtype=object))
        dates[present] = when


def _glacier_sums(
    inventory: Inventory,
    grid: SceneGrid,
    exclude: shapely.Geometry | None,
    maps: tuple[np.ndarray, np.ndarray],
    dates: dict[str, date],
    totals: _Totals,
    class_count: int,
) -> None:
    """Add one after scene's per-glacier sums of both dates (common pixels) to ``totals``."""
    pixels = assign_pixels(inventory, grid, inventory.settings.buffer_m, exclude)
    areas = row_pixel_areas_km2(grid.transform, grid.crs, grid.height)
    classes = tuple(range(1, class_count + 1))
    for name, dated_map in zip(("before", "after"), common_maps(*maps), strict=True):
        sums = scene_sums(pixels, dated_map, classes, areas, len(inventory), class_count + 1)
        totals.add(name, sums, pixels.present, dates[name])


def _glacier_table(
    inventory: Inventory,
    totals: _Totals,
    before: PredictionRun,
    after: PredictionRun,
    footprints: list[SceneFootprint],
) -> gpd.GeoDataFrame | None:
    if totals.before is None or totals.after is None:
        return None
    union = shapely.union_all([f.in_crs(inventory.frame.crs) for f in footprints])
    cut = ~inventory.frame.geometry.within(union).to_numpy()
    return change_table(
        inventory,
        DatedSums(totals.before, totals.acquired["before"], pass_spread(inventory, _table(before))),
        DatedSums(totals.after, totals.acquired["after"], pass_spread(inventory, _table(after))),
        cut,
        after.class_names,
    )


#: One compared after scene: the scene, both acquisition dates, its pixel areas (km²).
_ComparedScene = tuple[MappedScene, dict[str, date], dict[str, float]]


def _scene_dates(
    earlier: list[MappedScene], scene: MappedScene, settings: ChangeSettings
) -> dict[str, date]:
    """The ``before`` and ``after`` acquisition dates of an after scene and its earlier ones."""
    return {
        "before": _date(earlier, settings.before_date, "before", scene.scene),
        "after": _date([scene], settings.after_date, "after", scene.scene),
    }


def _glacier_outputs(
    inventory: Inventory | None,
    totals: _Totals,
    runs: tuple[PredictionRun, PredictionRun],
    footprints: list[SceneFootprint],
    out_dir: Path,
    result: ChangeResult,
) -> list[Path]:
    """Write the per-glacier change table (with an inventory) into ``result``; its files."""
    if inventory is None:
        return []
    result.table = _glacier_table(inventory, totals, *runs, footprints)
    if result.table is None:
        return []
    tables = list(write_glacier_table(result.table, out_dir / TABLE_PREFIX))
    result.summary["glaciers"] = change_summary(result.table)
    return tables


def compare_runs(
    before: PredictionRun,
    after: PredictionRun,
    out_dir: Path,
    inventory: Inventory | None,
    settings: ChangeSettings,
) -> ChangeResult:
    """Change maps per after scene, per-glacier change (with an inventory), STAC items.

    Args:
        before: The earlier run.
        after: The later run.
        out_dir: Where to write.
        inventory: Outlines for per-glacier change, or None.
        settings: Comparison settings.

    Returns:
        What was written.
    """
    check_runs(before, after, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ChangeResult(summary={"pixels": {}})
    footprints = [_footprint(s) for s in after.scenes]
    totals = _Totals(0 if inventory is None else len(inventory))
    compared: list[_ComparedScene] = []
    for scene in after.scenes:
        earlier = overlapping(before, scene)
        if not earlier:
            log.info("%s: no before scene overlaps it; skipped", scene.scene)
            continue
        dates = _scene_dates(earlier, scene, settings)
        path, was, now, change = scene_change(earlier, scene, out_dir, settings.cog)
        grid = SceneGrid.of(path)
        areas = row_pixel_areas_km2(grid.transform, grid.crs, grid.height)
        pixels = _pixel_summary(change, areas)
        for key, value in pixels.items():
            result.summary["pixels"][key] = result.summary["pixels"].get(key, 0.0) + value
        result.maps[scene.scene] = path
        compared.append((scene, dates, pixels))
        if inventory is not None:
            exclude = earlier_footprints(footprints, scene.scene, grid.crs)
            _glacier_sums(
                inventory, grid, exclude, (was, now), dates, totals, len(after.class_names)
            )
    tables = _glacier_outputs(inventory, totals, (before, after), footprints, out_dir, result)
    summary_path = out_dir / "change_summary.json"
    write_json_atomic(summary_path, result.summary)
    folders, listed = (before.folder, after.folder), [*tables, summary_path]
    for scene, dates, pixels in compared:
        path = result.maps[scene.scene]
        result.items[scene.scene] = write_change_item(scene, path, dates, pixels, folders, listed)
    return result


def _table(run: PredictionRun) -> pd.DataFrame | None:
    return None if run.per_glacier is None else pd.read_csv(run.per_glacier)
