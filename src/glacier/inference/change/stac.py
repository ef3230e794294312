"""A STAC Item per change map: ``<after scene>_change.stac.json``, spanning both dates."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pystac
import rasterio
import shapely
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.change.maps import CHANGE_CLASSES
from glacier.inference.change.runs import MappedScene
from glacier.inference.engine import COG_MEDIA_TYPE
from glacier.inference.products import GEOPACKAGE_MEDIA_TYPE, footprint_wgs84
from glacier.utils.io import write_json_atomic

MEDIA_TYPES = {
    ".gpkg": GEOPACKAGE_MEDIA_TYPE,
    ".csv": "text/csv",
    ".json": pystac.MediaType.JSON,
}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _relative(path: Path, start: Path) -> str:
    return "./" + os.path.relpath(path.resolve(), start.resolve())


def _add_change_asset(item: pystac.Item, change_map: Path, folder: Path) -> None:
    """List the change COG in ``item``, its classes (and the unobserved nodata value) declared."""
    asset = pystac.Asset(
        _relative(change_map, folder),
        title="Glacier change: " + ", ".join(f"{c} {n}" for c, n in enumerate(CHANGE_CLASSES)),
        media_type=COG_MEDIA_TYPE,
        roles=["data"],
    )
    item.add_asset("change", asset)  # the classification extension goes on the asset's owner
    ClassificationExtension.ext(asset, add_if_missing=True).classes = [
        *(
            Classification.create(value=code, name=name.replace(" ", "_"), title=name)
            for code, name in enumerate(CHANGE_CLASSES)
        ),
        Classification.create(
            value=IGNORE_INDEX, name="nodata", title="Not observed at both dates", nodata=True
        ),
    ]


def _file_asset(path: Path, folder: Path) -> pystac.Asset:
    """A further file (a table, the summary) as an asset: JSON is metadata, the rest data."""
    return pystac.Asset(
        _relative(path, folder),
        media_type=MEDIA_TYPES.get(path.suffix),
        roles=["data" if path.suffix != ".json" else "metadata"],
    )


def write_change_item(
    scene: MappedScene,
    change_map: Path,
    dates: dict[str, date],
    areas_km2: dict[str, float],
    runs: tuple[Path, Path],
    extra: Sequence[Path] = (),
) -> Path:
    """Write the STAC Item of one change map.

    Args:
        scene: The after scene (its grid is the map's).
        change_map: The change COG.
        dates: ``before`` and ``after`` acquisition dates.
        areas_km2: Stable glacier, loss and gain areas of the map.
        runs: The before and after prediction folders.
        extra: Further files to list (per-glacier change tables, the summary).

    Returns:
        The item's path.
    """
    folder = change_map.parent
    with rasterio.open(change_map) as src:
        crs, transform, width, height = src.crs, src.transform, src.width, src.height
    footprint = footprint_wgs84(crs, transform, width, height)
    item = pystac.Item(
        id=f"{scene.scene}_change",
        geometry=shapely.geometry.mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=None,
        start_datetime=_midnight(dates["before"]),
        end_datetime=_midnight(dates["after"]),
        properties={
            "glacier:before_run": str(runs[0]),
            "glacier:after_run": str(runs[1]),
            **{f"glacier:{key}": round(value, 6) for key, value in areas_km2.items()},
        },
    )
    ProjectionExtension.ext(item, add_if_missing=True).code = (
        ":".join(crs.to_authority()) if crs.to_authority() else None
    )
    _add_change_asset(item, change_map, folder)
    for path in extra:
        item.add_asset(path.stem, _file_asset(path, folder))
    item_path = folder / f"{scene.scene}_change.stac.json"
    write_json_atomic(item_path, item.to_dict(include_self_link=False))
    return item_path
