"""The HKH release's preprocessor: index its patches in place, then filter, split, statistics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glacier.data.contract import (
    FORMAT_VERSION,
    SLICES_FILE,
    STORAGE_RELEASE,
    DatasetContract,
    DatasetInfo,
    DatasetLayout,
)
from glacier.data.hkh.footprints import BOUNDS, release_footprints
from glacier.data.hkh.release import HkhRelease, slice_statistics
from glacier.data.hkh.release_facts import RELEASE_METADATA, ReleaseSlice
from glacier.data.hkh.store import ReleaseStore
from glacier.data.preprocess import (
    POSTPROCESS,
    SliceFilter,
    Splitter,
    assign_splits,
    channel_stats,
    dataset_generation,
    discard_staging,
    fold_info,
    index_columns,
    publish_dataset,
    remove_dead_stagings,
    slices_geojson,
    stage_payload,
    stage_record_path,
    write_stage_record,
)
from glacier.errors import GlacierInputError
from glacier.utils.io import files_fingerprint, fingerprint
from glacier.utils.parallel import ordered_results
from glacier.utils.progress import progress_bar
from glacier.utils.publish import finish_publications, new_token, pending_publications

log = logging.getLogger(__name__)
INDEX_STAGE = "release_index"  # the stage record of the release's footprints and statistics


def index_slice(pair: ReleaseSlice, classes: Sequence[str]) -> dict[str, Any]:
    """Statistics of one pair (reads both files once).

    Raises:
        GlacierInputError: Naming a file with the wrong shape or one that cannot be read.
    """
    try:
        image = np.load(pair.image, mmap_mode="r")
        mask = np.load(pair.mask, mmap_mode="r")
    except (ValueError, OSError, EOFError) as error:
        raise GlacierInputError(f"cannot read {pair.image} / {pair.mask}: {error}") from error
    if mask.shape != (*image.shape[:2], len(classes)):
        raise GlacierInputError(
            f"{pair.mask} has shape {mask.shape}; a release mask is (S, S, 3) next to its "
            f"image {image.shape}"
        )
    return slice_statistics(np.asarray(image), np.asarray(mask), classes)


class ReleasePreprocessor:
    """Index the release's slices in place, then filter, split and compute statistics.

    Args:
        data: The release description.
        filter: Which slices to keep.
        split: How to assign train/dev/test (geographic splits use the corrected footprints).
        processed_dir: Where the index, footprints and contract go.
        n_jobs: Slices indexed in parallel.
        progress: Show progress bars.
    """

    def __init__(
        self,
        data: HkhRelease,
        filter: SliceFilter,
        split: Splitter,
        processed_dir: str | Path,
        n_jobs: int = 1,
        progress: bool = True,
    ) -> None:
        self.data = data
        self.filter = filter
        self.split = split
        self.processed_dir = Path(processed_dir)
        self.n_jobs = n_jobs
        self.progress = progress

    def index_key(self, pairs: Sequence[ReleaseSlice]) -> str:
        """Fingerprint of every slice file, the tiles and the metadata."""
        root = self.data.root
        metadata = root / RELEASE_METADATA
        extra = sorted((root / "raster_data").glob("*.tif")) + (
            [metadata] if metadata.is_file() else []
        )
        files = [path for pair in pairs for path in (pair.image, pair.mask)] + extra
        return fingerprint(FORMAT_VERSION, self.data.describe(), files_fingerprint(files))

    def build_index(self, pairs: Sequence[ReleaseSlice], size: int) -> pd.DataFrame:
        """Footprints and statistics of every pair (cached by :meth:`index_key`)."""
        key = self.index_key(pairs)
        cached = stage_payload(self.processed_dir, INDEX_STAGE, key)
        if cached is not None:
            return pd.DataFrame(cached)
        frame = release_footprints(self.data.root, pairs, size)
        index_pair = partial(index_slice, classes=self.data.classes)
        results = ordered_results(index_pair, pairs, self.n_jobs)
        stats = list(progress_bar(results, len(pairs), "index", self.progress))
        frame = pd.concat([frame, pd.DataFrame(stats)], axis=1)
        frame["size"] = size
        frame["image"] = [str(p.image.relative_to(self.data.root)) for p in pairs]
        frame["mask"] = [str(p.mask.relative_to(self.data.root)) for p in pairs]
        path = stage_record_path(self.processed_dir, INDEX_STAGE)
        write_stage_record(path, key, frame.to_dict("list"))
        return frame

    def contract_and_pairs(self) -> tuple[Any, list[ReleaseSlice]]:
        """The contract (slice size from the files) and the slice pairs."""
        pairs = self.data.slices()
        return self.data.contract(self.data.slice_size(pairs[0])), pairs

    def is_complete(self) -> bool:
        """Whether the index, split and statistics match the files and settings, published whole."""
        contract, pairs = self.contract_and_pairs()
        key = self.postprocess_key(contract, pairs)
        return stage_payload(self.processed_dir, POSTPROCESS, key) is not None and (
            self._published()
        )

    def postprocess_key(self, contract: DatasetContract, pairs: Sequence[ReleaseSlice]) -> str:
        """Fingerprint of the slice files, the contract, the filter and the split."""
        return fingerprint(
            self.index_key(pairs),
            contract.to_dict(),
            self.filter.describe(),
            self.split.describe(),
        )

    def _published(self) -> bool:
        """Whether no publication is pending and every index file is there."""
        root = self.processed_dir
        layout = DatasetLayout(root)
        files = [layout.index, layout.info]
        return not pending_publications(root) and all(path.is_file() for path in files)

    def _assign(self, index: pd.DataFrame, classes: Sequence[str]) -> tuple[pd.DataFrame, Any]:
        """Filter and split the indexed slices."""
        keep = self.filter.select(index, list(classes))
        if index[BOUNDS].isna().any(axis=None) and "geographic" in str(self.split.describe()):
            raise GlacierInputError(
                "a geographic split needs slice footprints: give the release's raster_data/ "
                "(exact) or its slices/slices.geojson (approximate)"
            )
        return assign_splits(index, keep, self.split, len(index))

    def run(self) -> dict[str, Any]:
        """Index (or reuse the index), filter, split, compute statistics; publish the dataset.

        The index files (``slices/slices.geojson``, ``splits.csv``, ``dataset.json``) are
        written into a staging folder and published together as the next generation (the rule
        of :mod:`glacier.utils.publish`); the release's files are only read.

        Returns:
            The ``dataset.json`` content.
        """
        self.processed_dir.mkdir(parents=True, exist_ok=True)
        finish_publications(self.processed_dir)
        remove_dead_stagings(self.processed_dir, {})
        contract, pairs = self.contract_and_pairs()
        index = self.build_index(pairs, contract.slice_size)
        key = self.postprocess_key(contract, pairs)
        cached = stage_payload(self.processed_dir, POSTPROCESS, key)
        if cached is not None and self._published():
            log.info("postprocess: unchanged, skipped")
            return dict(cached)
        chosen, counts = self._assign(index, contract.classes)
        store = ReleaseStore(self.data.root, chosen, self.data.stats_max_slices, self.data.seed)
        train = chosen[chosen["split"] == "train"]
        stats = channel_stats(store, train, contract.channel_names, self.progress)
        folds, fold_counts = fold_info(chosen, self.split)
        extra = DatasetInfo(
            counts=counts,
            storage=STORAGE_RELEASE,
            release_root=self.data.root.resolve(),
            folds=folds,
            fold_counts=fold_counts,
            generation=(dataset_generation(self.processed_dir) or 0) + 1,
        )
        located = index.dropna(subset=BOUNDS)
        files = {SLICES_FILE: slices_geojson(located)} if len(located) else {}
        token = new_token()
        try:
            info = publish_dataset(
                self.processed_dir,
                token,
                files,
                chosen[[*index_columns(chosen), "image", "mask"]],
                contract.with_stats(stats),
                extra,
                key,
            )
        except BaseException:
            discard_staging(self.processed_dir, token, keep_ready=False)
            raise
        log.info("release: %d slices indexed in place, %s", len(index), counts)
        return info
