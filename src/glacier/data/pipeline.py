"""The preprocessing pipeline: scenes (labels, stored pixels, windows) → gather → postprocess.

Every scene is processed into a private staging folder and swapped into place only when every
scene of the run succeeded, so a failure leaves earlier outputs untouched. A stage whose
fingerprint (inputs, band names, formulas, settings, format version) is unchanged is skipped.
Shards (``scenes=START-END`` or ``shard=i num_shards=N``) write only their own scenes' files;
the gather step (any run that covers every scene) writes the shared files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from joblib import Parallel, delayed

from glacier.data.bands import validate_derived
from glacier.data.channels import spec_contract
from glacier.data.filtering import SliceFilter
from glacier.data.masks import burn_labels, outside_region
from glacier.data.outlines import ClassOutlines, load_outlines
from glacier.data.postprocess import (
    INDEX_COLUMNS,
    assign_splits,
    channel_stats,
    progress_bar,
    write_dataset,
)
from glacier.data.scene import open_scene
from glacier.data.schema import FORMAT_VERSION, IGNORE_INDEX, DatasetContract
from glacier.data.slicing import open_scene_arrays, slice_scene
from glacier.data.spec import DataSpec, SceneSpec
from glacier.data.storage import SceneStore, mask_path, scene_dir
from glacier.data.validate import InputHeaders, scene_fingerprint, validate_inputs
from glacier.errors import GlacierInputError
from glacier.utils.io import (
    files_fingerprint,
    fingerprint,
    replace_directory,
    write_json_atomic,
    write_text_atomic,
)

log = logging.getLogger(__name__)
STAGING = ".staging"


class Splitter(Protocol):
    """What a ``split/`` config builds."""

    def describe(self) -> dict[str, object]:
        """Settings for fingerprints."""

    def assign(self, slices: pd.DataFrame) -> pd.Series:
        """Split name per slice ("" = dropped)."""


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


def process_scene(
    spec: DataSpec,
    contract: DatasetContract,
    scene: SceneSpec,
    outlines: ClassOutlines,
    staging: Path,
) -> dict[str, Any]:
    """Burn labels, store pixels and index the slice windows of one scene, into ``staging``.

    Args:
        spec: The data config.
        contract: The dataset contract (channel order and dtypes).
        scene: The scene.
        outlines: Loaded outlines.
        staging: Empty folder receiving ``scenes/{id}/`` and ``masks/mask_{id}.npy``.

    Returns:
        ``{"meta": mask_metadata row, "slices": slice records}``.

    Raises:
        GlacierInputError: If no outline overlaps the scene or it has no valid pixel.
    """
    with open_scene(scene, spec) as reader:
        if reader.band_names != contract.channel_names:
            raise GlacierInputError(
                f"scene {scene.id!r} reads channels {reader.band_names}, the dataset stores "
                f"{contract.channel_names}; give every scene the same bands"
            )
        labels, counts = burn_labels(spec, scene, outlines, reader)
        region = outside_region(spec.region, reader) if spec.region is not None else None
        store = SceneStore(staging, contract.channels)
        *images, labels_path = store.paths(scene.id)
        narrowed_names = set(spec.storage_dtypes)
        narrowed = {i for i, name in enumerate(contract.channel_names) if name in narrowed_names}
        with ExitStack() as stack:
            arrays = open_scene_arrays(contract, labels.shape[:2], labels, images, stack)
            records = slice_scene(
                reader, contract, arrays, region, spec.overlap, scene.id, narrowed
            )
        invalid = labels[..., 0] == IGNORE_INDEX
        if invalid.all():
            raise GlacierInputError(
                f"scene '{scene.id}' ({scene.sources[0].path}) has no valid pixel: every pixel "
                "is nodata (declared nodata value, NaN, outside the band files or data.region)"
            )
        labels_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(labels_path, labels, allow_pickle=False)
        meta = {
            "id": scene.id,
            "image": ";".join(str(s.path) for s in scene.sources),
            "mask": str(labels_path.relative_to(staging)),
            "width": reader.width,
            "height": reader.height,
            "crs": reader.crs.to_string(),
            "classes": ";".join(spec.classes),
            **counts,
            "nodata_fraction": float(invalid.mean()),
            **{
                f"fraction_{c}": float((labels[..., i] == 1).mean())
                for i, c in enumerate(spec.classes)
            },
        }
    return {"meta": meta, "slices": records}


def publish_scene(staging: Path, processed_dir: Path, scene_id: str) -> None:
    """Move a staged scene's files into place (replacing its earlier files)."""
    scene_dir(processed_dir, scene_id).parent.mkdir(parents=True, exist_ok=True)
    replace_directory(scene_dir(staging, scene_id), scene_dir(processed_dir, scene_id))
    target = mask_path(processed_dir, scene_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(mask_path(staging, scene_id), target)


def slices_geojson(records: pd.DataFrame) -> str:
    """Slice footprints (EPSG:4326, densified edges) with their statistics, as GeoJSON text."""
    frames = []
    for crs, group in records.groupby("crs", sort=False):
        boxes = shapely.box(group.x_min, group.y_min, group.x_max, group.y_max)
        frame = gpd.GeoDataFrame(group, geometry=list(boxes), crs=crs)
        frames.append(frame.set_geometry(frame.geometry.segmentize(1000.0)).to_crs("EPSG:4326"))
    merged = gpd.GeoDataFrame(pd.concat(frames), crs="EPSG:4326").sort_values(["scene", "slice"])
    return str(merged.to_json(drop_id=True))


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
    ) -> None:
        if n_jobs == 0 or n_jobs < -1:
            raise GlacierInputError(f"n_jobs={n_jobs}: use a positive number, or -1 for all CPUs")
        self.data = data
        self.filter = filter
        self.split = split
        self.processed_dir = Path(processed_dir)
        self.selected = select_scenes(len(data.scenes), scenes, shard, num_shards)
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
        write_json_atomic(self._state_path(name), {"fingerprint": key, "payload": payload})

    def scene_key(self, scene: SceneSpec) -> str:
        """Fingerprint of everything that changes a scene's stored files and slice records."""
        data = self.data
        extra_files = [f for f in (data.region, data.dem) if f is not None]
        header = next(h for h in self.headers.scenes if h.id == scene.id)
        return fingerprint(
            FORMAT_VERSION,
            self.contract.to_dict(),
            scene_fingerprint(header),  # band names and order, file sizes, times, grids
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
            token = uuid.uuid4().hex[:8]
            root = self.processed_dir / STAGING
            stagings = {s.id: root / f"scene_{s.id}.{token}" for s in todo}
            for scene in todo:  # leftovers of this scene's interrupted runs
                for stale in root.glob(f"scene_{scene.id}.*"):
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

    def gather(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every scene's metadata row and slice records; writes ``mask_metadata.csv``.

        Raises:
            GlacierInputError: While some scene is not processed (shards still running).
        """
        metas, records, missing = [], [], []
        for scene in self.data.scenes:
            state = self._load_state(f"scene_{scene.id}", self.scene_key(scene))
            if state is None:
                missing.append(scene.id)
                continue
            metas.append(state["payload"]["meta"])
            records.extend(state["payload"]["slices"])
        if missing:
            raise GlacierInputError(
                f"scenes {missing[:5]} ({len(missing)} of {len(self.data.scenes)}) are not "
                "processed yet: run the remaining shards, or preprocess without shard=/scenes="
            )
        table = pd.DataFrame(metas)
        write_text_atomic(self.processed_dir / "mask_metadata.csv", table.to_csv(index=False))
        slices = pd.DataFrame(records)
        write_text_atomic(self.processed_dir / "slices" / "slices.geojson", slices_geojson(slices))
        return table, slices

    def run_postprocess(self, slices: pd.DataFrame) -> dict[str, Any]:
        """Filter, split, compute training statistics; write ``splits.csv`` and ``dataset.json``.

        Args:
            slices: Slice records of every scene.

        Returns:
            The ``dataset.json`` content.
        """
        key = self.postprocess_key()
        state = self._load_state("postprocess", key)
        if state is not None:
            log.info("postprocess: unchanged, skipped")
            return dict(state["payload"])
        keep = self.filter.select(slices, self.data.classes)
        index, counts = assign_splits(slices, keep, self.split.assign(slices), len(slices))
        store = SceneStore(self.processed_dir, self.contract.channels)
        train = index[index["split"] == "train"]
        stats = channel_stats(store, train, self.contract.channel_names, self.progress)
        contract = self.contract.with_stats(stats)
        extra = {"counts": counts, "storage": "scenes", "overlap": self.data.overlap}
        info = write_dataset(self.processed_dir, index[INDEX_COLUMNS], contract, extra)
        self._save_state("postprocess", key, info)
        log.info("postprocess: %s", counts)
        return info

    def run(self) -> dict[str, Any] | None:
        """Run every stage (skipping unchanged ones).

        Returns:
            The ``dataset.json`` content, or None when this run was a shard and other scenes
            are still missing.
        """
        self.check_inputs()
        self.processed_dir.mkdir(parents=True, exist_ok=True)
        self.run_scenes()
        if len(self.selected) < len(self.data.scenes):
            done = [
                s.id
                for s in self.data.scenes
                if self._load_state(f"scene_{s.id}", self.scene_key(s)) is not None
            ]
            if len(done) < len(self.data.scenes):
                log.info(
                    "shard done; %d of %d scenes processed: postprocess runs once all are",
                    len(done),
                    len(self.data.scenes),
                )
                return None
        _, slices = self.gather()
        return self.run_postprocess(slices)
