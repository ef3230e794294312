"""The preprocessing pipeline: masks → slices → postprocess, re-runnable and shardable."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import pandas as pd
import shapely
from joblib import Parallel, delayed
from tqdm import tqdm

from glacier.data.bands import validate_derived
from glacier.data.filtering import SliceFilter
from glacier.data.masks import generate_masks
from glacier.data.outlines import ClassOutlines, load_outlines
from glacier.data.postprocess import channel_stats, finalize, write_splits
from glacier.data.slicing import write_pair_slices
from glacier.data.spec import DataSpec, SceneSpec
from glacier.errors import GlacierInputError, require_file
from glacier.utils.io import (
    files_fingerprint,
    fingerprint,
    remove_stale_temps,
    write_json_atomic,
    write_text_atomic,
)

log = logging.getLogger(__name__)
FORMAT_VERSION = 1  # bump when the meaning of any stored artifact changes


class Splitter(Protocol):
    """What a ``split/`` config builds."""

    def describe(self) -> dict[str, object]:
        """Settings for fingerprints."""

    def assign(self, slices: pd.DataFrame) -> pd.Series:
        """Split name per slice."""


def parse_scene_range(scenes: str | None, count: int) -> range:
    """Turn ``"START-END"`` (inclusive, rows of mask_metadata.csv) into a range of scenes.

    Args:
        scenes: The ``scenes=`` override, or None for all.
        count: Number of scenes in the dataset.

    Returns:
        The selected scene indices.
    """
    if scenes is None:
        return range(count)
    try:
        start, end = (int(part) for part in str(scenes).split("-"))
    except ValueError as error:
        raise GlacierInputError(f"scenes must look like START-END, got {scenes!r}") from error
    if not 0 <= start <= end < count:
        raise GlacierInputError(f"scenes={scenes} is outside 0-{count - 1}")
    return range(start, end + 1)


class Preprocessor:
    """Turn raw scenes and outlines into a normalized, split slice dataset.

    Every stage writes atomically and records a fingerprint of its inputs and settings under
    ``.stages/``; a stage whose fingerprint is unchanged is skipped.

    Args:
        data: The dataset description.
        filter: Which slices to keep.
        split: How to assign train/dev/test.
        processed_dir: Output root (``paths.processed_dir``).
        scenes: Optional ``"START-END"`` range of scenes to mask and slice (sharding).
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
        n_jobs: int = 1,
        progress: bool = True,
    ) -> None:
        self.data = data
        self.filter = filter
        self.split = split
        self.processed_dir = Path(processed_dir)
        self.scene_range = parse_scene_range(scenes, len(data.scenes))
        self.n_jobs = n_jobs
        self.progress = progress
        self._outlines: ClassOutlines | None = None

    # -- stage bookkeeping -------------------------------------------------------------------
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

    def _mask_key(self, scene: SceneSpec) -> str:
        label_files = [s.path for s in self.data.labels] + (
            [self.data.region] if self.data.region else []
        )
        described = self.data.describe()
        return fingerprint(
            FORMAT_VERSION,
            {k: described[k] for k in ("classes", "labels", "nodata", "date_filter", "region")},
            files_fingerprint([s.path for s in scene.sources]),
            files_fingerprint(label_files),
        )

    def _slice_key(self, mask_key: str) -> str:
        described = self.data.describe()
        settings = ("slice_size", "overlap", "derived", "band_roles", "dem")
        dem = files_fingerprint([self.data.dem]) if self.data.dem else None
        return fingerprint(FORMAT_VERSION, mask_key, {k: described[k] for k in settings}, dem)

    def check_inputs(self) -> None:
        """Fail fast, naming the file, when an input file is missing (before writing anything).

        Raises:
            GlacierFileNotFoundError: For the first missing file.
            GlacierInputError: If a derived channel cannot be computed from a scene's bands.
        """
        for scene in self.data.scenes:
            for source in scene.sources:
                require_file(source.path, f"scene '{scene.id}' band file")
            validate_derived(
                self.data.derived, scene.band_names, self.data.band_roles, self.data.dem is not None
            )
        for label in self.data.labels:
            require_file(label.path, "outline file (data.labels)")
        if self.data.region is not None:
            require_file(self.data.region, "region polygon file (data.region)")
        if self.data.dem is not None:
            require_file(self.data.dem, "DEM (data.dem)")

    def is_complete(self) -> bool:
        """Whether the final dataset exists and matches the current inputs and settings."""
        self.check_inputs()
        return self._load_state("postprocess", self._postprocess_key()) is not None

    # -- stages --------------------------------------------------------------------------------
    def _parallel(self, func: Callable[..., Any], items: list[Any], desc: str) -> list[Any]:
        """Run ``func`` over items with joblib, with a progress bar."""
        if not items:
            return []
        tasks = (delayed(func)(item) for item in items)
        runner = Parallel(n_jobs=self.n_jobs, return_as="generator")
        results: Iterable[Any] = runner(tasks)
        return list(tqdm(results, total=len(items), desc=desc, disable=not self.progress))

    def _masks_for(self, scene: SceneSpec) -> dict[str, Any]:
        assert self._outlines is not None
        return generate_masks(self.data, scene, self._outlines, self.processed_dir)

    def run_masks(self) -> list[dict[str, Any]]:
        """Burn masks for the selected scenes and write ``mask_metadata.csv``.

        Returns:
            The metadata rows of the selected scenes.
        """
        scenes = [self.data.scenes[i] for i in self.scene_range]
        keys = {s.id: self._mask_key(s) for s in scenes}
        cached = {s.id: self._load_state(f"masks_{s.id}", keys[s.id]) for s in scenes}
        todo = [s for s in scenes if cached[s.id] is None]
        if todo:
            self._outlines = load_outlines(self.data)
        for scene, row in zip(todo, self._parallel(self._masks_for, todo, "masks"), strict=True):
            self._save_state(f"masks_{scene.id}", keys[scene.id], row)
        rows = []
        for scene in self.data.scenes:
            state = self._load_state(f"masks_{scene.id}", self._mask_key(scene))
            if state is not None:
                rows.append(state["payload"])
        table = pd.DataFrame(rows)
        first = ["id", "image", "mask", "width", "height", "crs", "classes"]
        table = table[first + [c for c in table.columns if c not in first]]
        write_text_atomic(self.processed_dir / "mask_metadata.csv", table.to_csv(index=False))
        log.info("masks: %d scene(s), %d reused", len(scenes), len(scenes) - len(todo))
        return [row for row in rows if row["id"] in keys]

    def _slices_for(self, scene: SceneSpec) -> list[dict[str, Any]]:
        mask = self.processed_dir / "masks" / f"mask_{scene.id}.npy"
        return write_pair_slices(self.data, scene, mask, self.processed_dir)

    def run_slices(self) -> list[dict[str, Any]]:
        """Slice the selected scenes and write their slice metadata GeoJSON.

        Returns:
            One record per slice of the selected scenes.
        """
        scenes = [self.data.scenes[i] for i in self.scene_range]
        keys = {s.id: self._slice_key(self._mask_key(s)) for s in scenes}
        cached = {s.id: self._load_state(f"slices_{s.id}", keys[s.id]) for s in scenes}
        todo = [s for s in scenes if cached[s.id] is None]
        for scene in todo:
            self._state_path(f"slices_{scene.id}").unlink(missing_ok=True)
        for scene, records in zip(
            todo, self._parallel(self._slices_for, todo, "slices"), strict=True
        ):
            self._save_state(f"slices_{scene.id}", keys[scene.id], records)
        records = []
        for scene in scenes:
            state = self._load_state(f"slices_{scene.id}", keys[scene.id])
            assert state is not None
            records.extend(state["payload"])
        self._write_slice_geojson(records)
        log.info(
            "slices: %d scene(s), %d reused, %d slices",
            len(scenes),
            len(scenes) - len(todo),
            len(records),
        )
        return records

    def _write_slice_geojson(self, records: list[dict[str, Any]]) -> None:
        """Write slice footprints (EPSG:4326) with their statistics as GeoJSON."""
        frames = []
        table = pd.DataFrame(records)
        for crs, group in table.groupby("crs", sort=False):
            boxes = shapely.box(group.x_min, group.y_min, group.x_max, group.y_max)
            frame = gpd.GeoDataFrame(group, geometry=list(boxes), crs=crs)
            frames.append(frame.set_geometry(frame.geometry.segmentize(1000.0)).to_crs("EPSG:4326"))
        merged = gpd.GeoDataFrame(pd.concat(frames), crs="EPSG:4326").sort_values(
            ["scene", "slice"]
        )
        full = len(self.scene_range) == len(self.data.scenes)
        name = (
            "slices.geojson"
            if full
            else f"slices_{self.scene_range.start}-{self.scene_range.stop - 1}.geojson"
        )
        write_text_atomic(self.processed_dir / "slices" / name, merged.to_json(drop_id=True))

    def _all_slice_records(self) -> list[dict[str, Any]] | None:
        """Records of every scene, or None while some scene is not sliced yet."""
        records = []
        for scene in self.data.scenes:
            state = self._load_state(f"slices_{scene.id}", self._slice_key(self._mask_key(scene)))
            if state is None:
                return None
            records.extend(state["payload"])
        return records

    def _postprocess_key(self) -> str:
        slice_keys = [self._slice_key(self._mask_key(s)) for s in self.data.scenes]
        return fingerprint(
            FORMAT_VERSION, slice_keys, self.filter.describe(), self.split.describe()
        )

    def run_postprocess(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Filter, split, compute train statistics and write normalized ``train/ dev/ test/``.

        Args:
            records: Slice records of every scene.

        Returns:
            The dataset description written to ``dataset.json``.
        """
        key = self._postprocess_key()
        state = self._load_state("postprocess", key)
        if state is not None:
            log.info("postprocess: unchanged, skipped")
            return dict(state["payload"])
        self._state_path("postprocess").unlink(missing_ok=True)
        slices = pd.DataFrame(records)
        slices = slices[self.filter.select(slices, self.data.classes)].copy()
        slices["split"] = self.split.assign(slices).to_numpy()
        slices = slices[slices["split"] != ""]
        counts = {name: int((slices["split"] == name).sum()) for name in ("train", "dev", "test")}
        if not counts["train"]:
            raise GlacierInputError(
                f"no training slices left after filter and split ({len(records)} sliced); "
                "loosen filter/ or check split/ regions"
            )
        stats = channel_stats(
            self.processed_dir, slices[slices["split"] == "train"], self.data.channels
        )
        staging = self.processed_dir / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        write_splits(self.processed_dir, slices, stats, staging)
        write_text_atomic(
            staging / "splits.csv", slices[["scene", "slice", "split"]].to_csv(index=False)
        )
        info = {
            "name": self.data.name,
            "channels": self.data.channels,
            "classes": self.data.classes,
            "channel_sets": self.data.channel_sets,
            "slice_size": self.data.slice_size,
            "counts": counts,
            "data": self.data.describe(),
        }
        (staging / "splits.csv").replace(self.processed_dir / "splits.csv")
        finalize(self.processed_dir, staging, stats, info)
        self._save_state("postprocess", key, info)
        log.info("postprocess: %s", counts)
        return info

    def run(self) -> dict[str, Any] | None:
        """Run every stage (skipping unchanged ones).

        Returns:
            The dataset description, or None when only a shard was sliced and other scenes are
            still missing.
        """
        self.check_inputs()
        self.processed_dir.mkdir(parents=True, exist_ok=True)
        for name in ("mask_metadata.csv", "splits.csv", "stats.json", "dataset.json"):
            remove_stale_temps(self.processed_dir, name)
        self.run_masks()
        self.run_slices()
        records = self._all_slice_records()
        if records is None:
            log.info("postprocess waits until every scene is sliced (run without scenes=)")
            return None
        return self.run_postprocess(records)
