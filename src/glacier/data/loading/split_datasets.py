"""A processed dataset's splits as window datasets, from its index (one fold resolved) and store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glacier.data.contract import (
    REBUILD_HINT,
    SPLITS,
    DatasetContract,
    DatasetInfo,
    DatasetLayout,
)
from glacier.data.factory import open_store
from glacier.data.hkh import ReleaseStore
from glacier.data.loading.windows import WindowDataset
from glacier.data.preprocess import resolve_fold
from glacier.data.store import SceneStore
from glacier.errors import GlacierInputError


def open_indexed_store(
    processed_dir: Path, contract: DatasetContract, info: DatasetInfo, fold: int | None
) -> tuple[SceneStore | ReleaseStore, pd.DataFrame]:
    """The dataset's index (``fold`` resolved) and its pixel store, every indexed scene present.

    Args:
        processed_dir: Folder written by preprocessing.
        contract: Its contract.
        info: Its ``dataset.json`` info (storage kind, folds).
        fold: The cross-validation fold to train, or None.

    Returns:
        The store and the index.

    Raises:
        GlacierInputError: The index is missing, or the store lacks a file the index names.
    """
    index_path = DatasetLayout(processed_dir).index
    if not index_path.is_file():
        raise GlacierInputError(f"{index_path} is missing; {REBUILD_HINT}")
    index = resolve_fold(pd.read_csv(index_path), fold, info.folds, str(index_path))
    store = open_store(processed_dir, contract, info, index)
    missing = store.missing(sorted(index["scene"].astype(str).unique()))
    if missing:
        raise GlacierInputError(
            f"the processed dataset {processed_dir} lacks {len(missing)} file(s) its "
            f"index names, e.g. {missing[0]}; {REBUILD_HINT}"
        )
    return store, index


def split_datasets(
    store: SceneStore | ReleaseStore, index: pd.DataFrame, processed_dir: Path
) -> dict[str, WindowDataset]:
    """One batched window dataset per split of ``index``.

    Raises:
        GlacierInputError: The index names no training slice.
    """
    datasets = {
        split: WindowDataset(store, index[index["split"] == split], batched=True)
        for split in SPLITS
    }
    if not len(datasets["train"]):
        raise GlacierInputError(f"{DatasetLayout(processed_dir).index} names no training slice")
    return datasets
