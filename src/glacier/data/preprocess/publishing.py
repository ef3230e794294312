"""How a processed dataset changes: ready scenes and a new index, published as one generation.

Nothing a run computes is written under a final name before the whole new state exists: scenes
are stored in staging folders (:mod:`glacier.data.preprocess.staging`), the index (filter,
split, statistics over the staged and the published scenes) in ``.staging/index.{token}/``,
and :func:`publish_generation` commits both at once (:mod:`glacier.utils.publish`): each
replaced scene folder gets the new generation's stamp and ``dataset.json``, moved last, names
the generation of every scene's arrays. A re-split or new statistics publishes only the index:
no slice is rewritten.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glacier.data.contract import (
    DATASET_FILE,
    INDEX_FILES,
    Channel,
    DatasetInfo,
    DatasetLayout,
    check_published,
    generation_path,
    generation_stamp,
    mask_path,
    scene_dir,
    scene_generation,
)
from glacier.data.preprocess.staging import (
    INDEX_PREFIX,
    READY_FILE,
    STAGES_DIR,
    ScenePayload,
    StagedScene,
    read_record,
    ready_scenes,
    stage_record_path,
    write_stage_record,
)
from glacier.data.store import SceneStore
from glacier.errors import GlacierInputError
from glacier.utils.io import write_text_atomic
from glacier.utils.publish import Move, commit, create_staging, pending_publications

log = logging.getLogger(__name__)
POSTPROCESS = "postprocess"
SceneRecord = tuple[dict[str, Any] | None, StagedScene | None]


def current_scene(
    root: Path,
    channels: Sequence[Channel],
    scene_id: str,
    key: str,
    ready: dict[str, list[StagedScene]],
) -> SceneRecord:
    """A scene's stage record for ``key``, and its ready staging when it is not published yet.

    Args:
        root: The dataset folder.
        channels: The contract's channels (which arrays a scene has).
        scene_id: The scene.
        key: Its current fingerprint.
        ready: Ready staged scenes (:func:`~glacier.data.preprocess.staging.ready_scenes`).

    Returns:
        ``(record, None)`` when published, ``(record, staging)`` when staged, ``(None, None)``
        when no complete files of ``key`` exist.
    """
    published = read_record(stage_record_path(root, f"scene_{scene_id}"), key)
    if published is not None and not SceneStore(root, channels).missing([scene_id]):
        return published, None
    for staged in reversed(ready.get(scene_id, [])):
        complete = not SceneStore(staged.folder, channels).missing([scene_id])
        if staged.record.get("fingerprint") == key and complete:
            return staged.record, staged
    return None, None


@dataclass
class GatheredScenes:
    """Every scene's stage record, published or ready.

    Attributes:
        metas: Metadata rows.
        records: Slice records.
        staged: The ready scenes to publish.
        missing: Scenes with neither (not processed with the current inputs and settings).
        moments: Each scene's cell moments, as stored (:meth:`CellMoments.to_text`).
    """

    metas: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    staged: list[StagedScene] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    moments: dict[str, str] = field(default_factory=dict)


def gather_scenes(
    root: Path, channels: Sequence[Channel], keys: Mapping[str, str]
) -> GatheredScenes:
    """Every scene's stage record, published or ready (see :func:`current_scene`).

    Args:
        root: The dataset folder.
        channels: The contract's channels.
        keys: Scene id → current fingerprint, in dataset order.
    """
    ready = ready_scenes(root)
    found = GatheredScenes()
    for scene_id, key in keys.items():
        record, staging = current_scene(root, channels, scene_id, key, ready)
        if record is None:
            found.missing.append(scene_id)
            continue
        payload = ScenePayload.from_dict(record["payload"])
        found.metas.append(payload.meta)
        found.records.extend(payload.slices)
        found.moments[scene_id] = payload.moments
        found.staged += [staging] if staging is not None else []
    return found


def index_is_whole(
    root: Path, channels: Sequence[Channel], scene_ids: Sequence[str], key: str
) -> bool:
    """Whether the published index is of ``key`` and whole (every file, every scene's stamp)."""
    if pending_publications(root):
        return False
    if read_record(stage_record_path(root, POSTPROCESS), key) is None:
        return False
    needed = DatasetLayout(root).index_files()
    missing = [p for p in needed if not p.is_file()]
    missing += SceneStore(root, channels).missing(scene_ids)
    if missing:
        log.warning("processed dataset %s lacks %s: rebuilding", root, missing[:3])
        return False
    try:
        check_published(root, json.loads(DatasetLayout(root).info.read_text()))
    except (GlacierInputError, ValueError) as error:
        log.warning("%s: rebuilding", error)
        return False
    return True


def dataset_generation(root: Path) -> int | None:
    """The generation of the published dataset (None: none, or one from before generations)."""
    path = DatasetLayout(Path(root)).info
    if not path.is_file():
        return None
    return DatasetInfo.from_dict(json.loads(path.read_text())).generation


def next_generation(
    root: Path, scene_ids: Sequence[str], replaced: set[str]
) -> tuple[int, dict[str, int], list[str]]:
    """The generation to publish, each scene's generation in it, and published scenes to stamp.

    Args:
        root: The dataset folder.
        scene_ids: Every scene of the dataset.
        replaced: Scenes published anew (they get the new generation).

    Returns:
        The new generation, scene → generation of its arrays, and the published scenes
        without a stamp (from before generations; stamped with the new generation).
    """
    generation = (dataset_generation(root) or 0) + 1
    scenes, restamp = {}, []
    for scene_id in scene_ids:
        found = None if scene_id in replaced else scene_generation(root, scene_id)
        if found is None and scene_id not in replaced:
            restamp.append(scene_id)
        scenes[scene_id] = generation if found is None else found
    return generation, scenes, restamp


def stage_index(
    root: Path,
    token: str,
    files: Mapping[str, str],
    write: Callable[[Path], dict[str, Any]],
    key: str,
) -> tuple[Path, dict[str, Any]]:
    """Write a new index into ``.staging/index.{token}/``.

    Args:
        root: The dataset folder.
        token: The run's staging token.
        files: Index files written as they are (``mask_metadata.csv``, ``slices.geojson``).
        write: Writes ``splits.csv`` and ``dataset.json`` into the folder it is given and
            returns the ``dataset.json`` content.
        key: The postprocess fingerprint (its stage record is published with the index).

    Returns:
        The folder and the ``dataset.json`` content.
    """
    index_dir = create_staging(root, f"{INDEX_PREFIX}{token}")
    for name, text in files.items():
        write_text_atomic(index_dir / name, text)
    info = write(index_dir)
    write_stage_record(stage_record_path(index_dir, POSTPROCESS), key, info)
    return index_dir, info


def scene_moves(root: Path, staged: StagedScene) -> list[Move]:
    """Moves publishing a staged scene: its arrays folder, its labels, its stage record."""
    folder = staged.folder.relative_to(root)
    sid = staged.scene_id
    return [
        Move(str(scene_dir(Path(), sid)), str(scene_dir(folder, sid))),
        Move(str(mask_path(Path(), sid)), str(mask_path(folder, sid))),
        Move(str(stage_record_path(Path(), f"scene_{sid}")), str(folder / READY_FILE)),
    ]


def _identical(a: Path, b: Path) -> bool:
    return b.is_file() and a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def index_moves(root: Path, index_dir: Path) -> list[Move]:
    """Moves publishing a staged index; files identical to the published ones stay untouched."""
    moves = []
    # the index files in publication order; dataset.json (what readers trust) comes last
    for name in (*INDEX_FILES, f"{STAGES_DIR}/{POSTPROCESS}.json", DATASET_FILE):
        staged = index_dir / name
        if staged.is_file() and not _identical(staged, Path(root) / name):
            moves.append(Move(name, str(staged.relative_to(root))))
    return moves


def publish_generation(
    root: Path,
    scenes: list[StagedScene],
    index_dir: Path,
    generation: int,
    restamp: list[str],
) -> None:
    """Publish ready scenes and a staged index together (one commit, dataset.json last).

    Args:
        root: The dataset folder.
        scenes: Ready scenes to publish (their folders get the ``generation`` stamp).
        index_dir: The staged index (its ``dataset.json`` names the generations).
        generation: The generation being published.
        restamp: Published scenes without a stamp, stamped with ``generation``.
    """
    moves: list[Move] = []
    for staged in scenes:
        write_text_atomic(
            generation_path(staged.folder, staged.scene_id),
            generation_stamp(generation, staged.scene_id),
        )
        moves += scene_moves(root, staged)
    for scene_id in restamp:
        staged_stamp = index_dir / "stamps" / f"{scene_id}.json"
        write_text_atomic(staged_stamp, generation_stamp(generation, scene_id))
        moves.append(
            Move(str(generation_path(Path(), scene_id)), str(staged_stamp.relative_to(root)))
        )
    moves += index_moves(root, index_dir)
    commit(root, moves, cleanup=[index_dir, *(s.folder for s in scenes)])
    log.info("published generation %d of %s (%d scene(s) stored)", generation, root, len(scenes))
