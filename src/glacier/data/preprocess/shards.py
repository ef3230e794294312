"""Preprocessing split between jobs: which scenes a shard takes, and its private staging folders.

A shard (``shard=i num_shards=N`` or ``scenes=START-END``) publishes nothing: it stores its own
scenes in ``.staging/scene_{id}.{token}/`` and marks each ready when complete (an interrupted
shard is simply run again; ready scenes are reused). The gather step, a run without
``shard=``/``scenes=`` (``stage=gather`` waits for the shards and processes nothing), computes
the index and publishes every ready scene with it as the dataset's next generation (see
:mod:`glacier.data.preprocess.publishing`): readers never see a shard's scenes beside an index
that does not know them.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path

from glacier.errors import GlacierInputError
from glacier.utils.cluster import wait_until

STAGES = ("all", "gather")
TOKEN_LENGTH = 8


def select_scenes(
    count: int, scenes: str | None = None, shard: int | None = None, num_shards: int = 1
) -> list[int]:
    """Indices of the scenes a run processes: all, a ``START-END`` range, or shard ``i`` of ``N``.

    Shards take every N-th scene (``i, i+N, ...``), which balances mixed scene sizes.

    Args:
        count: Number of scenes in the data config.
        scenes: ``START-END`` (inclusive), or None.
        shard: Shard index in ``[0, num_shards)``, or None.
        num_shards: Number of shards.

    Returns:
        Sorted scene indices.

    Raises:
        GlacierInputError: For a malformed or out-of-range selection.
    """
    if num_shards < 1:
        raise GlacierInputError(f"num_shards={num_shards}: must be >= 1")
    if shard is not None and scenes is not None:
        raise GlacierInputError("give either scenes=START-END or shard=i num_shards=N, not both")
    if shard is not None:
        if not 0 <= shard < num_shards:
            raise GlacierInputError(f"shard={shard} must lie in 0..{num_shards - 1} (num_shards)")
        return list(range(shard, count, num_shards))
    if scenes is None:
        return list(range(count))
    try:
        start, end = (int(part) for part in str(scenes).split("-"))
    except ValueError as error:
        raise GlacierInputError(f"scenes must look like START-END, got {scenes!r}") from error
    if not 0 <= start <= end < count:
        raise GlacierInputError(f"scenes={scenes} is outside 0-{count - 1}")
    return list(range(start, end + 1))


def check_stage(stage: str, selected: int, count: int) -> None:
    """Refuse an unknown ``stage`` and a gather restricted to some scenes.

    Args:
        stage: ``all`` (process the selected scenes; gather when they are every scene) or
            ``gather`` (process nothing; wait for the shards, then gather).
        selected: Number of scenes the run selected.
        count: Number of scenes in the data config.

    Raises:
        GlacierInputError: For an unknown stage, or ``stage=gather`` with ``shard=``/``scenes=``.
    """
    if stage not in STAGES:
        raise GlacierInputError(f"stage={stage!r}: use one of {', '.join(STAGES)}")
    if stage == "gather" and selected < count:
        raise GlacierInputError(
            "stage=gather gathers every scene: drop shard=/scenes= (the shards run separately)"
        )


def staging_name(scene_id: str, token: str) -> str:
    """Name of a run's private staging folder for one scene (``scene_{id}.{token}``)."""
    return f"scene_{scene_id}.{token}"


def stale_stagings(root: Path, scene_id: str) -> list[Path]:
    """Staging folders that earlier runs left for exactly this scene.

    Scene ids may contain dots, so ``scene_a.*`` would also match scene ``a.1``'s folders,
    which another shard may be writing; only ``scene_{id}.{8 hex digits}`` is this scene's.

    Args:
        root: The ``.staging`` folder.
        scene_id: The scene.

    Returns:
        The folders, sorted.
    """
    token = "[0-9a-f]" * TOKEN_LENGTH
    return sorted(root.glob(f"{glob.escape(staging_name(scene_id, ''))}{token}"))


def missing_message(missing: list[str], count: int, waited: float) -> str:
    """The error of a gather that found scenes without a current stage record."""
    shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
    return (
        f"{len(missing)} of {count} scenes are not processed with the current inputs and "
        f"settings after waiting {waited:g} s: {shown}. Run their shards (shard=i "
        "num_shards=N, same data/filter/split), wait longer (wait_for_shards=SECONDS), or "
        "preprocess without stage=gather to process them here"
    )


def await_shards(
    missing: Callable[[], list[str]], count: int, seconds: float, poll_seconds: float
) -> None:
    """Wait up to ``seconds`` until no scene is missing (the shards have staged them all).

    Args:
        missing: Lists the scenes not processed yet.
        count: Number of scenes in the data config.
        seconds: How long to wait.
        poll_seconds: Seconds between two looks.

    Raises:
        GlacierInputError: Naming the scenes still missing at the deadline.
    """
    left = wait_until(missing, seconds, poll_seconds, "the shards' scenes")
    if left:
        raise GlacierInputError(missing_message(list(left), count, seconds))
