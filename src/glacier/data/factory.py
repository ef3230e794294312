"""Which preprocessor and which pixel store a dataset uses.

Its own stored scenes, or the HKH release read in place. The one module of ``glacier.data``
that knows every data source; the DataModule and the preprocess task ask it instead of naming
the sources themselves.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glacier.data.contract import Channel, DatasetContract, DatasetInfo
from glacier.data.hkh import HkhRelease, ReleasePreprocessor, ReleaseStore, compact_release_channels
from glacier.data.preprocess import Preprocessor, SliceFilter, Splitter
from glacier.data.spec import DataSpec
from glacier.data.store import SceneStore
from glacier.errors import GlacierInputError


def build_preprocessor(
    data: DataSpec | HkhRelease,
    filter: SliceFilter,
    split: Splitter,
    processed_dir: str | Path,
    scenes: str | None = None,
    shard: int | None = None,
    num_shards: int = 1,
    n_jobs: int = 1,
    progress: bool = True,
    stage: str = "all",
    wait_for_shards: float = 0.0,
    poll_seconds: float = 10.0,
) -> Preprocessor | ReleasePreprocessor:
    """The pipeline for a ``data/`` config: scenes + outlines, or the HKH release in place.

    Args:
        data: Scenes + outlines, or the HKH release.
        filter: Which slices to keep.
        split: How to assign train/dev/test.
        processed_dir: Output root.
        scenes: ``START-END`` range of scenes to process (a shard; scene data only).
        shard: Shard index (with ``num_shards``; scene data only).
        num_shards: Number of shards.
        n_jobs: Scenes (or release slices) processed in parallel.
        progress: Show progress bars.
        stage: ``all``, or ``gather`` (wait for the shards' scenes, then gather; scene data).
        wait_for_shards: Seconds ``stage=gather`` waits for the shards.
        poll_seconds: Seconds between two looks at the shards' progress.

    Returns:
        The preprocessor.
    """
    if isinstance(data, HkhRelease):
        if scenes is not None or shard is not None or stage != "all":
            raise GlacierInputError(
                "scenes=/shard=/stage= split raw scenes between jobs; the HKH release is read "
                "in place"
            )
        return ReleasePreprocessor(data, filter, split, processed_dir, n_jobs, progress)
    return Preprocessor(
        data,
        filter,
        split,
        processed_dir,
        scenes,
        shard,
        num_shards,
        n_jobs,
        progress,
        stage=stage,
        wait_for_shards=wait_for_shards,
        poll_seconds=poll_seconds,
    )


def open_store(
    processed_dir: Path, contract: DatasetContract, info: DatasetInfo, index: pd.DataFrame
) -> SceneStore | ReleaseStore:
    """The pixel store of a processed dataset: its stored scenes, or the HKH release in place."""
    if info.in_release:
        root = info.release_root
        if root is None or not root.is_dir():
            raise GlacierInputError(
                f"{processed_dir}/dataset.json reads the HKH release in place from {root}, "
                "which is gone; re-run `glacier preprocess data=hkh_lila data.root=...`"
            )
        return ReleaseStore(root, index)
    return SceneStore(processed_dir, contract.channels)


def cache_channels(contract: DatasetContract, info: DatasetInfo) -> tuple[Channel, ...]:
    """The channels as a training cache keeps them: as stored, or the release's compacted."""
    if info.in_release:
        return compact_release_channels(contract.channels)
    return contract.channels
