"""A generated Landsat-like scene with clean-ice and debris outlines, for tests and trials.

The scene has bands ``blue, green, red, nir, swir1, swir2`` (float32 reflectance), nodata 0 in
diagonal stripes like Landsat 7 SLC-off and a NaN patch. Pixels inside the outlines look like
clean ice (bright, low SWIR) or debris (dark, high SWIR). The outline files exercise the geo
rules: a polygon with a hole, a MultiPolygon, one crossing the scene edge, one outside the scene,
one self-intersecting (bow-tie) polygon, one from a far year, and debris stored in EPSG:4326.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.transform import from_origin

from glacier.data.spec.synthetic_scene import (
    BANDS,
    check_points,
    class_map,
    dem_grid,
    pixel_geometries,
    scene_pixels,
    to_map,
)
from glacier.utils.io import atomic_path, write_json_atomic

MANIFEST = "synthetic.json"
VERSION = 2  # bump when the generated content changes


@dataclass(frozen=True)
class SyntheticDataset:
    """Paths and facts of a generated dataset (``points`` are scene-CRS coordinates)."""

    scene: Path
    clean_ice: Path
    debris: Path
    glaciers: Path
    region: Path
    dem: Path | None
    band_names: tuple[str, ...]
    crs: str
    transform: Affine
    width: int
    height: int
    points: dict[str, tuple[float, float]] = field(default_factory=dict)


def _write_raster(path: Path, data: np.ndarray, transform: Affine, crs: str, **extra: Any) -> None:
    descriptions = extra.pop("descriptions", ())
    profile = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": "float32",
        "crs": crs,
        "transform": transform,
        **extra,
    }
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        for index, name in enumerate(descriptions, start=1):
            dst.set_band_description(index, name)


def _write_vector(path: Path, frame: gpd.GeoDataFrame) -> None:
    """Write a GeoPackage under a temporary ``.gpkg`` name, then rename it into place.

    Polygons and MultiPolygons stay as they are (no promotion to multi), as in real outlines.
    """
    tmp = path.with_name(f".{path.stem}.partial.gpkg")
    tmp.unlink(missing_ok=True)
    frame.to_file(tmp, driver="GPKG", layer=path.stem, promote_to_multi=False)
    os.replace(tmp, path)


def _write_outlines(paths: dict[str, Path], shapes: dict[str, Any], crs: str) -> None:
    """The clean-ice (dated, one bow-tie), debris (EPSG:4326) and combined glacier files."""
    ice_keys = ("hole_ring", "multi", "edge", "outside", "bowtie", "old")
    years = [2000, 2001, 2000, 2000, 2000, 1990]
    clean = gpd.GeoDataFrame(
        {"name": list(ice_keys), "year": years, "date": [f"{y}-10-30" for y in years]},
        geometry=[shapes[k] for k in ice_keys],
        crs=crs,
    )
    _write_vector(paths["clean_ice"], clean)
    debris = gpd.GeoDataFrame(
        {"name": ["debris"], "year": [2000], "date": ["2000-10-30"]},
        geometry=[shapes["debris"]],
        crs=crs,
    )
    _write_vector(paths["debris"], debris.to_crs("EPSG:4326"))
    valid = clean[clean["name"] != "bowtie"]
    glaciers = gpd.GeoDataFrame(
        {"Glaciers": ["Clean Ice"] * len(valid) + ["Debris covered"], "Year": [*valid.year, 2000]},
        geometry=[*valid.geometry, shapes["debris"]],
        crs=crs,
    )
    _write_vector(paths["glaciers"], glaciers)


def generate_synthetic_dataset(
    out_dir: Path,
    width: int = 320,
    height: int = 256,
    seed: int = 0,
    crs: str = "EPSG:32645",
    resolution: float = 30.0,
    origin: tuple[float, float] = (478000.0, 3108140.0),
) -> SyntheticDataset:
    """Write the scene, outline files, region and DEM into ``out_dir``.

    Args:
        out_dir: Output folder.
        width: Scene width in pixels.
        height: Scene height in pixels.
        seed: Random seed (texture and noise).
        crs: Scene CRS (projected, metres).
        resolution: Pixel size in metres.
        origin: Upper-left corner (x, y).

    Returns:
        The dataset description.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    transform = from_origin(origin[0], origin[1], resolution, resolution)
    pixel_shapes = pixel_geometries(width, height)
    image = scene_pixels(class_map(pixel_shapes, width, height), rng)
    shapes = {k: to_map(g, transform) for k, g in pixel_shapes.items()}
    paths = {n: out_dir / f"{n}.gpkg" for n in ("clean_ice", "debris", "glaciers", "region")}
    scene = out_dir / "scene.tif"
    _write_raster(scene, image, transform, crs, nodata=0.0, descriptions=BANDS)
    _write_outlines(paths, shapes, crs)
    region = to_map(shapely.box(-5, -5, 0.9 * width, height + 5), transform)
    _write_vector(paths["region"], gpd.GeoDataFrame(geometry=[region], crs=crs).to_crs(4326))
    dem_data, dem_transform = dem_grid(width, height, transform)
    dem = out_dir / "dem.tif"
    _write_raster(dem, dem_data, dem_transform, crs)
    points = check_points(width, height, transform)
    return SyntheticDataset(
        scene=scene,
        dem=dem,
        band_names=BANDS,
        crs=crs,
        transform=transform,
        width=width,
        height=height,
        points=points,
        **paths,
    )


def ensure_synthetic_dataset(
    out_dir: Path, width: int = 320, height: int = 256, seed: int = 0
) -> SyntheticDataset:
    """Generate the dataset unless ``out_dir`` already holds it for the same parameters.

    The manifest ``synthetic.json`` records the parameters and files. Any earlier manifest is
    removed before files are rewritten and the new one is written last, so an interrupted
    generation is redone, never trusted.

    Args:
        out_dir: Output folder.
        width: Scene width in pixels.
        height: Scene height in pixels.
        seed: Random seed.

    Returns:
        The dataset description.
    """
    existing = find_synthetic_dataset(out_dir, width, height, seed)
    if existing is not None:
        return existing
    wanted = {"version": VERSION, "width": width, "height": height, "seed": seed}
    manifest = out_dir / MANIFEST
    manifest.unlink(missing_ok=True)  # files about to change: never trust a half-rewritten set
    dataset = generate_synthetic_dataset(out_dir, width=width, height=height, seed=seed)
    record = asdict(dataset)
    files = [dataset.scene, dataset.clean_ice, dataset.debris, dataset.glaciers, dataset.region]
    record |= {"transform": list(dataset.transform)[:6], "parameters": wanted}
    record["files"] = [str(p) for p in [*files, dataset.dem] if p]
    write_json_atomic(manifest, json.loads(json.dumps(record, default=str)))
    return dataset


def find_synthetic_dataset(
    out_dir: Path, width: int = 320, height: int = 256, seed: int = 0
) -> SyntheticDataset | None:
    """The dataset ``out_dir`` holds for these parameters, complete, or None."""
    wanted = {"version": VERSION, "width": width, "height": height, "seed": seed}
    stored = _read_manifest(out_dir / MANIFEST)
    if stored.get("parameters") == wanted and all(Path(p).is_file() for p in stored["files"]):
        return _from_manifest(stored)
    return None


def _read_manifest(manifest: Path) -> dict[str, Any]:
    """The stored manifest, or an empty dict when it is missing or unreadable."""
    try:
        stored = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) and isinstance(stored.get("files"), list) else {}


def _from_manifest(stored: dict[str, Any]) -> SyntheticDataset:
    """Rebuild the description from a manifest."""
    paths = {k: Path(stored[k]) for k in ("scene", "clean_ice", "debris", "glaciers", "region")}
    return SyntheticDataset(
        dem=Path(stored["dem"]) if stored.get("dem") else None,
        band_names=tuple(stored["band_names"]),
        crs=stored["crs"],
        transform=Affine(*stored["transform"]),
        width=int(stored["width"]),
        height=int(stored["height"]),
        points={k: (float(v[0]), float(v[1])) for k, v in stored["points"].items()},
        **paths,
    )
