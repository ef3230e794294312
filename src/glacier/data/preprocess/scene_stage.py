"""The per-scene stage of preprocessing: labels, stored pixels and slice windows of one scene.

A scene is written into a private staging folder (:func:`process_scene`) and moved into the
processed dataset only when it is complete (:func:`publish_scene`); its slice records feed the
gather step (:func:`slices_geojson`).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from glacier.data.contract import IGNORE_INDEX, DatasetContract, mask_path, scene_dir
from glacier.data.labels import ClassOutlines, burn_labels, outside_region
from glacier.data.preprocess.slicing import open_scene_arrays, slice_scene
from glacier.data.raster import open_scene
from glacier.data.spec import DataSpec, SceneSpec
from glacier.data.store import SceneStore
from glacier.errors import GlacierInputError
from glacier.utils.io import replace_directory


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
