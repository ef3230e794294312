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
from dataclasses import dataclass, field, replace
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
"""The record's output files (each a field of :class:`PredictionRecord`, a path or None)."""


@dataclass(frozen=True)
class PredictionRecord:
    """One scene's prediction record (``<scene>_prediction.json``), as written and read back.

    Attributes:
        scene: The scene's id.
        classes: ``_classes.tif``.
        probs: ``_probs.tif``.
        uncertainty: ``_uncertainty.tif`` (the written measures), or None.
        measures: ``_uncertainty_measures.tif`` (every measure, to score them), or None.
        polygons: ``_glaciers.gpkg``.
        overlay: ``_overlay.png``.
        uncertainty_figure: ``_uncertainty.png`` (scored measures), or None.
        metrics_json: ``_metrics.json`` (with a reference), or None.
        stac: The STAC item.
        passes: ``_passes.tif`` (every MC pass's class map), or None.
        per_glacier: The scene's per-glacier table (with an inventory), or None.
        per_glacier_csv: The same table as CSV, or None.
        per_glacier_sums: The scene's per-glacier sums (``.npz``), or None.
        uncertainty_bands: The measures of ``_uncertainty.tif``, in band order.
        metrics: The scores against the reference (``_metrics.json``'s content), or None.
        no_reference: Why the scene has no scores (the reference does not cover it), or None.
        fingerprint: :func:`prediction_fingerprint` of what made the outputs ("" when unknown).
        checkpoint_sha256: SHA-256 of the checkpoint(s) that mapped the scene ("" when unknown).
        class_names: The model's classes (background excluded; empty when unknown).
        skipped: True on a run's result for a scene it found finished (never stored).
    """

    scene: str
    classes: Path
    probs: Path | None = None
    uncertainty: Path | None = None
    measures: Path | None = None
    polygons: Path | None = None
    overlay: Path | None = None
    uncertainty_figure: Path | None = None
    metrics_json: Path | None = None
    stac: Path | None = None
    passes: Path | None = None
    per_glacier: Path | None = None
    per_glacier_csv: Path | None = None
    per_glacier_sums: Path | None = None
    uncertainty_bands: tuple[str, ...] = ()
    metrics: dict[str, Any] | None = None
    no_reference: str | None = None
    fingerprint: str = ""
    checkpoint_sha256: str = ""
    class_names: tuple[str, ...] = ()
    skipped: bool = field(default=False, compare=False)

    @property
    def outputs(self) -> dict[str, Path]:
        """The output files the record lists, by field name (:data:`OUTPUT_KEYS`)."""
        found = {name: getattr(self, name) for name in OUTPUT_KEYS}
        return {name: path for name, path in found.items() if path is not None}

    def to_json(self) -> dict[str, Any]:
        """The record's JSON object (paths as strings; absent outputs and scores left out)."""
        data: dict[str, Any] = {"scene": self.scene}
        data |= {name: str(path) for name, path in self.outputs.items()}
        if self.uncertainty_bands:
            data["uncertainty_bands"] = list(self.uncertainty_bands)
        if self.metrics is not None:
            data["metrics"] = self.metrics
        if self.no_reference is not None:
            data["no_reference"] = self.no_reference
        return data | {
            "fingerprint": self.fingerprint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PredictionRecord:
        """A record from its JSON object (older records: missing keys take their defaults).

        Raises:
            ValueError: When ``data`` names no scene.
        """
        if not data.get("scene"):
            raise ValueError("a prediction record names no scene")

        def path(key: str) -> Path | None:
            value = data.get(key)
            return Path(str(value)) if value else None

        outputs: dict[str, Any] = {name: path(name) for name in OUTPUT_KEYS if name != "classes"}
        names = data.get("class_names")
        no_reference = data.get("no_reference")
        return cls(
            scene=str(data["scene"]),
            classes=Path(str(data.get("classes", ""))),
            **outputs,
            uncertainty_bands=tuple(str(b) for b in data.get("uncertainty_bands") or ()),
            metrics=data.get("metrics"),
            no_reference=None if no_reference is None else str(no_reference),
            fingerprint=str(data.get("fingerprint") or ""),
            checkpoint_sha256=str(data.get("checkpoint_sha256") or ""),
            class_names=tuple(str(n) for n in names) if isinstance(names, list) else (),
        )

    def moved(self, staging: Path, out_dir: Path) -> PredictionRecord:
        """The record with its outputs in ``staging`` named at their final place in ``out_dir``."""
        moves: dict[str, Any] = {
            name: out_dir / path.name
            for name, path in self.outputs.items()
            if path.parent == staging
        }
        return replace(self, **moves)


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


def read_record(path: Path) -> PredictionRecord | None:
    """The record in ``path`` (None when it is missing, unreadable or not a record)."""
    try:
        data = json.loads(path.read_text())
        return PredictionRecord.from_json(data) if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def finished(out_dir: Path, scene_id: str, key: str) -> PredictionRecord | None:
    """The scene's record when it is done with this fingerprint and its outputs all exist."""
    record = read_record(record_path(out_dir, scene_id))
    if record is None or record.fingerprint != key:
        return None
    if not all(path.is_file() for path in record.outputs.values()):
        return None
    return record


def write_record(path: Path, record: PredictionRecord) -> Path:
    """Write a record to ``path`` (atomically; a scene's record is written last)."""
    write_json_atomic(path, record.to_json())
    return path


def read_records(out_dir: Path) -> list[PredictionRecord]:
    """Every scene record in ``out_dir`` (any shard's), sorted by scene."""
    found = (read_record(path) for path in sorted(out_dir.glob(f"*{RECORD}")))
    return sorted((r for r in found if r is not None), key=lambda r: r.scene)
