"""Generations of a processed dataset: readers refuse one whose arrays and index disagree.

Every preprocessing run that changes a dataset publishes its new state in one commit
(:mod:`glacier.utils.publish`) as the next *generation*: ``dataset.json`` holds ``generation``
and, per scene, the generation of the stored arrays it was computed over
(``scene_generations``); each scene folder holds the stamp of the run that published it
(``scenes/{id}/generation.json``). A reader refuses, naming the scene and what to re-run, a
dataset whose publication is still pending (its run was killed while moving files into place)
or whose scene stamps differ from what the index names. Datasets written before generations
(no ``generation`` key) are read as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from glacier.data.contract.layout import generation_path
from glacier.errors import GlacierInputError
from glacier.utils.publish import pending_publications

RERUN_HINT = (
    "re-run `glacier preprocess` with the data config that made it (it finishes or redoes the "
    "publication; `glacier train` does so itself)"
)


def scene_generation(root: Path, scene_id: str) -> int | None:
    """The generation stamped on a scene's stored arrays (None: no readable stamp)."""
    try:
        stamp = json.loads(generation_path(root, scene_id).read_text())
        return int(stamp["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def generation_stamp(generation: int, scene_id: str) -> str:
    """The content of a scene's generation stamp."""
    return json.dumps({"generation": int(generation), "scene": scene_id}, sort_keys=True) + "\n"


def check_published(processed_dir: Path, info: Mapping[str, Any]) -> None:
    """Refuse a dataset caught half-written: a pending publication or stale scene arrays.

    Args:
        processed_dir: The processed dataset folder.
        info: Its ``dataset.json``.

    Raises:
        GlacierInputError: Naming the dataset, the scene or the interrupted command, and what
            to re-run.
    """
    name = info.get("name", Path(processed_dir).name)
    pending = pending_publications(processed_dir)
    if pending:
        command = (pending[0].get("owner") or {}).get("command", "a preprocessing run")
        raise GlacierInputError(
            f"dataset {name!r} in {processed_dir} is half-written: `{command}` was stopped while "
            f"publishing generation {int(info.get('generation') or 0) + 1} over generation "
            f"{info.get('generation', '?')}; {RERUN_HINT}"
        )
    expected = info.get("scene_generations") or {}
    for scene_id, generation in sorted(expected.items()):
        found = scene_generation(Path(processed_dir), scene_id)
        if found != int(generation):
            arrays = "carry no generation stamp" if found is None else f"are generation {found}"
            raise GlacierInputError(
                f"dataset {name!r} in {processed_dir} is half-written: scene {scene_id}'s "
                f"arrays {arrays}, the index (dataset.json, generation {info.get('generation')}) "
                f"was computed over generation {generation}; {RERUN_HINT}"
            )
