"""The preprocessing pipeline: scenes (labels, stored pixels, windows) → gather → postprocess.

Every scene is stored into a private staging folder; the run then computes the index (filter,
split, statistics) over the staged scenes and the published ones, and publishes scenes and
index together as the dataset's next generation (:mod:`glacier.data.preprocess.publishing`), so
a failure, Ctrl-C or a kill at any moment leaves the earlier dataset or the new one, never a
mix. A stage whose fingerprint (inputs, band names, formulas, settings, format version) is
unchanged is skipped. Shards (``scenes=START-END`` or ``shard=i num_shards=N``) stage only their
own scenes and publish nothing; the gather step (a run that covers every scene; ``stage=gather``
waits for the shards and processes no scene itself) publishes (see
:mod:`glacier.data.preprocess.shards`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from glacier.data.checks import InputHeaders, scene_input_fingerprint, validate_inputs
from glacier.data.contract import (
    FORMAT_VERSION,
    DatasetContract,
    DatasetLayout,
)
from glacier.data.preprocess.filtering import SliceFilter
from glacier.data.preprocess.gather import Gathered, IndexTarget, publish_gathered
from glacier.data.preprocess.protocol import Splitter
from glacier.data.preprocess.publishing import (
    current_scene,
    dataset_generation,
    gather_scenes,
    index_is_whole,
)
from glacier.data.preprocess.scene_stage import stage_scenes
from glacier.data.preprocess.shards import (
    await_shards,
    check_stage,
    missing_message,
    select_scenes,
)
from glacier.data.preprocess.staging import (
    discard_staging,
    ready_scenes,
    remove_dead_stagings,
)
from glacier.data.raster import spec_contract, validate_derived
from glacier.data.spec import DataSpec, SceneSpec
from glacier.errors import GlacierInputError, RunInterrupted
from glacier.utils.io import files_fingerprint, fingerprint
from glacier.utils.publish import finish_publications, new_token

log = logging.getLogger(__name__)
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

    @property
    def is_shard(self) -> bool:
        """Whether this run covers only some scenes (it stages them and publishes nothing)."""
        return len(self.selected) < len(self.data.scenes)

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
            {"overlap": data.overlap, "region": str(data.region), "dem": str(data.dem)}
            | ({"region_layer": data.region_layer} if data.region_layer else {}),
        )

    def postprocess_key(self) -> str:
        """Fingerprint of the filter, split and every scene (what ``dataset.json`` depends on)."""
        keys = [self.scene_key(scene) for scene in self.data.scenes]
        return fingerprint(FORMAT_VERSION, keys, self.filter.describe(), self.split.describe())

    def scene_keys(self) -> dict[str, str]:
        """Every scene's fingerprint, in dataset order."""
        return {scene.id: self.scene_key(scene) for scene in self.data.scenes}

    # -- checks --------------------------------------------------------------------------------
    def check_inputs(self) -> None:
        """Check every input from its header before anything is written (no pixel pass).

        Scenes (existence, CRS, transform, band counts, dtypes, band-file coverage), DEM,
        region and outline files (CRS, layers, class and date columns) and derived channels.

        Raises:
            GlacierInputError: A subclass whose one-line message names the file or config key.
        """
        _ = self.headers
        for scene in self.data.scenes:
            validate_derived(
                self.data.derived, scene.band_names, self.data.band_roles, self.data.dem is not None
            )
        _ = self.contract

    def is_published(self, key: str | None = None) -> bool:
        """Whether the published index is of ``key`` (default: the current one) and whole."""
        ids = [scene.id for scene in self.data.scenes]
        key = key or self.postprocess_key()
        return index_is_whole(self.processed_dir, self.contract.channels, ids, key)

    def is_complete(self) -> bool:
        """Whether the dataset exists, matches the inputs and settings, and is whole."""
        self.check_inputs()
        return self.is_published()

    # -- stages --------------------------------------------------------------------------------
    def recover(self) -> None:
        """Finish a publication a killed run committed; remove what dead runs left staged."""
        finish_publications(self.processed_dir)
        remove_dead_stagings(self.processed_dir, self.scene_keys())

    def run_scenes(self, token: str) -> None:
        """Stage the selected scenes that have no current files, each marked ready when done."""
        scenes = [self.data.scenes[i] for i in self.selected]
        keys = {s.id: self.scene_key(s) for s in scenes}
        ready = ready_scenes(self.processed_dir)
        channels = self.contract.channels
        todo = [
            s
            for s in scenes
            if current_scene(self.processed_dir, channels, s.id, keys[s.id], ready)[0] is None
        ]
        stage_scenes(
            self.data,
            self.contract,
            todo,
            keys,
            self.processed_dir,
            token,
            self.n_jobs,
            self.progress,
        )
        log.info("scenes: %d selected, %d reused", len(scenes), len(scenes) - len(todo))

    def missing_scenes(self) -> list[str]:
        """Scenes without current files, published or ready (shards still running)."""
        return gather_scenes(self.processed_dir, self.contract.channels, self.scene_keys()).missing

    def gather(self) -> Gathered:
        """Every scene's metadata row, slice records and cell moments, and the staged scenes.

        Raises:
            GlacierInputError: While some scene is not processed (shards still running).
        """
        found = gather_scenes(self.processed_dir, self.contract.channels, self.scene_keys())
        if found.missing:
            raise GlacierInputError(missing_message(found.missing, len(self.data.scenes), 0))
        return Gathered.of(found)

    def publish(self, token: str, gathered: Gathered) -> dict[str, Any]:
        """Filter, split, compute statistics; publish the staged scenes and the index together.

        Args:
            token: This run's staging token.
            gathered: Every scene's records and moments, and the ready scenes to publish.

        Returns:
            The ``dataset.json`` content.
        """
        key = self.postprocess_key()
        if not gathered.staged and self.is_published(key):
            log.info("postprocess: unchanged, skipped")
            return dict(json.loads(DatasetLayout(self.processed_dir).info.read_text()))
        target = IndexTarget(self.processed_dir, self.data, self.contract, key)
        return publish_gathered(target, self.filter, self.split, token, gathered)

    def kept(self, generation: int | None) -> str:
        """What an interrupted run leaves: the dataset it found, or the one it published."""
        now = dataset_generation(self.processed_dir)
        state = "unchanged" if now == generation else "published"
        text = f"the dataset in {self.processed_dir} is {state} (generation {now or 'none'})"
        if self.is_shard:
            return text + "; the scenes this shard finished stay staged for the gather"
        return text + "; this run's staged files were removed"

    def run(self) -> dict[str, Any] | None:
        """Run every stage (skipping unchanged ones) and publish the result as one generation.

        A shard stages its scenes and stops: it publishes nothing. ``stage=gather`` processes
        no scene; it waits for the shards (``wait_for_shards``), then publishes.

        Returns:
            The ``dataset.json`` content, or None when this run was a shard.
        """
        self.check_inputs()
        self.processed_dir.mkdir(parents=True, exist_ok=True)
        self.recover()
        before = dataset_generation(self.processed_dir)
        token = new_token()
        try:
            if self.stage == "gather":
                count = len(self.data.scenes)
                await_shards(self.missing_scenes, count, self.wait_for_shards, self.poll_seconds)
            else:
                self.run_scenes(token)
                if self.is_shard:
                    log.info(
                        "shard done; %d of %d scenes processed. Once all are: `glacier "
                        "preprocess stage=gather` (same data/filter/split) publishes the dataset",
                        len(self.data.scenes) - len(self.missing_scenes()),
                        len(self.data.scenes),
                    )
                    return None
            return self.publish(token, self.gather())
        except (KeyboardInterrupt, RunInterrupted) as stop:
            discard_staging(self.processed_dir, token, keep_ready=self.is_shard)
            raise RunInterrupted.of(stop, self.kept(before)) from None
        except BaseException:
            discard_staging(self.processed_dir, token, keep_ready=self.is_shard)
            raise
