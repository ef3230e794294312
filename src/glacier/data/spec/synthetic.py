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
from rasterio.features import rasterize
from rasterio.transform import from_origin

from glacier.utils.io import atomic_path, write_json_atomic

BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
REFLECTANCE = {  # class id -> mean reflectance per band
    0: (0.09, 0.11, 0.13, 0.26, 0.23, 0.16),  # rock, soil, sparse vegetation
    1: (0.78, 0.74, 0.70, 0.56, 0.07, 0.05),  # clean ice / snow
    2: (0.16, 0.18, 0.20, 0.20, 0.33, 0.29),  # debris-covered ice
}
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


def _pixel_geometries(width: int, height: int) -> dict[str, Any]:
    """Outline shapes in pixel coordinates (col, row)."""
    w, h, r = width, height, min(width, height)
    ring = shapely.Point(0.25 * w, 0.3 * h).buffer(0.17 * r)
    hole = shapely.Point(0.25 * w, 0.3 * h).buffer(0.06 * r)
    ellipse = shapely.affinity.scale(shapely.Point(0.62 * w, 0.2 * h).buffer(0.07 * r), 1.4, 1.0)
    return {
        "hole_ring": ring.difference(hole),
        "multi": shapely.MultiPolygon([ellipse, shapely.Point(0.72 * w, 0.4 * h).buffer(0.06 * r)]),
        "edge": shapely.box(0.86 * w, 0.5 * h, 1.2 * w, 0.7 * h),
        "outside": shapely.box(1.5 * w, 0.2 * h, 1.7 * w, 0.4 * h),
        "bowtie": shapely.Polygon(
            [(0.08 * w, 0.72 * h), (0.28 * w, 0.95 * h), (0.28 * w, 0.72 * h), (0.08 * w, 0.95 * h)]
        ),
        "old": shapely.box(0.4 * w, 0.8 * h, 0.5 * w, 0.93 * h),
        "debris": shapely.Polygon(
            [(0.42 * w, 0.45 * h), (0.62 * w, 0.47 * h), (0.6 * w, 0.68 * h), (0.44 * w, 0.66 * h)]
        ),
    }


def _to_map(geometry: Any, transform: Affine) -> Any:
    """Pixel (col, row) coordinates → map coordinates."""
    return shapely.transform(geometry, lambda xy: np.column_stack(transform @ xy.T))


def _class_map(shapes: dict[str, Any], width: int, height: int) -> np.ndarray:
    """0 background, 1 clean ice (valid, current-year polygons), 2 debris; in pixel space."""
    ice = [shapely.make_valid(shapes[k]) for k in ("hole_ring", "multi", "edge", "bowtie", "old")]
    classes = rasterize(((g, 1) for g in ice), out_shape=(height, width), dtype=np.uint8)
    debris = rasterize([(shapes["debris"], 2)], out_shape=(height, width), dtype=np.uint8)
    labels: np.ndarray = np.where(debris == 2, debris, classes)
    return labels


def _scene_pixels(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(6, H, W) float32 reflectance with smooth texture, SLC-off stripes (0) and a NaN patch."""
    from scipy.ndimage import gaussian_filter  # here: `glacier preprocess` starts without SciPy

    height, width = classes.shape
    texture = gaussian_filter(rng.normal(0, 1, (height, width)), sigma=6)
    texture /= max(float(np.abs(texture).max()), 1e-6)
    image = np.empty((len(BANDS), height, width), dtype=np.float32)
    for band in range(len(BANDS)):
        means = np.array([REFLECTANCE[c][band] for c in range(3)], dtype=np.float32)
        image[band] = means[classes] * (1 + 0.12 * texture) + rng.normal(0, 0.01, classes.shape)
    image = np.clip(image, 0.001, 1.0)
    rows, cols = np.mgrid[0:height, 0:width]
    stripes = ((cols + 0.35 * rows) % 53) < 2
    image[:, stripes] = 0.0
    image[:, 4:12, 4:14] = np.nan
    return image


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


def _dem(width: int, height: int, transform: Affine) -> tuple[np.ndarray, Affine]:
    """Smooth terrain on a 60 m grid offset by 15 m, covering the scene with a margin."""
    x0, y0 = transform.c - 90 + 15, transform.f + 90 - 15
    cols, rows = width // 2 + 4, height // 2 + 4
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    elevation = 4200 + 900 * np.sin(3 * xx) * np.cos(2 * yy) + 400 * yy
    return elevation[None].astype(np.float32), from_origin(x0, y0, 60.0, 60.0)


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


def _check_points(width: int, height: int, transform: Affine) -> dict[str, tuple[float, float]]:
    """Map points tests look at: inside a hole, on a ring, debris, outside the region..."""
    pixel_points = {
        "hole": (0.25 * width, 0.3 * height),
        "ring": (0.25 * width + 0.11 * min(width, height), 0.3 * height),
        "debris": (0.52 * width, 0.56 * height),
        "outside_region": (0.95 * width, 0.1 * height),
        "background": (0.45 * width, 0.2 * height),
    }
    points = {}
    for name, pixel in pixel_points.items():
        x, y = transform @ pixel
        points[name] = (float(x), float(y))
    return points


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
    pixel_shapes = _pixel_geometries(width, height)
    image = _scene_pixels(_class_map(pixel_shapes, width, height), rng)
    shapes = {k: _to_map(g, transform) for k, g in pixel_shapes.items()}
    paths = {n: out_dir / f"{n}.gpkg" for n in ("clean_ice", "debris", "glaciers", "region")}
    scene = out_dir / "scene.tif"
    _write_raster(scene, image, transform, crs, nodata=0.0, descriptions=BANDS)
    _write_outlines(paths, shapes, crs)
    region = _to_map(shapely.box(-5, -5, 0.9 * width, height + 5), transform)
    _write_vector(paths["region"], gpd.GeoDataFrame(geometry=[region], crs=crs).to_crs(4326))
    dem_data, dem_transform = _dem(width, height, transform)
    dem = out_dir / "dem.tif"
    _write_raster(dem, dem_data, dem_transform, crs)
    points = _check_points(width, height, transform)
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
