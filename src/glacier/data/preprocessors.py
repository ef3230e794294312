"""Choose the preprocessing pipeline for a ``data/`` config."""

from __future__ import annotations

from pathlib import Path

from glacier.data.filtering import SliceFilter
from glacier.data.hkh_lila import HkhPatches, PatchImporter
from glacier.data.pipeline import Preprocessor, Splitter
from glacier.data.spec import DataSpec


def build_preprocessor(
    data: DataSpec | HkhPatches,
    filter: SliceFilter,
    split: Splitter,
    processed_dir: str | Path,
    scenes: str | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> Preprocessor:
    """The pipeline for a ``data/`` config: scene preprocessing, or patch import for HKH.

    Args:
        data: Scenes + outlines, or ready-made patches.
        filter: Which slices to keep.
        split: How to assign train/dev/test.
        processed_dir: Output root.
        scenes: ``START-END`` shard of scenes (scene data only).
        n_jobs: Scenes processed in parallel (scene data only).
        progress: Show progress bars.

    Returns:
        A :class:`Preprocessor` or :class:`PatchImporter`.
    """
    if isinstance(data, HkhPatches):
        return PatchImporter(data, filter, split, processed_dir, progress=progress)
    return Preprocessor(data, filter, split, processed_dir, scenes, n_jobs, progress)
