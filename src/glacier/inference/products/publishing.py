"""A scene's outputs appear together: written in a staging folder, moved in by one commit.

Maps, polygons, metrics, overlay and STAC item of a scene are written in
``<out_dir>/.staging/<scene>.<token>/`` under their final names (the STAC item's links are
relative, so they hold after the move); then one publication (:mod:`glacier.utils.publish`)
moves every file into ``out_dir`` and the new record last. A failure, a full disk or a signal
before the commit leaves the scene's earlier outputs as they were and no file of the new ones;
a kill during the moves is finished by the next run before it looks at any record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from glacier.inference.products.records import PredictionRecord, record_path, write_record
from glacier.utils.publish import (
    OWNER_FILE,
    TOKEN_LENGTH,
    Move,
    commit,
    create_staging,
    finish_publications,
    owner_alive,
    read_owner,
    remove_empty_staging_root,
    remove_folder,
    staging_folders,
    staging_root,
)

log = logging.getLogger(__name__)
STAGED_NAME = re.compile(rf"^(?P<scene>.+)\.[0-9a-f]{{{TOKEN_LENGTH}}}$")


def scene_staging(out_dir: Path, scene_id: str, token: str) -> Path:
    """Create the staging folder of one scene's outputs (``.staging/<scene>.<token>/``)."""
    return create_staging(out_dir, f"{scene_id}.{token}")


def publish_scene_outputs(
    out_dir: Path, staging: Path, record: PredictionRecord
) -> PredictionRecord:
    """Publish a scene's staged outputs together, its record last.

    Args:
        out_dir: The output folder.
        staging: The scene's staging folder holding its outputs.
        record: The scene's record, with paths inside ``staging``.

    Returns:
        The record as written, with final paths.
    """
    final = record.moved(staging, out_dir)
    final_record = record_path(out_dir, record.scene)
    staged_record = write_record(staging / final_record.name, final)
    outputs = sorted(p for p in staging.iterdir() if p.name not in (OWNER_FILE, staged_record.name))
    moves = [Move(p.name, str(p.relative_to(out_dir))) for p in outputs if p.is_file()]
    moves.append(Move(final_record.name, str(staged_record.relative_to(out_dir))))
    commit(out_dir, moves, cleanup=[staging])
    return final


def recover_outputs(out_dir: Path, scenes: Iterable[str]) -> None:
    """Finish publications a killed run committed; remove what dead runs left staged.

    A staging folder goes when its run is known to be dead (this host), or, whatever its
    host, when it belongs to a scene this run maps (two runs mapping one scene into one folder
    at once is not supported).

    Args:
        out_dir: The output folder.
        scenes: The scenes this run maps.
    """
    if not out_dir.is_dir():
        return
    finish_publications(out_dir)
    mapping = set(scenes)
    for folder in staging_folders(out_dir):
        match = STAGED_NAME.match(folder.name)
        mine = match is not None and match.group("scene") in mapping
        if mine or owner_alive(read_owner(folder)) is False:
            remove_folder(folder)
    remove_empty_staging_root(out_dir)


def discard_outputs(out_dir: Path, stagings: Iterable[Path]) -> None:
    """Remove this run's unpublished staging folders (then ``.staging`` if it is empty)."""
    for folder in stagings:
        remove_folder(folder)
    if staging_root(out_dir).is_dir():
        remove_empty_staging_root(out_dir)
