"""A glacier inventory: outlines with ids (RGI, ICIMOD...), their dates and areas.

Per-glacier answers (:mod:`glacier.inference.glaciers`) are given per inventory outline: its id
and name columns are kept, its own area and date reported beside the mapped area.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import Geod

from glacier.errors import GlacierInputError, require_file

POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class InventorySettings:
    """Which outline file is the inventory, and which of its columns mean what.

    Attributes:
        path: Outline file (GeoPackage, shapefile, GeoJSON), any CRS.
        id_column: Unique glacier id (``RGIId`` in RGI 6.0).
        keep: Further columns copied to the results where present (``GLIMSId``, ``Name``).
        area_column: The inventory's own area in km² (RGI: ``Area``); None: the outline's area
            on the WGS 84 ellipsoid.
        date_column: The outline's date (RGI: ``BgnDate``, YYYYMMDD); None when there is none.
        layer: Layer of a multi-layer file.
        buffer_m: Mapped pixels this far outside an outline still count for it (advance).
    """

    path: Path
    id_column: str = "RGIId"
    keep: tuple[str, ...] = ("GLIMSId", "Name")
    area_column: str | None = None
    date_column: str | None = None
    layer: str | None = None
    buffer_m: float = 60.0

    def __post_init__(self) -> None:
        if not self.buffer_m >= 0:
            raise GlacierInputError(f"inventory buffer_m={self.buffer_m}: must be >= 0 metres")


@dataclass
class Inventory:
    """Loaded inventory outlines, one row per glacier (row order = glacier number).

    Attributes:
        frame: ``glacier_id``, the kept columns, ``inventory_area_km2``, ``inventory_date``
            and the (repaired) outline geometry, in the file's CRS.
        settings: Where it came from.
        repaired: Outlines fixed with ``make_valid``.
    """

    frame: gpd.GeoDataFrame
    settings: InventorySettings
    repaired: int = 0
    kept: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)

    def outlines_in(self, crs: object) -> gpd.GeoSeries:
        """Every outline reprojected to ``crs`` (index = glacier number)."""
        return self.frame.geometry.to_crs(crs)


def format_date(value: object) -> str | None:
    """An inventory date as ``YYYY-MM-DD`` (``YYYY`` for a bare year); None when missing.

    Args:
        value: ``20001030``, ``"2000-10-30"``, ``2000``, ``-9999999`` (RGI's missing date)...
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().removesuffix(".0")
    if not text or text.startswith("-") or text == "0":
        return None
    if text.isdigit() and len(text) == 4:
        return text
    stamp = pd.to_datetime(text, format="%Y%m%d" if text.isdigit() else None, errors="coerce")
    return None if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")


def _read(settings: InventorySettings) -> gpd.GeoDataFrame:
    require_file(settings.path, "inventory file")
    try:
        frame = gpd.read_file(settings.path, layer=settings.layer)
    except (DataSourceError, DataLayerError, ValueError) as error:
        raise GlacierInputError(f"cannot read inventory {settings.path}: {error}") from error
    if frame.crs is None:
        raise GlacierInputError(f"inventory {settings.path} has no CRS; cannot place its outlines")
    return frame


def _check_columns(frame: gpd.GeoDataFrame, settings: InventorySettings) -> None:
    where = f"inventory {settings.path}"
    needed = [settings.id_column, settings.area_column, settings.date_column]
    missing = [c for c in needed if c is not None and c not in frame.columns]
    if missing:
        columns = [c for c in frame.columns if c != "geometry"]
        raise GlacierInputError(f"{where} has no column(s) {missing}; its columns: {columns}")
    ids = frame[settings.id_column]
    if ids.isna().any() or ids.duplicated().any():
        duplicated = ids[ids.duplicated()].astype(str).tolist()[:3]
        raise GlacierInputError(
            f"{where}: {settings.id_column} must be unique and present in every row "
            f"(duplicates: {duplicated}, missing: {int(ids.isna().sum())})"
        )


def _repair(geometry: gpd.GeoSeries) -> tuple[gpd.GeoSeries, int]:
    """``make_valid`` where needed, keeping the polygonal part; counts the repairs."""
    invalid = ~geometry.is_valid
    fixed = geometry.copy()
    if invalid.any():
        fixed[invalid] = shapely.make_valid(geometry[invalid].values)
    polygonal = [
        g if g is None or g.geom_type in POLYGONAL else _polygonal_part(g) for g in fixed.values
    ]
    return gpd.GeoSeries(polygonal, index=geometry.index, crs=geometry.crs), int(invalid.sum())


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry | None:
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in POLYGONAL]
    return shapely.union_all(parts) if parts else None


def load_inventory(settings: InventorySettings) -> Inventory:
    """Read an inventory, check its columns, repair its outlines.

    Raises:
        GlacierInputError: For a missing file, no CRS, a missing column, duplicate or missing
            ids, or no polygon at all; each names the file.
    """
    frame = _read(settings)
    _check_columns(frame, settings)
    geometry, repaired = _repair(frame.geometry)
    usable = geometry.notna() & ~geometry.is_empty
    if not usable.any():
        raise GlacierInputError(f"inventory {settings.path} holds no polygon")
    kept = [c for c in settings.keep if c in frame.columns and c != settings.id_column]
    table = pd.DataFrame({"glacier_id": frame[settings.id_column].astype(str)})
    for column in kept:
        table[column] = frame[column].to_numpy()
    table["inventory_area_km2"] = (
        pd.to_numeric(frame[settings.area_column], errors="coerce").to_numpy()
        if settings.area_column
        else outline_areas_km2(geometry)
    )
    dates = frame[settings.date_column] if settings.date_column else [None] * len(frame)
    table["inventory_date"] = [format_date(v) for v in dates]
    result = gpd.GeoDataFrame(table[usable.to_numpy()], geometry=geometry[usable], crs=frame.crs)
    return Inventory(result.reset_index(drop=True), settings, repaired, kept)


def outline_areas_km2(geometry: gpd.GeoSeries) -> np.ndarray:
    """Areas of outlines in km², measured on the WGS 84 ellipsoid (any CRS in).

    Args:
        geometry: Polygons with a CRS.
    """
    geod = Geod(ellps="WGS84")
    lonlat = geometry.to_crs("EPSG:4326")
    return np.array(
        [abs(geod.geometry_area_perimeter(g)[0]) / 1e6 if g is not None else np.nan for g in lonlat]
    )
