"""Publishing an index (the tail every preprocessor shares), and the gather step of scenes.

:func:`publish_dataset` stages a new index and publishes it with the ready scenes as the next
generation; :func:`publish_gathered` is the gather step of scene preprocessing: every scene's
records → the index, published.

Filter, split (or folds), statistics from the scenes' cell moments (no pixel is read again) and
value ranges from every :data:`~glacier.data.preprocess.value_ranges.RANGE_ROW_STEP`-th row of
the training windows; then the index is published with the ready scenes as the next generation
(:func:`~glacier.data.preprocess.publishing.publish_dataset`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from glacier.data.contract import (
    SCENE_TABLE_FILE,
    SLICES_FILE,
    STORAGE_SCENES,
    DatasetContract,
    DatasetInfo,
    storage_groups,
)
from glacier.data.preprocess.filtering import SliceFilter
from glacier.data.preprocess.moments import CellMoments, training_stats
from glacier.data.preprocess.postprocess import (
    assign_splits,
    fold_info,
    index_columns,
    write_dataset,
)
from glacier.data.preprocess.protocol import Splitter
from glacier.data.preprocess.publishing import (
    GatheredScenes,
    next_generation,
    publish_generation,
    stage_index,
)
from glacier.data.preprocess.scene_stage import slices_geojson
from glacier.data.preprocess.staging import StagedScene
from glacier.data.preprocess.value_ranges import training_ranges
from glacier.data.spec import DataSpec
from glacier.data.store import SceneStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gathered:
    """What the publication of a dataset is computed from.

    Attributes:
        table: Every scene's metadata row.
        slices: Slice records of every scene.
        staged: Ready scenes to publish with the index.
        moments: Each scene's cell moments (the statistics of any training set).
    """

    table: pd.DataFrame
    slices: pd.DataFrame
    staged: list[StagedScene]
    moments: dict[str, CellMoments]

    @classmethod
    def of(cls, found: GatheredScenes) -> Gathered:
        """The gathered scenes' records as frames, their moments parsed."""
        moments = {scene: CellMoments.from_text(text) for scene, text in found.moments.items()}
        return cls(pd.DataFrame(found.metas), pd.DataFrame(found.records), found.staged, moments)


@dataclass(frozen=True)
class IndexTarget:
    """The dataset an index is published into.

    Attributes:
        root: The processed folder.
        data: Its data config.
        contract: Its contract without statistics.
        key: The postprocess fingerprint.
    """

    root: Path
    data: DataSpec
    contract: DatasetContract
    key: str


def publish_gathered(
    target: IndexTarget, filter: SliceFilter, split: Splitter, token: str, gathered: Gathered
) -> dict[str, Any]:
    """Filter, split, compute statistics; publish the staged scenes and the index together.

    Returns:
        The ``dataset.json`` content.
    """
    root, data, contract = target.root, target.data, target.contract
    slices, staged = gathered.slices, gathered.staged
    keep = filter.select(slices, data.classes)
    index, counts = assign_splits(slices, keep, split, len(slices))
    store = SceneStore(root, contract.channels, {s.scene_id: s.folder for s in staged})
    train = index[index["split"] == "train"]  # with folds: every non-test slice
    names = contract.channel_names
    stats = training_stats(gathered.moments, train, names, storage_groups(contract.channels))
    stats = replace(stats, ranges=training_ranges(store, train, names))
    ids = [scene.id for scene in data.scenes]
    generation, generations, restamp = next_generation(root, ids, {s.scene_id for s in staged})
    folds, fold_counts = fold_info(index, split)
    info = DatasetInfo(
        counts=counts,
        storage=STORAGE_SCENES,
        overlap=data.overlap,
        folds=folds,
        fold_counts=fold_counts,
        generation=generation,
        scene_generations=generations,
    )
    files = {
        SCENE_TABLE_FILE: gathered.table.to_csv(index=False),
        SLICES_FILE: slices_geojson(slices),
    }
    index = index[index_columns(index)]
    written = publish_dataset(
        root, token, files, index, contract.with_stats(stats), info, target.key, staged, restamp
    )
    log.info("postprocess: %s", counts)
    return written


def publish_dataset(
    root: Path,
    token: str,
    files: Mapping[str, str],
    index: pd.DataFrame,
    contract: DatasetContract,
    info: DatasetInfo,
    key: str,
    staged: Sequence[StagedScene] = (),
    restamp: Sequence[str] = (),
) -> dict[str, Any]:
    """Stage a new index and publish it with the ready scenes as generation ``info.generation``.

    The one tail of every preprocessor: :func:`stage_index` (``files``, then ``splits.csv`` and
    ``dataset.json`` by :func:`~glacier.data.preprocess.postprocess.write_dataset`, then the
    postprocess record), then :func:`publish_generation`.

    Args:
        root: The dataset folder.
        token: The run's staging token.
        files: Index files written as they are (``mask_metadata.csv``, ``slices.geojson``).
        index: The kept slices with their split (the columns ``splits.csv`` keeps).
        contract: The contract, with statistics.
        info: The rest of ``dataset.json`` (its generation is the one published).
        key: The postprocess fingerprint.
        staged: Ready scenes published with the index.
        restamp: Published scenes without a generation stamp (they get this one).

    Returns:
        The ``dataset.json`` content.
    """
    index_dir, written = stage_index(
        root, token, files, lambda folder: write_dataset(folder, index, contract, info), key
    )
    publish_generation(root, list(staged), index_dir, int(info.generation or 0), list(restamp))
    return written
