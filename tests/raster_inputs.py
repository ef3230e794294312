"""Tiny raster, polygon and dataset writers for the input-validation tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.transform import from_origin

from glacier.data.spec import DataSpec

CRS = "EPSG:32645"
X0, Y0, PIXEL = 478000.0, 3108140.0, 30.0


def grid(col_off: float = 0, row_off: float = 0, pixel: float = PIXEL) -> Affine:
    """North-up transform whose origin is shifted by whole or partial pixels of the base grid."""
    return from_origin(X0 + col_off * PIXEL, Y0 - row_off * PIXEL, pixel, pixel)


def write_raster(
    path: Path,
    width: int = 80,
    height: int = 60,
    count: int = 1,
    value: float = 50,
    dtype: str = "uint8",
    transform: Affine | None = None,
    crs: str | None = CRS,
    nodata: float | None = None,
) -> Path:
    """A constant raster (band k holds ``value + k``); returns ``path``."""
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "transform": transform if transform is not None else grid(),
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        for band in range(count):
            dst.write(np.full((height, width), value + band, dtype=dtype), band + 1)
    return path


def write_polygons(
    path: Path,
    bounds: tuple[float, float, float, float] | None = None,
    columns: dict[str, list[object]] | None = None,
    crs: str | None = CRS,
) -> Path:
    """Boxes (one per row of ``columns``, default one) over the base grid's first 40×30 px."""
    rows = len(next(iter(columns.values()))) if columns else 1
    box = bounds or (X0, Y0 - 30 * PIXEL, X0 + 40 * PIXEL, Y0)
    frame = gpd.GeoDataFrame(columns or {}, geometry=[shapely.box(*box)] * rows, crs=crs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crs' was not provided")
        frame.to_file(path)
    return path


def spec_for(
    scenes: list[tuple[str, list[tuple[Path, list[str]]]]],
    labels: Path,
    **kwargs: object,
) -> DataSpec:
    """A DataSpec of explicit scenes ``[(id, [(path, bands)])]`` and one label file."""
    return DataSpec(
        name="t",
        classes=["glacier"],
        labels=[{"path": str(labels), "class_name": "glacier"}],
        scenes=[
            {"id": sid, "sources": [{"path": str(p), "bands": b} for p, b in files]}
            for sid, files in scenes
        ],
        **kwargs,  # type: ignore[arg-type]
    )


def listing(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size (to assert that nothing was written)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}
