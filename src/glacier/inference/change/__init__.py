"""Glacier change between two dates: a change map per scene and per-glacier change with intervals.

``glacier change before=RUN_A after=RUN_B [inventory=OUTLINES]`` compares two prediction folders
(:mod:`~glacier.inference.change.runs`): each after scene gets a change map against the before
scenes that overlap it (:mod:`~glacier.inference.change.maps`), and with an inventory each glacier
its area at both dates on the pixels observed at both, with intervals, and its change in km², %
and %/yr (:mod:`~glacier.inference.change.glaciers`); a STAC item spans both dates.
"""

from glacier.inference.change.compare import (
    TABLE_PREFIX,
    ChangeResult,
    ChangeSettings,
    check_runs,
    compare_runs,
)
from glacier.inference.change.glaciers import change_summary, change_table, format_change
from glacier.inference.change.maps import (
    CHANGE_CLASSES,
    GAIN,
    LOSS,
    STABLE_BACKGROUND,
    STABLE_GLACIER,
    change_classes,
)
from glacier.inference.change.runs import MappedScene, PredictionRun, load_run

__all__ = [
    "CHANGE_CLASSES",
    "GAIN",
    "LOSS",
    "STABLE_BACKGROUND",
    "STABLE_GLACIER",
    "TABLE_PREFIX",
    "ChangeResult",
    "ChangeSettings",
    "MappedScene",
    "PredictionRun",
    "change_classes",
    "change_summary",
    "change_table",
    "check_runs",
    "compare_runs",
    "format_change",
    "load_run",
]
