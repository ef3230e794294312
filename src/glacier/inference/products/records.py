"""Per-scene prediction records: what was made from what, so finished scenes are skipped safely.

``<scene>_prediction.json`` is written last, after every output of the scene is final. It holds
a fingerprint of everything that changes the outputs (the checkpoint, the input files, the
settings, the reference outlines, this code's format); a later run skips the scene only when the
record exists, its fingerprint matches and every output it lists exists. An interrupted run
leaves no record for the scene it was mapping, so a rerun redoes exactly that scene.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from glacier.data.contract import FORMAT_VERSION
from glacier.data.spec import SceneSpec
from glacier.inference.output_names import RECORD, scene_output
from glacier.utils.io import file_fingerprint, files_fingerprint, fingerprint, write_json_atomic

OUTPUT_KEYS = (
    *("classes", "probs", "uncertainty", "measures", "polygons", "overlay"),
    *("uncertainty_figure", "metrics_json", "stac"),
    *("passes", "per_glacier", "per_glacier_csv", "per_glacier_sums"),
)


def record_path(out_dir: Path, scene_id: str) -> Path:
    """Where a scene's record lives."""
    return scene_output(out_dir, scene_id, RECORD)


def prediction_fingerprint(
    checkpoint: Path | Sequence[Path],
    scene: SceneSpec,
    settings: Mapping[str, Any],
    labels: list[Path],
) -> str:
    """Fingerprint of one scene's prediction.

    Args:
        checkpoint: The checkpoint file (size and modification time), or an ensemble's files.
        scene: The scene's band files and band names.
        settings: Every setting that changes the outputs (tile layout, MC passes, seed,
            precision, probability encoding, polygon settings...).
        labels: Reference outline files (their content changes the metrics).

    Returns:
        A short hex digest.
    """
    files = [checkpoint] if isinstance(checkpoint, Path) else list(checkpoint)
    models = file_fingerprint(files[0]) if len(files) == 1 else files_fingerprint(files)
    return fingerprint(
        FORMAT_VERSION,
        models,
        [[str(s.path), list(s.bands)] for s in scene.sources],
        files_fingerprint([s.path for s in scene.sources]),
        dict(settings),
        files_fingerprint(labels),
    )


def finished(out_dir: Path, scene_id: str, key: str) -> dict[str, Any] | None:
    """The scene's record when it is done with this fingerprint and its outputs all exist."""
    path = record_path(out_dir, scene_id)
    if not path.is_file():
        return None
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != key:
        return None
    outputs = [record.get(name) for name in OUTPUT_KEYS]
    if not all(Path(str(p)).is_file() for p in outputs if p):
        return None
    return record


def write_record(out_dir: Path, scene_id: str, record: dict[str, Any]) -> Path:
    """Write a scene's record (atomically, last)."""
    path = record_path(out_dir, scene_id)
    write_json_atomic(path, record)
    return path


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    """Every scene record in ``out_dir`` (any shard's), sorted by scene."""
    records = []
    for path in sorted(out_dir.glob(f"*{RECORD}")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(records, key=lambda r: str(r.get("scene")))
