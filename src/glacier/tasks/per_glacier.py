"""``glacier predict inventory=…``: the settings of per-glacier answers and the run's table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
import shapely

from glacier.data.labels import Inventory, load_inventory
from glacier.data.spec import DataSpec, SceneSpec
from glacier.inference.glaciers import SceneFootprint, format_largest, write_run_table
from glacier.inference.output_names import RUN_PER_GLACIER
from glacier.inference.products import PredictionRecord
from glacier.tasks.predict_options import InventoryOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerGlacierRun:
    """Per-glacier answers for one prediction run.

    Attributes:
        inventory: The inventory outlines.
        footprints: Every scene of the run in order (before sharding: shards agree on overlaps).
    """

    inventory: Inventory

    footprints: tuple[SceneFootprint, ...]

    def fingerprint(self, scene_id: str) -> dict[str, Any]:
        """What changes a scene's per-glacier outputs (its settings, the scenes before it)."""
        settings = self.inventory.settings
        names = [f.scene for f in self.footprints]
        return {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(settings).items()},
            "earlier_scenes": names[: names.index(scene_id)] if scene_id in names else [],
        }


def scene_footprint(scene: SceneSpec) -> SceneFootprint:
    """A scene's grid bounds, read from its first band file's header."""
    with rasterio.open(scene.sources[0].path) as src:
        return SceneFootprint(scene.id, src.crs, shapely.box(*src.bounds))


def per_glacier_run(
    options: InventoryOptions, data: DataSpec | None, scenes: Sequence[SceneSpec]
) -> PerGlacierRun | None:
    """The inventory (checked now, before anything is mapped) and the run's footprints."""
    settings = options.settings(data)
    if settings is None:
        return None
    inventory = load_inventory(settings)
    return PerGlacierRun(inventory, tuple(scene_footprint(s) for s in scenes))


def finish_run(
    run: PerGlacierRun,
    results: Sequence[PredictionRecord],
    class_names: Sequence[str],
    out_dir: Path,
) -> Path | None:
    """Write the run's ``per_glacier.gpkg``/``.csv`` from every scene's sums; print the largest.

    Returns:
        The run table's CSV, or None when no scene has per-glacier sums.
    """
    paths = [r.per_glacier_sums for r in results if r.per_glacier_sums is not None]
    if not paths:
        return None
    mapped = {r.scene for r in results}
    footprints = [f for f in run.footprints if f.scene in mapped]
    table = write_run_table(run.inventory, paths, footprints, class_names, out_dir)
    print(f"\nPer-glacier areas (km², {len(table)} glaciers; largest by inventory area):")
    print(format_largest(table))
    return out_dir / f"{RUN_PER_GLACIER}.csv"
