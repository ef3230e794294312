"""Choose the preprocessing pipeline for a ``data/`` config."""

from __future__ import annotations

from pathlib import Path

from glacier.data.filtering import SliceFilter
from glacier.data.pipeline import Preprocessor, Splitter
from glacier.data.spec import DataSpec


def build_preprocessor(
    data: DataSpec,
    filter: SliceFilter,
    split: Splitter,
    processed_dir: str | Path,
    scenes: str | None = None,
    shard: int | None = None,
    num_shards: int = 1,
    n_jobs: int = 1,
    progress: bool = True,
) -> Preprocessor:
    """The pipeline for a ``data/`` config.

    Args:
        data: Scenes + outlines.
        filter: Which slices to keep.
        split: How to assign train/dev/test.
        processed_dir: Output root.
        scenes: ``START-END`` range of scenes to process (a shard).
        shard: Shard index (with ``num_shards``).
        num_shards: Number of shards.
        n_jobs: Scenes processed in parallel.
        progress: Show progress bars.

    Returns:
        The preprocessor.
    """
    return Preprocessor(
        data, filter, split, processed_dir, scenes, shard, num_shards, n_jobs, progress
    )
