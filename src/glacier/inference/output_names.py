"""Names of a prediction's output files: the one home of every suffix.

A scene's outputs are named ``<scene><suffix>`` in the run's folder (``out_dir``); the run's
per-glacier table is ``per_glacier.gpkg``/``.csv``. The engine writes the rasters, the products
the rest, the records list them, and ``glacier change`` and ``glacier report`` read them back:
each takes the names from here.
"""

from __future__ import annotations

from pathlib import Path

CLASSES = "_classes.tif"
"""Class map (0 background, i class i, 255 nodata)."""
PROBS = "_probs.tif"
"""Class probabilities (one band per class, background included)."""
UNCERTAINTY = "_uncertainty.tif"
"""The written uncertainty measures (one band each)."""
MEASURES = "_uncertainty_measures.tif"
"""Every measure the passes define, to score them against a reference."""
PASSES = "_passes.tif"
"""The class map of every MC pass / ensemble member (one band each)."""
POLYGONS = "_glaciers.gpkg"
"""The class map's polygons with their areas."""
OVERLAY = "_overlay.png"
"""The scene's preview with the polygons (and the reference) drawn on it."""
UNCERTAINTY_FIGURE = "_uncertainty.png"
"""Error rate by decile per measure and the reliability diagram."""
METRICS = "_metrics.json"
"""Scores against the reference outlines."""
STAC_ITEM = ".stac.json"
"""The scene's STAC item."""
RECORD = "_prediction.json"
"""The scene's record (written last: what was made from what)."""
PER_GLACIER = "_per_glacier"
"""Stem suffix of a scene's per-glacier table (``.gpkg``, ``.csv``) and sums (``.npz``)."""
RUN_PER_GLACIER = "per_glacier"
"""Stem of the run's per-glacier table (``per_glacier.gpkg``/``.csv``)."""
CHANGE = "_change.tif"
"""``glacier change``: the change map of a scene between two runs."""


def output_path(prefix: Path, suffix: str) -> Path:
    """``prefix`` (``<out_dir>/<scene>``) with ``suffix`` appended to its name."""
    return prefix.with_name(prefix.name + suffix)


def scene_output(out_dir: Path, scene_id: str, suffix: str) -> Path:
    """One output of a scene: ``<out_dir>/<scene_id><suffix>``."""
    return out_dir / f"{scene_id}{suffix}"
