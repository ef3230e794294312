"""Per-glacier answers: every inventory glacier's mapped area against its outline.

Pixels are assigned to inventory glaciers (:mod:`~glacier.inference.glaciers.assign`), summed per
glacier (:mod:`~glacier.inference.glaciers.counts`), turned into a table with intervals and
what was not seen (:mod:`~glacier.inference.glaciers.table`), per scene and per run
(:mod:`~glacier.inference.glaciers.scenes`).
"""

from glacier.inference.glaciers.assign import GlacierPixels, SceneGrid, assign_pixels
from glacier.inference.glaciers.counts import (
    ArrayPasses,
    FilePasses,
    GlacierSums,
    PassMaps,
    scene_sums,
)
from glacier.inference.glaciers.scenes import (
    SceneFootprint,
    earlier_footprints,
    scene_glacier_sums,
    write_run_table,
    write_scene_tables,
)
from glacier.inference.glaciers.table import (
    PASS_NOTE,
    format_largest,
    glacier_table,
    pass_interval,
    write_glacier_table,
)

__all__ = [
    "PASS_NOTE",
    "ArrayPasses",
    "FilePasses",
    "GlacierPixels",
    "GlacierSums",
    "PassMaps",
    "SceneFootprint",
    "SceneGrid",
    "assign_pixels",
    "earlier_footprints",
    "format_largest",
    "glacier_table",
    "pass_interval",
    "scene_glacier_sums",
    "scene_sums",
    "write_glacier_table",
    "write_run_table",
    "write_scene_tables",
]
