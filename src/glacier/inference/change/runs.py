"""Prediction runs as ``glacier change`` reads them: each scene's class map, date and model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import rasterio
import shapely

from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.inference.products import PredictionRecord, read_records, scene_datetime


@dataclass(frozen=True)
class MappedScene:
    """One mapped scene of a prediction run.

    Attributes:
        scene: Scene id.
        classes: Its class map (``_classes.tif``).
        acquired: Acquisition date (None when neither the STAC item nor the id tells).
        checkpoint: SHA-256 of the checkpoint that mapped it ("" for older records).
        class_names: The model's classes (background excluded).
        crs: The map's CRS.
        box: The map's bounds, a polygon in its CRS.
    """

    scene: str
    classes: Path
    acquired: date | None
    checkpoint: str
    class_names: tuple[str, ...]
    crs: object
    box: shapely.Polygon


@dataclass(frozen=True)
class PredictionRun:
    """A prediction folder: its mapped scenes and, when made, its per-glacier table.

    Attributes:
        folder: The folder (``out_dir`` of ``glacier predict``).
        scenes: Its mapped scenes, sorted by id.
        per_glacier: The run's ``per_glacier.csv``, if written.
    """

    folder: Path
    scenes: tuple[MappedScene, ...]
    per_glacier: Path | None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes of the run's model."""
        return self.scenes[0].class_names

    @property
    def checkpoints(self) -> set[str]:
        """SHA-256 of every checkpoint that mapped a scene of the run."""
        return {s.checkpoint for s in self.scenes}


def _item_properties(record: PredictionRecord) -> dict[str, object]:
    """The properties of the scene's STAC item ({} when it has none)."""
    if record.stac is None or not record.stac.is_file():
        return {}
    properties: dict[str, object] = json.loads(record.stac.read_text())["properties"]
    return properties


def _acquired(properties: dict[str, object], scene: str) -> date | None:
    """The scene's date: from its STAC item (``datetime``), else from its id."""
    stamp = properties.get("datetime")
    if stamp:
        return date.fromisoformat(str(stamp)[:10])
    found = scene_datetime(scene)
    return None if found is None else found.date()


def _scene(record: PredictionRecord, folder: Path) -> MappedScene:
    scene = record.scene
    classes = record.classes
    if not classes.is_absolute() and not classes.is_file():
        classes = folder / classes.name
    if not classes.is_file():
        raise GlacierFileNotFoundError(
            f"{folder}: the record of scene {scene!r} names {classes}, which is missing; "
            "re-run glacier predict for that folder"
        )
    with rasterio.open(classes) as src:
        crs, box = src.crs, shapely.box(*src.bounds)
    properties = _item_properties(record)
    names = list(record.class_names) or properties.get("glacier:classes")
    return MappedScene(
        scene=scene,
        classes=classes,
        acquired=_acquired(properties, scene),
        checkpoint=record.checkpoint_sha256,
        class_names=tuple(str(n) for n in names) if isinstance(names, list) else (),
        crs=crs,
        box=box,
    )


def load_run(folder: Path, key: str) -> PredictionRun:
    """Read a prediction folder.

    Args:
        folder: The folder.
        key: The setting that named it (``before``, ``after``), for messages.

    Raises:
        GlacierFileNotFoundError: When the folder does not exist.
        GlacierInputError: When it holds no mapped scene.
    """
    if not folder.is_dir():
        raise GlacierFileNotFoundError(f"{key}={folder}: no such folder")
    records = read_records(folder)
    if not records:
        raise GlacierInputError(
            f"{key}={folder} holds no prediction record (*_prediction.json): give the out_dir "
            "of a glacier predict run"
        )
    scenes = tuple(sorted((_scene(r, folder) for r in records), key=lambda s: s.scene))
    table = folder / "per_glacier.csv"
    return PredictionRun(folder, scenes, table if table.is_file() else None)
