"""The preprocessing pipeline: scenes (labels, stored pixels, windows) → gather → postprocess.

Every scene is processed into a private staging folder and swapped into place only when every
scene of the run succeeded, so a failure leaves earlier outputs untouched. A stage whose
fingerprint (inputs, band names, formulas, settings, format version) is unchanged is skipped.
Shards (``scenes=START-END`` or ``shard=i num_shards=N``) write only their own scenes' files;
the gather step (a run that covers every scene; ``stage=gather`` waits for the shards and
processes no scene itself) writes the shared files (see :mod:`glacier.data.preprocess.shards`).
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from joblib import Parallel, delayed

from glacier.data.checks import InputHeaders, scene_input_fingerprint, validate_inputs
from glacier.data.contract import FORMAT_VERSION, DatasetContract, storage_groups
from glacier.data.labels import load_outlines
from glacier.data.preprocess.filtering import SliceFilter
from glacier.data.preprocess.moments import CellMoments, training_stats
from glacier.data.preprocess.postprocess import (
    assign_splits,
    fold_info,
    index_columns,
    write_dataset,
)
from glacier.data.preprocess.protocol import Splitter
from glacier.data.preprocess.scene_stage import process_scene, publish_scene, slices_geojson
from glacier.data.preprocess.shards import (
    TOKEN_LENGTH,
    check_stage,
    missing_message,
    select_scenes,
    staging_name,
    stale_stagings,
)
from glacier.data.raster import spec_contract, validate_derived
from glacier.data.spec import DataSpec, SceneSpec
from glacier.data.store import SceneStore
from glacier.errors import GlacierInputError
from glacier.utils.cluster import wait_until
from glacier.utils.io import files_fingerprint, fingerprint, write_json_atomic, write_text_atomic
from glacier.utils.progress import progress_bar

log = logging.getLogger(__name__)
STAGING = ".staging"
# layout of a scene's stage record (its payload): part of every scene fingerprint, so records
# written by another layout are redone, never misread. 2: cell moments for the statistics
SCENE_RECORD = 2


class Preprocessor:
    """Turn raw scenes and outlines into a processed dataset (stored scenes + index + contract).

    Args:
        data: The dataset description.
        filter: Which slices to keep.
        split: How to assign train/dev/test.
        processed_dir: Output root (``paths.processed_dir``).
        scenes: Optional ``"START-END"`` range of scenes to process (a shard).
        shard: Optional shard index (with ``num_shards``): every N-th scene from ``shard``.
        num_shards: Number of shards.
        n_jobs: Scenes processed in parallel (joblib).
        progress: Show progress bars.
        stage: ``all`` (process the selected scenes, then gather if they are every scene) or
            ``gather`` (process no scene: wait for the shards' scenes, then gather).
        wait_for_shards: Seconds ``stage=gather`` waits for missing scenes before failing.
        poll_seconds: Seconds between two looks at the shards' stage records.
    """

    def __init__(
        self,
        data: DataSpec,
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
    ) -> None:
        if n_jobs == 0 or n_jobs < -1:
            raise GlacierInputError(f"n_jobs={n_jobs}: use a positive number, or -1 for all CPUs")
        self.data = data
        self.filter = filter
        self.split = split
        self.processed_dir = Path(processed_dir)
        self.selected = select_scenes(len(data.scenes), scenes, shard, num_shards)
        check_stage(stage, len(self.selected), len(data.scenes))
        self.stage = stage
        self.wait_for_shards = float(wait_for_shards)
        self.poll_seconds = float(poll_seconds)
        self.n_jobs = n_jobs
        self.progress = progress
        self._contract: DatasetContract | None = None
        self._headers: InputHeaders | None = None

    # -- fingerprints and stage records --------------------------------------------------------
    @property
    def contract(self) -> DatasetContract:
        """The dataset contract (channels from the scene headers), without statistics."""
        if self._contract is None:
            self._contract = spec_contract(self.data)
        return self._contract

    @property
    def headers(self) -> InputHeaders:
        """Headers of every input, checked (see :func:`validate_inputs`); read once."""
        if self._headers is None:
            self._headers = validate_inputs(self.data)
        return self._headers

    def _state_path(self, name: str) -> Path:
        return self.processed_dir / ".stages" / f"{name}.json"

    def _load_state(self, name: str, expected: str) -> dict[str, Any] | None:
        path = self._state_path(name)
        if not path.is_file():
            return None
        state: dict[str, Any] = json.loads(path.read_text())
        return state if state.get("fingerprint") == expected else None

    def _save_state(self, name: str, key: str, payload: Any) -> None:
        # compact: a scene's record holds every slice record and its cell moments
        record = {"fingerprint": key, "payload": payload}
        write_json_atomic(self._state_path(name), record, indent=None)

    def scene_key(self, scene: SceneSpec) -> str:
        """Fingerprint of everything that changes a scene's stored files and slice records."""
        data = self.data
        extra_files = [f for f in (data.region, data.dem) if f is not None]
        header = next(h for h in self.headers.scenes if h.id == scene.id)
        return fingerprint(
            FORMAT_VERSION,
            SCENE_RECORD,
            self.contract.to_dict(),
            scene_input_fingerprint(header),  # band names and order, file sizes, times, grids
            [vars(label) | {"path": str(label.path)} for label in data.labels],
            files_fingerprint([label.path for label in data.labels] + extra_files),
            vars(data.date_filter) if data.date_filter else None,
            {"overlap": data.overlap, "region": str(data.region), "dem": str(data.dem)},
        )

    def postprocess_key(self) -> str:
        """Fingerprint of the filter, split and every scene (what ``dataset.json`` depends on)."""
        keys = [self.scene_key(scene) for scene in self.data.scenes]
        return fingerprint(FORMAT_VERSION, keys, self.filter.describe(), self.split.describe())

    # -- checks --------------------------------------------------------------------------------
    def check_inputs(self) -> None:
        """Check every input from its header before anything is written (no pixel pass).

        Scenes (existence, CRS, transform, band counts, dtypes, band-file coverage), DEM,
        region and outline files (CRS, class and date columns) and derived channels.

        Raises:
            GlacierInputError: A subclass whose one-line message names the file or config key.
        """
        _ = self.headers
        for scene in self.data.scenes:
            validate_derived(
                self.data.derived, scene.band_names, self.data.band_roles, self.data.dem is not None
            )
        _ = self.contract

    def is_complete(self) -> bool:
        """Whether the dataset exists, matches the inputs and settings, and has every file."""
        self.check_inputs()
        if self._load_state("postprocess", self.postprocess_key()) is None:
            return False
        needed = [self.processed_dir / name for name in ("dataset.json", "splits.csv")]
        store = SceneStore(self.processed_dir, self.contract.channels)
        missing = [p for p in needed if not p.is_file()] + store.missing(
            [s.id for s in self.data.scenes]
        )
        if missing:
            log.warning(
                "processed dataset %s lacks %s: rebuilding", self.processed_dir, missing[:3]
            )
            return False
        return True

    # -- stages --------------------------------------------------------------------------------
    def _parallel(self, func: Callable[..., Any], items: list[Any], desc: str) -> list[Any]:
        """Run ``func`` over items with joblib, with a progress bar."""
        if not items:
            return []
        tasks = (delayed(func)(item) for item in items)
        runner = Parallel(n_jobs=self.n_jobs, return_as="generator")
        results: Iterable[Any] = runner(tasks)
        return list(progress_bar(results, len(items), desc, self.progress))

    def run_scenes(self) -> None:
        """Process the selected scenes whose stage records are stale; publish them together."""
        scenes = [self.data.scenes[i] for i in self.selected]
        keys = {s.id: self.scene_key(s) for s in scenes}
        store = SceneStore(self.processed_dir, self.contract.channels)
        todo = [
            s
            for s in scenes
            if self._load_state(f"scene_{s.id}", keys[s.id]) is None or store.missing([s.id])
        ]
        if todo:
            outlines = load_outlines(self.data)
            token = uuid.uuid4().hex[:TOKEN_LENGTH]
            root = self.processed_dir / STAGING
            stagings = {s.id: root / staging_name(s.id, token) for s in todo}
            for scene in todo:  # leftovers of this scene's interrupted runs, and only this scene's
                for stale in stale_stagings(root, scene.id):
                    shutil.rmtree(stale, ignore_errors=True)

            def work(scene: SceneSpec) -> dict[str, Any]:
                return process_scene(self.data, self.contract, scene, outlines, stagings[scene.id])

            try:
                results = self._parallel(work, todo, "scenes")
                for scene, result in zip(todo, results, strict=True):
                    publish_scene(stagings[scene.id], self.processed_dir, scene.id)
                    self._save_state(f"scene_{scene.id}", keys[scene.id], result)
            finally:
                for staging in stagings.values():
                    shutil.rmtree(staging, ignore_errors=True)
        log.info("scenes: %d selected, %d reused", len(scenes), len(scenes) - len(todo))

    def missing_scenes(self) -> list[str]:
        """Scenes without a stage record matching the current inputs and settings, or files."""
        store = SceneStore(self.processed_dir, self.contract.channels)
        return [
            scene.id
            for scene in self.data.scenes
            if self._load_state(f"scene_{scene.id}", self.scene_key(scene)) is None
            or store.missing([scene.id])
        ]

    def wait_for_scenes(self) -> None:
        """Wait up to ``wait_for_shards`` seconds until every scene is processed (by the shards).

        Raises:
            GlacierInputError: Naming the scenes still missing at the deadline.
        """
        missing = wait_until(
            self.missing_scenes, self.wait_for_shards, self.poll_seconds, "the shards' scenes"
        )
        if missing:
            raise GlacierInputError(
                missing_message(list(missing), len(self.data.scenes), self.wait_for_shards)
            )

    def gather(self) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, CellMoments]]:
        """Every scene's metadata row, slice records and cell moments.

        Writes ``mask_metadata.csv`` and ``slices/slices.geojson``.

        Raises:
            GlacierInputError: While some scene is not processed (shards still running).
        """
        missing = self.missing_scenes()
        if missing:
            raise GlacierInputError(missing_message(missing, len(self.data.scenes), 0))
        metas, records, moments = [], [], {}
        for scene in self.data.scenes:
            state = self._load_state(f"scene_{scene.id}", self.scene_key(scene))
            assert state is not None
            metas.append(state["payload"]["meta"])
            records.extend(state["payload"]["slices"])
            moments[scene.id] = CellMoments.from_text(state["payload"]["moments"])
        table = pd.DataFrame(metas)
        write_text_atomic(self.processed_dir / "mask_metadata.csv", table.to_csv(index=False))
        slices = pd.DataFrame(records)
        write_text_atomic(self.processed_dir / "slices" / "slices.geojson", slices_geojson(slices))
        return table, slices, moments

    def run_postprocess(
        self, slices: pd.DataFrame, moments: dict[str, CellMoments]
    ) -> dict[str, Any]:
        """Filter, split, compute training statistics; write ``splits.csv`` and ``dataset.json``.

        Args:
            slices: Slice records of every scene.
            moments: Each scene's cell moments (the statistics of any training set).

        Returns:
            The ``dataset.json`` content.
        """
        key = self.postprocess_key()
        state = self._load_state("postprocess", key)
        if state is not None:
            log.info("postprocess: unchanged, skipped")
            return dict(state["payload"])
        keep = self.filter.select(slices, self.data.classes)
        index, counts = assign_splits(slices, keep, self.split, len(slices))
        train = index[index["split"] == "train"]  # with folds: every non-test slice
        groups = storage_groups(self.contract.channels)
        stats = training_stats(moments, train, self.contract.channel_names, groups)
        contract = self.contract.with_stats(stats)
        extra = {"counts": counts, "storage": "scenes", "overlap": self.data.overlap}
        extra |= fold_info(index, self.split)
        info = write_dataset(self.processed_dir, index[index_columns(index)], contract, extra)
        self._save_state("postprocess", key, info)
        log.info("postprocess: %s", counts)
        return info

    def run(self) -> dict[str, Any] | None:
        """Run every stage (skipping unchanged ones).

        A shard processes its scenes and stops: it writes no file another shard writes.
        ``stage=gather`` processes no scene; it waits for the shards (``wait_for_shards``).

        Returns:
            The ``dataset.json`` content, or None when this run was a shard.
        """
        self.check_inputs()
        self.processed_dir.mkdir(parents=True, exist_ok=True)
        if self.stage == "gather":
            self.wait_for_scenes()
        else:
            self.run_scenes()
            if len(self.selected) < len(self.data.scenes):
                done = len(self.data.scenes) - len(self.missing_scenes())
                log.info(
                    "shard done; %d of %d scenes processed. Once all are: `glacier preprocess "
                    "stage=gather` (same data/filter/split) writes the index and statistics",
                    done,
                    len(self.data.scenes),
                )
                return None
        _, slices, moments = self.gather()
        return self.run_postprocess(slices, moments)
