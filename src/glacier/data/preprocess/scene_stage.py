"""The per-scene stage of preprocessing: labels, stored pixels and slice windows of one scene.

A scene is written into a private staging folder (:func:`process_scene`, :func:`stage_scenes`)
and published with the dataset's next index (:mod:`glacier.data.preprocess.publishing`); its
slice records feed the gather step (:func:`slices_geojson`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from glacier.data.contract import DatasetContract
from glacier.data.labels import ClassOutlines, burn_labels, load_outlines, outside_region
from glacier.data.preprocess.shards import staging_name, stale_stagings
from glacier.data.preprocess.slice_labels import LabelTotals, label_pass
from glacier.data.preprocess.slicing import open_scene_arrays, slice_scene
from glacier.data.preprocess.staging import ScenePayload, mark_ready
from glacier.data.preprocess.strips import SlicedPixels
from glacier.data.raster import SceneReader, open_scene
from glacier.data.spec import DataSpec, SceneSpec
from glacier.data.store import SceneStore
from glacier.errors import GlacierInputError
from glacier.utils.forked import Forked
from glacier.utils.parallel import ordered_results
from glacier.utils.progress import progress_bar
from glacier.utils.publish import create_staging, remove_folder, staging_root

FOOTPRINT_STEP = 1000.0  # metres between the vertices of a footprint's edges (scene CRS units)
WGS84 = pyproj.CRS.from_epsg(4326)


@dataclass
class OutlineLoader:
    """A dataset's outlines, loaded on the first call and kept.

    A run of one scene leaves the loading to the child that burns its labels, beside the
    pixel pass (what loading logs is logged by this process all the same, see
    :class:`~glacier.utils.forked.Forked`); a run of several loads them once, before the first
    child forks.
    """

    spec: DataSpec
    loaded: ClassOutlines | None = None

    def __call__(self) -> ClassOutlines:
        """The outlines (:func:`glacier.data.labels.load_outlines`)."""
        if self.loaded is None:
            self.loaded = load_outlines(self.spec)
        return self.loaded


def process_scene(
    spec: DataSpec,
    contract: DatasetContract,
    scene: SceneSpec,
    outlines: OutlineLoader,
    staging: Path,
) -> ScenePayload:
    """Burn labels, store pixels and index the slice windows of one scene, into ``staging``.

    The labels are burned in a forked child (:class:`glacier.utils.forked.Forked`: GDAL's
    rasterizer holds the GIL) while this process stores the pixels; the label pass then marks
    the pixel pass's nodata in them and builds the slice records.

    Args:
        spec: The data config.
        contract: The dataset contract (channel order and dtypes).
        scene: The scene.
        outlines: The dataset's outlines (loaded by whoever needs them first).
        staging: Empty folder receiving ``scenes/{id}/`` and ``masks/mask_{id}.npy``.

    Returns:
        Its ``mask_metadata.csv`` row, slice records and the valid pixels' moments per cell of
        the window grid.

    Raises:
        GlacierInputError: If no outline overlaps the scene or it has no valid pixel.
    """
    with open_scene(scene, spec) as reader:
        if reader.band_names != contract.channel_names:
            raise GlacierInputError(
                f"scene {scene.id!r} reads channels {reader.band_names}, the dataset stores "
                f"{contract.channel_names}; give every scene the same bands"
            )
        store = SceneStore(staging, contract.channels)
        *images, labels_path = store.paths(scene.id)
        with closing(Forked(burn_labels_into, spec, scene, outlines, reader, labels_path)) as burn:
            sliced = _pixel_pass(spec, contract, scene, reader, images, burn.done)
            counts = burn.result()
        labels = np.load(labels_path, mmap_mode="r+")
        records, totals = label_pass(
            sliced,
            labels,
            contract.classes,
            len(contract.channels),
            scene.id,
            reader.crs.to_string(),
            reader.transform,
        )
        del labels  # written back as np.save wrote it: no synchronous flush to disk
        if totals.invalid == totals.pixels:
            raise GlacierInputError(
                f"scene '{scene.id}' ({scene.sources[0].path}) has no valid pixel: every pixel "
                "is nodata (declared nodata value, NaN, outside the band files or data.region)"
            )
        mask = str(labels_path.relative_to(staging))
        meta = scene_meta(spec, scene, reader, totals, counts, mask)
    return ScenePayload(meta, records, sliced.moments.to_text())


def _pixel_pass(
    spec: DataSpec,
    contract: DatasetContract,
    scene: SceneSpec,
    reader: SceneReader,
    images: list[Path],
    labels_done: Callable[[], bool],
) -> SlicedPixels:
    """Store the scene's pixels into ``images`` (see :func:`slice_scene`).

    ``labels_done``: whether the labels' child is done (a thread may then read ahead).
    """
    region = (
        outside_region(spec.region, reader, spec.region_layer) if spec.region is not None else None
    )
    narrowed_names = set(spec.storage_dtypes)
    narrowed = {i for i, name in enumerate(contract.channel_names) if name in narrowed_names}
    with ExitStack() as stack:
        arrays = open_scene_arrays(contract, (reader.height, reader.width), images, stack)
        return slice_scene(
            reader, contract, arrays, region, spec.overlap, scene.id, narrowed, labels_done
        )


def burn_labels_into(
    spec: DataSpec, scene: SceneSpec, outlines: OutlineLoader, reader: SceneReader, path: Path
) -> dict[str, int]:
    """Burn the scene's labels (:func:`glacier.data.labels.burn_labels`) into the file ``path``.

    Returns:
        The ``polygons_{class}`` counts of polygons touching the scene.
    """
    labels, counts = burn_labels(spec, scene, outlines(), reader)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_array(path, labels)
    return counts


def scene_meta(
    spec: DataSpec,
    scene: SceneSpec,
    reader: SceneReader,
    totals: LabelTotals,
    counts: Mapping[str, Any],
    mask: str,
) -> dict[str, Any]:
    """A scene's row of ``mask_metadata.csv`` (``mask``: its label array, relative)."""
    return {
        "id": scene.id,
        "image": ";".join(str(s.path) for s in scene.sources),
        "mask": mask,
        "width": reader.width,
        "height": reader.height,
        "crs": reader.crs.to_string(),
        "classes": ";".join(spec.classes),
        **counts,
        "nodata_fraction": totals.nodata_fraction,
        **{f"fraction_{c}": totals.class_fraction(i) for i, c in enumerate(spec.classes)},
    }


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save``, with the file named in the error of a failed write (a full disk)."""
    try:
        np.save(path, array, allow_pickle=False)
    except OSError as error:
        error.filename = error.filename or str(path)
        raise


def stage_scenes(
    spec: DataSpec,
    contract: DatasetContract,
    todo: list[SceneSpec],
    keys: dict[str, str],
    root: Path,
    token: str,
    n_jobs: int = 1,
    progress: bool = True,
) -> None:
    """Store scenes, each into its own staging folder, marking each ready as it completes.

    Args:
        spec: The data config.
        contract: The dataset contract.
        todo: Scenes to store.
        keys: Scene id → fingerprint (recorded in its ready stage record).
        root: The dataset folder (its ``.staging/`` receives ``scene_{id}.{token}/``).
        token: This run's staging token.
        n_jobs: Scenes stored in parallel (joblib; 1: in this process, joblib not imported).
        progress: Show a progress bar.
    """
    if not todo:
        return
    outlines = OutlineLoader(spec)
    if len(todo) > 1 or n_jobs != 1:
        outlines()  # once, here: every scene's burning child inherits them
    for scene in todo:  # leftovers of this scene's interrupted runs, and only this scene's
        for stale in stale_stagings(staging_root(root), scene.id):
            remove_folder(stale)
    stagings = {s.id: create_staging(root, staging_name(s.id, token)) for s in todo}

    def work(scene: SceneSpec) -> ScenePayload:
        return process_scene(spec, contract, scene, outlines, stagings[scene.id])

    results = ordered_results(work, todo, n_jobs)
    for scene, result in zip(
        todo, progress_bar(results, len(todo), "scenes", progress), strict=True
    ):
        mark_ready(stagings[scene.id], keys[scene.id], result)


def slices_geojson(records: pd.DataFrame) -> str:
    """Slice footprints (EPSG:4326, densified edges) with their statistics, as GeoJSON text.

    Each footprint is its window's box in the scene CRS, an extra vertex every
    :data:`FOOTPRINT_STEP` metres along the edges, reprojected point by point (one pyproj
    call per CRS); features are ordered by scene and slice, properties are the record's
    columns (NaN as null). The text is what ``GeoDataFrame.to_json(drop_id=True)`` writes for
    the same features, without building a geometry object per feature.
    """
    ordered = records.sort_values(["scene", "slice"])
    boxes = shapely.box(ordered.x_min, ordered.y_min, ordered.x_max, ordered.y_max)
    coords, owner = shapely.get_coordinates(
        shapely.segmentize(boxes, FOOTPRINT_STEP), return_index=True
    )
    crs_of_point = ordered["crs"].to_numpy()[owner]
    for crs in pd.unique(ordered["crs"]):
        if pyproj.CRS.from_user_input(crs).is_exact_same(WGS84):
            continue
        points = crs_of_point == crs
        to_wgs84 = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
        coords[points, 0], coords[points, 1] = to_wgs84.transform(
            coords[points, 0], coords[points, 1]
        )
    # (x, y) tuples in one call (a structured view); each footprint's ring is a slice of them
    points = np.ascontiguousarray(coords).view([("x", "f8"), ("y", "f8")]).ravel().tolist()
    bounds = [0, *(np.flatnonzero(np.diff(owner)) + 1).tolist(), len(points)]
    properties = ordered.astype(object)
    properties[ordered.isna().to_numpy()] = None
    names = list(ordered.columns)
    features = [
        {
            "type": "Feature",
            "properties": dict(zip(names, row, strict=True)),
            "geometry": {"type": "Polygon", "coordinates": [points[start:stop]]},
        }
        for row, start, stop in zip(properties.to_numpy(), bounds[:-1], bounds[1:], strict=True)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})
