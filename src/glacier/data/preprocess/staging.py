"""A processed dataset's staging area: scenes being stored, ready scenes, dead runs' leftovers.

``<dataset>/.staging/`` (the rule of :mod:`glacier.utils.publish`)::

    scene_{id}.{token}/     a scene being stored (scenes/{id}/, masks/mask_{id}.npy); once
                            complete it holds stage.json (its stage record) and is *ready*:
                            a shard's result, kept until a gather publishes it
    index.{token}/          the new index being written (see publishing.py)
    {token}.publish.json    a committed publication whose run was killed (finished next run)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glacier.utils.io import write_json_atomic
from glacier.utils.publish import (
    TOKEN_LENGTH,
    owner_alive,
    read_owner,
    remove_folder,
    staging_root,
)

log = logging.getLogger(__name__)
STAGES_DIR = ".stages"
READY_FILE = "stage.json"
SCENE_PREFIX = "scene_"
INDEX_PREFIX = "index."


def stage_record_path(root: Path, name: str) -> Path:
    """A published stage record (``.stages/{name}.json``)."""
    return Path(root) / STAGES_DIR / f"{name}.json"


def read_record(path: Path, key: str | None = None) -> dict[str, Any] | None:
    """A stage record, if readable and (when ``key`` is given) of that fingerprint."""
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if key is None or record.get("fingerprint") == key else None


def write_stage_record(path: Path, key: str, payload: Any, indent: int | None = 2) -> None:
    """Write a stage record: the fingerprint of a stage's inputs and what the stage made."""
    write_json_atomic(path, {"fingerprint": key, "payload": payload}, indent=indent)


def stage_payload(root: Path, name: str, key: str) -> Any:
    """What the published stage ``name`` made, if its record is of fingerprint ``key``."""
    record = read_record(stage_record_path(root, name), key)
    return None if record is None else record["payload"]


@dataclass(frozen=True)
class ScenePayload:
    """What staging one scene made: the payload of its stage record.

    Attributes:
        meta: Its row of ``mask_metadata.csv``.
        slices: Its slice records.
        moments: Its valid pixels' moments per cell of the window grid
            (:meth:`~glacier.data.preprocess.moments.CellMoments.to_text`).
    """

    meta: dict[str, Any]
    slices: list[dict[str, Any]]
    moments: str

    def to_dict(self) -> dict[str, Any]:
        """The record's ``payload``."""
        return {"meta": self.meta, "slices": self.slices, "moments": self.moments}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenePayload:
        """Parse a record's ``payload``."""
        return cls(dict(data["meta"]), list(data["slices"]), str(data["moments"]))


def mark_ready(folder: Path, key: str, payload: ScenePayload) -> None:
    """Mark a staged scene complete: its stage record, published with it later."""
    # compact: a scene's record holds every slice record and its cell moments
    write_stage_record(folder / READY_FILE, key, payload.to_dict(), indent=None)


@dataclass(frozen=True)
class StagedScene:
    """A ready scene in the staging area.

    Attributes:
        scene_id: The scene.
        folder: Its staging folder (same layout as the dataset).
        record: Its stage record (``fingerprint``, ``payload``).
    """

    scene_id: str
    folder: Path
    record: dict[str, Any]


def staged_scene_id(folder: Path) -> str | None:
    """The scene of a ``scene_{id}.{token}`` staging folder (None for other folders)."""
    name = folder.name
    if not name.startswith(SCENE_PREFIX) or len(name) <= len(SCENE_PREFIX) + TOKEN_LENGTH + 1:
        return None
    return name[len(SCENE_PREFIX) : -(TOKEN_LENGTH + 1)]


def ready_scenes(root: Path) -> dict[str, list[StagedScene]]:
    """Every ready staged scene, per scene id (newest last)."""
    found: dict[str, list[StagedScene]] = {}
    folder = staging_root(root)
    if not folder.is_dir():
        return found
    candidates = [p for p in folder.iterdir() if p.is_dir() and staged_scene_id(p)]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime_ns):
        record = read_record(path / READY_FILE)
        if record is not None:
            found.setdefault(str(staged_scene_id(path)), []).append(
                StagedScene(str(staged_scene_id(path)), path, record)
            )
    return found


def remove_dead_stagings(root: Path, current: Mapping[str, str]) -> list[Path]:
    """Remove what dead runs left in the staging area; keep ready scenes a gather still needs.

    A folder goes when its run is known to be dead (this host, process gone) unless it is a
    ready scene of the current fingerprint not published yet (a shard's result), and, whatever
    its host, when it is a ready scene of another fingerprint or one already published
    (superseded). Folders of runs on other hosts that are not ready are left (they may still
    be running); the next run of that scene removes them.

    Args:
        root: The dataset folder.
        current: Scene id → its current fingerprint.

    Returns:
        The removed folders.
    """
    removed = []
    for folder in sorted(p for p in staging_root(root).glob("*") if p.is_dir()):
        scene = staged_scene_id(folder)
        record = read_record(folder / READY_FILE) if scene else None
        key = current.get(str(scene))
        published = read_record(stage_record_path(root, f"scene_{scene}"), key) is not None
        wanted = record is not None and record.get("fingerprint") == key and not published
        alive = owner_alive(read_owner(folder))
        superseded = record is not None and not wanted
        if superseded or (alive is False and not wanted):
            remove_folder(folder)
            removed.append(folder)
    if removed:
        log.info("removed %d staging folder(s) of earlier runs in %s", len(removed), root)
    return removed


def discard_staging(root: Path, token: str, keep_ready: bool) -> None:
    """Remove one run's staging folders (``*.{token}``); ``keep_ready`` keeps finished scenes."""
    for folder in staging_root(root).glob(f"*.{token}"):
        if not (keep_ready and read_record(folder / READY_FILE) is not None):
            remove_folder(folder)
