"""Header checks of vector inputs: outline files (``data.labels``) and ``data.region``.

Only layer headers (``pyogrio.read_info``) and attribute columns are read, never geometries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError
from rasterio.crs import CRS

from glacier.data.labels import choose_layer, class_frames, parse_years, refuse_unparseable
from glacier.data.raster import SceneHeader, reproject_box
from glacier.data.spec import DataSpec, DateFilter, LabelSource
from glacier.errors import GlacierFileError, GlacierInputError, one_line, require_file

POLYGON_TYPES = ("Polygon", "MultiPolygon", "Unknown")  # "Unknown": mixed; checked on load


def vector_info(
    path: Path, what: str, layer: str | None = None, layer_key: str = "layer"
) -> dict[str, Any]:
    """Read a vector file's header (CRS, fields, geometry type, bounds) and require a CRS.

    A file with several layers is refused unless ``layer`` names one (see
    :func:`glacier.data.labels.layers.choose_layer`).

    Args:
        path: The file.
        what: Its role with its config key, e.g. ``"region polygon file (data.region)"``.
        layer: Layer name in a multi-layer file.
        layer_key: The config key of ``layer``, for messages.

    Returns:
        ``pyogrio.read_info`` output.

    Raises:
        GlacierInputError: If it is missing, unreadable, without CRS, not polygons, or of
            several layers without one named.
    """
    require_file(path, what)
    layer = choose_layer(path, layer, layer_key, what)
    try:
        info: dict[str, Any] = pyogrio.read_info(path, layer=layer)
    except (DataSourceError, DataLayerError, ValueError) as error:
        raise GlacierFileError(
            f"{what} {path} cannot be read as a vector file ({one_line(error)}); check the file "
            "(a .shp needs its .shx/.dbf/.prj beside it)"
        ) from error
    if not info.get("crs"):
        raise GlacierFileError(
            f"{what} {path} has no CRS, so its polygons cannot be placed; assign the right one "
            f"(for a .shp, add its .prj), e.g. ogr2ogr -a_srs EPSG:4326 fixed.gpkg {path}"
        )
    if str(info.get("geometry_type")).split(" ")[0] not in POLYGON_TYPES:  # "Polygon Z" too
        raise GlacierFileError(
            f"{what} {path} holds {info.get('geometry_type')} geometries; it needs polygons"
        )
    return info


def _bounds_miss(info: dict[str, Any], scene: SceneHeader) -> bool:
    """Whether a vector layer's bounding box certainly misses a scene."""
    bounds = tuple(float(b) for b in info.get("total_bounds") or ())
    if len(bounds) != 4 or not all(math.isfinite(b) for b in bounds):
        return False
    box = reproject_box(bounds, CRS.from_user_input(info["crs"]), scene.crs)
    return not box.intersects(scene.footprint)


def validate_region(path: Path, scenes: Sequence[SceneHeader], layer: str | None = None) -> None:
    """Check the region file (``data.region``): readable polygons with a CRS, near every scene.

    Args:
        path: The region polygon file.
        scenes: Scene headers.
        layer: Its layer (``data.region_layer``), required when it has several.

    Raises:
        GlacierInputError: If it is missing, unreadable, without CRS, or misses a scene (every
            pixel of that scene would be nodata).
    """
    what = "region polygon file (data.region)"
    info = vector_info(path, what, layer, "data.region_layer")
    for scene in scenes:
        if _bounds_miss(info, scene):
            raise GlacierFileError(
                f"{what} {path} does not overlap scene '{scene.id}', so every pixel of it would "
                "be nodata; give the region that contains the scenes, or data.region=null"
            )


def validate_labels(spec: DataSpec, scenes: Sequence[SceneHeader]) -> list[dict[str, Any]]:
    """Check every outline file's header and attribute columns (not its geometries).

    Every class must have polygons, and every scene must lie within the bounding box of some
    outline file (else it would get no label at all).

    Args:
        spec: The dataset (label sources, classes and date filter).
        scenes: Scene headers.

    Returns:
        Per source, what :func:`check_label_source` found.

    Raises:
        GlacierInputError: Naming the file and column, class or scene at fault.
    """
    found, infos = [], []
    for index, source in enumerate(spec.labels):
        key = f"data.labels[{index}]"
        info = vector_info(source.path, f"outline file ({key})", source.layer, f"{key}.layer")
        infos.append(info)
        found.append(
            check_label_source(
                source, info, spec.classes, spec.date_filter, f"data.labels[{index}]"
            )
        )
    files = [str(source.path) for source in spec.labels]
    for name in spec.classes:
        if not sum(item["class_counts"].get(name, 0) for item in found):
            values = {v for item in found for v in item["values"]}
            raise GlacierInputError(
                f"class '{name}' has no polygons in {files}; check data.labels class_name / "
                f"class_values (class column values found: {sorted(values)})"
            )
    for scene in scenes:
        if all(_bounds_miss(info, scene) for info in infos):
            raise GlacierInputError(
                f"no outline polygon of {files} overlaps scene '{scene.id}' "
                f"({scene.grid.path}); check data.labels covers the scenes"
            )
    return found


def _require_columns(
    source: LabelSource, fields: Sequence[str], columns: Sequence[str], key: str
) -> None:
    """Refuse an outline file without its class or date column, naming the config key."""
    for column in columns:
        if column not in fields:
            kind = "class column" if column == source.class_column else "date column"
            config = (
                f"{key}.class_column"
                if column == source.class_column
                else "data.date_filter.column"
            )
            raise GlacierInputError(
                f"{source.path} has no {kind} '{column}' ({config}); columns: {fields}"
            )


def check_label_source(
    source: LabelSource,
    info: Mapping[str, Any],
    classes: Sequence[str],
    date_filter: DateFilter | None = None,
    key: str = "data.labels[i]",
) -> dict[str, Any]:
    """Check an outline file's attribute columns without reading its geometries.

    The class column and the date column must exist; every date value must parse; with
    ``date_filter.undated=error``, none may be missing.

    Args:
        source: The label source.
        info: The file's ``pyogrio.read_info`` (see :func:`glacier.data.checks.inputs.vector_info`).
        classes: The dataset's classes.
        date_filter: The date filter, if any.
        key: The source's config key, e.g. ``"data.labels[0]"``, for messages.

    Returns:
        ``{"path", "features", "class_counts" (rows per class), "undated", "values"}``, where
        ``values`` lists up to 20 distinct values of the class column.

    Raises:
        GlacierInputError: Naming the file and the column at fault.
    """
    columns = [c for c in (source.class_column, date_filter and date_filter.column) if c]
    _require_columns(source, [str(f) for f in info["fields"]], columns, key)
    found: dict[str, Any] = {"path": str(source.path), "features": int(info["features"])}
    found |= {"class_counts": {}, "undated": 0, "values": []}
    if not columns:
        found["class_counts"] = {str(source.class_name): found["features"]}
        return found
    table = pyogrio.read_dataframe(
        source.path, layer=source.layer, columns=list(dict.fromkeys(columns)), read_geometry=False
    )
    if source.class_column:
        values = table[source.class_column].astype("string").str.strip().dropna().unique()
        found["values"] = [str(v) for v in values[:20]]
    for name, rows in class_frames(source, table).items():
        found["class_counts"][name] = len(rows)
        if date_filter is not None:
            parsed = parse_years(rows[date_filter.column], date_filter.format)
            refuse_unparseable(parsed, source.path, date_filter.column)
            found["undated"] += int(parsed.missing.sum())
    if found["undated"] and date_filter is not None and date_filter.undated == "error":
        raise GlacierFileError(
            f"{source.path}: {found['undated']} polygon(s) have no date in column "
            f"'{date_filter.column}'; set data.date_filter.undated=drop or keep, or date them"
        )
    return found
