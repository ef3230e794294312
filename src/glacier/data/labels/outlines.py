"""Read glacier outline polygons, map them to classes, filter by date and repair geometry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import geopandas as gpd
import pandas as pd
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from glacier.data.labels.dates import parse_years, refuse_unparseable
from glacier.data.labels.layers import choose_layer
from glacier.data.spec import DataSpec, DateFilter, LabelSource
from glacier.errors import GlacierFileError, GlacierInputError, require_file

log = logging.getLogger(__name__)
Frame = TypeVar("Frame", bound=pd.DataFrame)
POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class OutlineReport:
    """What happened to the polygons of one class while loading.

    Attributes:
        loaded: Polygons read for the class.
        outside_dates: Dated polygons dropped by the date filter (outside year ± tolerance).
        undated: Polygons without a date (null, empty, 0, RGI's -9999999) under a date filter;
            dropped unless ``data.date_filter.undated=keep``.
        repaired: Invalid geometries fixed with ``make_valid``.
        unusable: Empty or non-polygonal after repair (reported, not silently lost).
    """

    loaded: int = 0
    outside_dates: int = 0
    undated: int = 0
    repaired: int = 0
    unusable: int = 0


@dataclass
class ClassOutlines:
    """Polygons of every class, each kept in its source CRS until a scene needs them.

    Attributes:
        frames: Per class, the GeoDataFrames from each source file.
        reports: Per class, counts of what loading did.
    """

    frames: dict[str, list[gpd.GeoDataFrame]] = field(default_factory=dict)
    reports: dict[str, OutlineReport] = field(default_factory=dict)

    def in_crs(self, class_name: str, crs: object) -> gpd.GeoSeries:
        """Return every polygon of a class reprojected to ``crs``.

        Args:
            class_name: Class to fetch.
            crs: Target CRS (the image CRS).

        Returns:
            The polygons as one GeoSeries.
        """
        parts = [frame.geometry.to_crs(crs) for frame in self.frames.get(class_name, [])]
        if not parts:
            return gpd.GeoSeries([], crs=crs)
        return gpd.GeoSeries(pd.concat(parts, ignore_index=True), crs=crs)


def _read_vector(source: LabelSource, key: str) -> gpd.GeoDataFrame:
    """Read a polygon file with a clear error for missing, unreadable or multi-layer files.

    Args:
        source: The label source.
        key: The config key naming its layer (``data.labels[0].layer``, ``label_layer``).
    """
    require_file(source.path, "outline file")
    layer = choose_layer(source.path, source.layer, key, "outline file")
    try:
        frame = gpd.read_file(source.path, layer=layer)
    except (DataSourceError, DataLayerError, ValueError) as error:
        raise GlacierInputError(f"cannot read outlines {source.path}: {error}") from error
    if frame.crs is None:
        raise GlacierInputError(f"{source.path} has no CRS; cannot place its polygons")
    return frame


def _apply_date_filter(
    frame: gpd.GeoDataFrame, rule: DateFilter, source: LabelSource, class_name: str
) -> tuple[gpd.GeoDataFrame, int]:
    """Keep rows whose year is within the rule's tolerance; also return the undated count.

    Undated rows follow ``rule.undated`` (drop, keep, error) and are logged either way.
    """
    if rule.column not in frame.columns:
        raise GlacierInputError(
            f"{source.path} has no date column '{rule.column}' (data.date_filter.column); "
            f"columns: {[c for c in frame.columns if c != 'geometry']}"
        )
    parsed = parse_years(frame[rule.column], rule.format)
    refuse_unparseable(parsed, source.path, rule.column)
    undated = int(parsed.missing.sum())
    if undated and rule.undated == "error":
        raise GlacierFileError(
            f"{source.path}: {undated} polygon(s) of class '{class_name}' have no date in "
            f"column '{rule.column}'; set data.date_filter.undated=drop or keep, or date them"
        )
    if undated:
        log.warning(
            "%s: class %s: %d of %d polygon(s) have no date in column '%s'; %s "
            "(data.date_filter.undated=%s)",
            source.path,
            class_name,
            undated,
            len(frame),
            rule.column,
            "kept" if rule.undated == "keep" else "dropped",
            rule.undated,
        )
    keep = (parsed.years - rule.year).abs() <= rule.tolerance
    if rule.undated == "keep":
        keep |= parsed.missing
    return frame[keep.to_numpy()], undated


def _repair(geometries: gpd.GeoSeries) -> tuple[gpd.GeoSeries, int]:
    """Make geometries valid, keeping their polygonal parts; return them and the repair count."""
    invalid = ~geometries.is_valid & geometries.notna()
    repaired = geometries.copy()
    if invalid.any():
        fixed = shapely.make_valid(geometries[invalid].values)
        polys = [_polygonal_part(geom) for geom in fixed]
        repaired.loc[invalid] = gpd.GeoSeries(polys, index=repaired.index[invalid], crs=None).values
    return repaired, int(invalid.sum())


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """Return the polygon(s) inside a geometry (e.g. a GeometryCollection from make_valid)."""
    if geometry.geom_type in POLYGONAL:
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in POLYGONAL]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def class_frames(source: LabelSource, frame: Frame) -> dict[str, Frame]:
    """Split a label file's rows by class."""
    if source.class_name is not None:
        return {source.class_name: frame}
    column = str(source.class_column)
    if column not in frame.columns:
        raise GlacierInputError(
            f"{source.path} has no class column '{column}'; columns: "
            f"{[c for c in frame.columns if c != 'geometry']}"
        )
    values = frame[column].astype("string").str.strip()
    names = {name for name in source.class_values.values() if name}
    return {
        name: frame[values.isin([v for v, n in source.class_values.items() if n == name])]
        for name in names
    }


def load_outlines(spec: DataSpec) -> ClassOutlines:
    """Read every label source of a dataset (see :func:`load_label_sources`).

    Args:
        spec: The dataset description.

    Returns:
        Polygons and loading counts per class.
    """
    return load_label_sources(spec.labels, spec.classes, spec.date_filter)


def _usable_polygons(
    rows: gpd.GeoDataFrame,
    source: LabelSource,
    name: str,
    date_filter: DateFilter | None,
    report: OutlineReport,
) -> gpd.GeoSeries:
    """One class's polygons of one source, dated, repaired and usable; counted in ``report``."""
    report.loaded += len(rows)
    if date_filter is not None:
        kept, undated = _apply_date_filter(rows, date_filter, source, name)
        report.undated += undated
        dropped_undated = 0 if date_filter.undated == "keep" else undated
        report.outside_dates += len(rows) - len(kept) - dropped_undated
        rows = kept
    geometry, repaired = _repair(rows.geometry)
    report.repaired += repaired
    usable = geometry.notna() & ~geometry.is_empty
    report.unusable += int((~usable).sum())
    if repaired or (~usable).any():
        log.warning(
            "%s: class %s: repaired %d invalid polygon(s), %d unusable (empty) dropped",
            source.path,
            name,
            repaired,
            int((~usable).sum()),
        )
    return geometry[usable]


def _require_polygons(
    outlines: ClassOutlines, classes: Sequence[str], labels: Sequence[LabelSource]
) -> None:
    """Refuse a class left without polygons, with the counts of what loading dropped."""
    for name in classes:
        if not sum(len(f) for f in outlines.frames[name]):
            report = outlines.reports[name]
            files = [str(s.path) for s in labels]
            raise GlacierInputError(
                f"class '{name}' has no usable polygons in {files} (loaded {report.loaded}, "
                f"outside the date filter {report.outside_dates}, undated {report.undated}, "
                f"unusable {report.unusable})"
            )


def load_label_sources(
    labels: Sequence[LabelSource],
    classes: Sequence[str],
    date_filter: DateFilter | None = None,
    layer_keys: Sequence[str] | None = None,
) -> ClassOutlines:
    """Read label sources into per-class polygons.

    Applies the date filter, repairs invalid geometries (``make_valid``) and reports polygons
    that remain unusable. Every configured class must end up with at least one polygon.

    Args:
        labels: Polygon files and their class mapping.
        classes: Every class that must receive polygons.
        date_filter: Optional year filter.
        layer_keys: The config key naming each source's layer, for messages (default
            ``data.labels[i].layer``).

    Returns:
        Polygons and loading counts per class.

    Raises:
        GlacierInputError: For unreadable files, missing columns, non-polygon layers, or a
            class without polygons.
    """
    outlines = ClassOutlines({c: [] for c in classes}, {c: OutlineReport() for c in classes})
    keys = list(layer_keys or [f"data.labels[{i}].layer" for i in range(len(labels))])
    for source, key in zip(labels, keys, strict=True):
        frame = _read_vector(source, key)
        kinds = set(frame.geometry.dropna().geom_type) - set(POLYGONAL)
        if kinds:
            raise GlacierInputError(f"{source.path} holds non-polygon geometries: {sorted(kinds)}")
        for name, rows in class_frames(source, frame).items():
            usable = _usable_polygons(rows, source, name, date_filter, outlines.reports[name])
            outlines.frames[name].append(gpd.GeoDataFrame(geometry=usable, crs=frame.crs))
    _require_polygons(outlines, classes, labels)
    return outlines
