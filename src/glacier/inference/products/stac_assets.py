"""The assets of a scene's STAC item: its rasters (bands read from the files) and further files."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
import rasterio
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension
from rasterio.crs import CRS
from rasterio.enums import WktVersion

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.engine import COG_MEDIA_TYPE, PredictionOutputs

GEOPACKAGE_MEDIA_TYPE = "application/geopackage+sqlite3"
UNCERTAINTY_TITLE = "Uncertainty (band descriptions and metadata say how it is made): "
MEASURES_TITLE = "Every uncertainty measure of the prediction, to score them against references"


def _nodata(value: float | None) -> float | NoDataStrings | None:
    if value is None:
        return None
    if math.isnan(value):
        return NoDataStrings.NAN
    return value


def _raster_bands(path: Path, names: list[str] | None) -> tuple[list[RasterBand], dict[str, Any]]:
    """The raster bands of a GeoTIFF (data type, nodata, unit, names) and its grid."""
    with rasterio.open(path) as src:
        bands = []
        for index in range(src.count):
            band = RasterBand.create(
                nodata=_nodata(src.nodatavals[index]),
                data_type=DataType(src.dtypes[index]),
                unit=src.units[index] or None,
                spatial_resolution=abs(src.res[0]) if src.crs and src.crs.is_projected else None,
            )
            if names:
                band.properties["name"] = names[index]
            bands.append(band)
        grid = {
            "crs": src.crs,
            "transform": src.transform,
            "shape": [src.height, src.width],
            "bounds": list(src.bounds),
        }
    return bands, grid


def _descriptions(path: Path) -> list[str]:
    with rasterio.open(path) as src:
        return [str(name) for name in src.descriptions]


@dataclass(frozen=True)
class StacAsset:
    """A further file of a scene to list in its item.

    Attributes:
        key: Asset key.
        path: The file.
        title: What it is.
        media_type: Its media type.
        role: ``data``, ``metadata`` or ``overview``.
    """

    key: str
    path: Path
    title: str
    media_type: str
    role: str = "data"


def _relative(path: Path | str, start: Path) -> str:
    relative = os.path.relpath(Path(path).resolve(), start.resolve())
    return relative if relative.startswith("..") else f"./{relative}"


@dataclass(frozen=True)
class StacRaster:
    """A raster of the scene as its item lists it.

    Attributes:
        path: The GeoTIFF.
        title: What it is.
        bands: Its bands as read from the file.
        grid: Its grid (``crs``, ``transform``, ``shape``, ``bounds``).
    """

    path: Path
    title: str
    bands: list[RasterBand]
    grid: dict[str, Any]


def scene_rasters(outputs: PredictionOutputs, names: list[str]) -> dict[str, StacRaster]:
    """The scene's rasters by asset key, in the item's order (``names``: the map's classes)."""
    listed: dict[str, tuple[Path, str, list[str] | None]] = {
        "classes": (outputs.classes, "Class map", None),
        "probs": (outputs.probs, "Class probabilities", names),
    }
    if outputs.uncertainty is not None:
        written = _descriptions(outputs.uncertainty)
        title = UNCERTAINTY_TITLE + ", ".join(written)
        listed["uncertainty"] = (outputs.uncertainty, title, written)
    if outputs.measures is not None:
        listed["measures"] = (outputs.measures, MEASURES_TITLE, _descriptions(outputs.measures))
    rasters = {}
    for key, (path, title, band_names) in listed.items():
        bands, grid = _raster_bands(path, band_names)
        rasters[key] = StacRaster(path, title, bands, grid)
    return rasters


def set_projection(item: pystac.Item, grid: dict[str, Any]) -> None:
    """The item's projection: the EPSG code (or WKT2) and bounds of the class map's grid."""
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    crs: CRS = grid["crs"]
    authority = crs.to_authority()
    projection.code = ":".join(authority) if authority else None
    if authority is None:
        projection.wkt2 = crs.to_wkt(version=WktVersion.WKT2_2019)
    projection.bbox = grid["bounds"]


def add_raster_assets(
    item: pystac.Item, rasters: dict[str, StacRaster], folder: Path, names: list[str]
) -> None:
    """One COG asset per raster (bands, shape, transform); the class map's classes (``names``)."""
    for key, raster in rasters.items():
        asset = pystac.Asset(
            _relative(raster.path, folder),
            title=raster.title,
            media_type=COG_MEDIA_TYPE,
            roles=["data"],
        )
        item.add_asset(key, asset)
        RasterExtension.ext(asset, add_if_missing=True).apply(raster.bands)
        asset_projection = ProjectionExtension.ext(asset)
        asset_projection.shape = raster.grid["shape"]
        asset_projection.transform = list(raster.grid["transform"])[:6]
    ClassificationExtension.ext(item.assets["classes"], add_if_missing=True).classes = [
        *(
            Classification.create(value=value, name=name, title=name.replace("_", " ").title())
            for value, name in enumerate(names)
        ),
        Classification.create(value=IGNORE_INDEX, name="nodata", title="No data", nodata=True),
    ]


def scene_files(
    polygons: Path | str,
    overlay: Path | str | None,
    uncertainty_figure: Path | str | None,
    metrics: Path | str | None,
) -> list[StacAsset]:
    """The scene's polygons, overlay, uncertainty figure and metrics (those written)."""
    files = [
        StacAsset(
            "polygons",
            Path(polygons),
            "Glacier polygons (class, class_id, area_km2)",
            GEOPACKAGE_MEDIA_TYPE,
        )
    ]
    if overlay is not None:
        title = "Scene preview with the predicted outlines"
        files.append(StacAsset("overlay", Path(overlay), title, pystac.MediaType.PNG, "overview"))
    if uncertainty_figure is not None:
        title = "How well each uncertainty measure ranks the map's errors; reliability"
        figure = Path(uncertainty_figure)
        png = pystac.MediaType.PNG
        files.append(StacAsset("uncertainty_figure", figure, title, png, "overview"))
    if metrics is not None:
        title = "Evaluation against reference outlines"
        json_type = pystac.MediaType.JSON
        files.append(StacAsset("metrics", Path(metrics), title, json_type, "metadata"))
    return files


def add_file_asset(item: pystac.Item, listed: StacAsset, folder: Path) -> None:
    """List one further file of the scene in its item (href relative to the item)."""
    item.add_asset(
        listed.key,
        pystac.Asset(
            _relative(listed.path, folder),
            title=listed.title,
            media_type=listed.media_type,
            roles=[listed.role],
        ),
    )
