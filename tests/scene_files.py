"""Tiny raster/polygon writers for tests that need a plain scene of a chosen size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin

CRS = "EPSG:32645"
ORIGIN = (478000.0, 3108140.0)
PIXEL = 30.0


def write_scene(path: Path, width: int, height: int, bands: int = 4, seed: int = 0) -> Path:
    """A float32 scene with a bright disc (the 'glacier') on a darker noisy background.

    Returns:
        The written path.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    disc = (rows - height / 2) ** 2 + (cols - width / 2) ** 2 < (min(width, height) / 3) ** 2
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": "float32",
        "crs": CRS,
        "transform": from_origin(*ORIGIN, PIXEL, PIXEL),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        for band in range(1, bands + 1):
            layer = rng.uniform(0.05, 0.3, (height, width)).astype(np.float32)
            layer[disc] += 0.5 + 0.05 * band
            dst.write(layer, band)
    return path


def write_disc_outline(path: Path, width: int, height: int) -> Path:
    """The disc of :func:`write_scene` as a polygon (EPSG:4326) with a ``year`` column."""
    x0, y0 = ORIGIN
    centre = shapely.Point(x0 + PIXEL * width / 2, y0 - PIXEL * height / 2)
    disc = centre.buffer(PIXEL * min(width, height) / 3)
    frame = gpd.GeoDataFrame({"year": [2000]}, geometry=[disc], crs=CRS).to_crs("EPSG:4326")
    frame.to_file(path)
    return path


def tree_checksums(root: Path, skip: tuple[str, ...] = (".stages",)) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path → digest), skipping folders."""
    digests = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(part in skip for part in relative.parts):
            digests[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def slice_window(out: Path, tile: object) -> tuple[np.ndarray, np.ndarray]:
    """A slice of a processed dataset as a (S, S, C) float32 image (NaN nodata) and its labels.

    Args:
        out: The processed dataset folder.
        tile: A row of ``slices.geojson`` or ``splits.csv`` (scene, row_off, col_off, size).
    """
    from glacier.data.contract import load_contract
    from glacier.data.store import SceneStore

    contract, _ = load_contract(out)
    store = SceneStore(out, contract.channels)
    row = dict(tile)  # type: ignore[call-overload]
    return store.slice_image(
        str(row["scene"]), int(row["row_off"]), int(row["col_off"]), int(row["size"])
    )
