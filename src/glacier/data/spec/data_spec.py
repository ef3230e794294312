"""Typed description of a dataset (one Hydra ``data/`` config): scenes, bands, labels, rules."""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from glacier.data.contract import BACKGROUND, DEFAULT_FLAGS, DERIVED, NodataRule, QaMask
from glacier.errors import (
    GlacierConfigError,
    GlacierInputError,
    require_choice,
    require_non_negative,
    require_range,
)
from glacier.utils.names import refuse_collisions, sanitize_name, validate_scene_id

DERIVED_CHANNELS = tuple(DERIVED)
UNDATED_CHOICES = ("drop", "keep", "error")


@dataclass(frozen=True)
class BandSource:
    """One raster file contributing named bands to a scene.

    Attributes:
        path: GeoTIFF path.
        bands: Names given to the file's bands, in order (its band count must match).
    """

    path: Path
    bands: tuple[str, ...]


@dataclass(frozen=True)
class SceneSpec:
    """One scene: an identifier and the files whose bands form it (first file sets the grid).

    Attributes:
        id: Scene identifier used in file names.
        sources: Band files; later files are resampled onto the first file's grid if needed.
    """

    id: str
    sources: tuple[BandSource, ...]

    @property
    def band_names(self) -> list[str]:
        """All raw band names in order."""
        return [name for source in self.sources for name in source.bands]


@dataclass(frozen=True)
class LabelSource:
    """A polygon file providing outlines for one or more classes.

    Attributes:
        path: Vector file (shp/gpkg/geojson).
        class_name: Class of every polygon (when ``class_column`` is not used).
        class_column: Attribute column holding the class of each polygon.
        class_values: Maps values of ``class_column`` to class names; other values are ignored.
        layer: Layer name inside a multi-layer file.
    """

    path: Path
    class_name: str | None = None
    class_column: str | None = None
    class_values: Mapping[str, str] = field(default_factory=dict)
    layer: str | None = None


@dataclass(frozen=True)
class DateFilter:
    """Keep polygons whose date lies within ``year`` ± ``tolerance`` years.

    Every value is parsed on its own (see :func:`glacier.data.labels.dates.parse_year`); a value
    that is present but matches no accepted format is refused, naming the file, the column and
    examples.

    Attributes:
        column: Attribute holding the date (year, YYYYMMDD, ISO date, or ``format``).
        year: Target year.
        tolerance: Allowed difference in years.
        format: Extra ``strptime`` format tried first for string dates (e.g. ``%d.%m.%Y``).
        undated: What to do with polygons whose date is missing (empty, null, RGI's
            -9999999): ``drop`` (the default: a date filter keeps only polygons it can place
            in time), ``keep``, or ``error``. Either way they are counted and logged.
    """

    column: str
    year: int
    tolerance: int = 0
    format: str | None = None
    undated: str = "drop"

    def __post_init__(self) -> None:
        require_choice("data.date_filter.undated", self.undated, UNDATED_CHOICES)
        require_non_negative("data.date_filter.tolerance", self.tolerance)
        require_range("data.date_filter.year", self.year, integer=True)


def _parse_scenes(
    scenes: Sequence[Mapping[str, Any]] | None,
    scene_glob: str | None,
    bands: Sequence[str] | None,
) -> tuple[SceneSpec, ...]:
    """Build scene specs from explicit entries or a glob of single-file scenes.

    Explicit ids must be valid scene ids; ids from file stems are sanitized the way
    ``predict.py`` names its outputs (:mod:`glacier.utils.names`). Ids equal ignoring case are
    refused here, before anything is written.
    """
    parsed: list[SceneSpec] = []
    origins: list[str] = []
    for index, entry in enumerate(scenes or []):
        if "id" not in entry or "sources" not in entry:
            raise GlacierInputError(f"data.scenes[{index}] needs 'id' and 'sources', got {entry}")
        key = f"data.scenes[{index}]"
        sources = tuple(
            BandSource(Path(str(src["path"])), tuple(str(b) for b in src["bands"]))
            for src in entry["sources"]
        )
        if not sources:
            raise GlacierInputError(f"{key}.sources is empty; list the scene's band files")
        parsed.append(SceneSpec(validate_scene_id(str(entry["id"]), f"{key}.id"), sources))
        origins.append(f"{key}.id")
    if scene_glob:
        if not bands:
            raise GlacierInputError("data.scene_glob needs data.bands (the band names per file)")
        files = sorted(glob.glob(scene_glob))
        if not files:
            raise GlacierInputError(f"data.scene_glob matched no file: {scene_glob}")
        for file in files:
            scene_id = sanitize_name(Path(file).stem)
            parsed.append(SceneSpec(scene_id, (BandSource(Path(file), tuple(bands)),)))
            origins.append(file)
    if not parsed:
        raise GlacierInputError("the data config lists no scenes (data.scenes or data.scene_glob)")
    refuse_collisions(
        [scene.id for scene in parsed],
        origins,
        "scene ids must be distinct (ignoring case): they name the mask and slice files",
        "give each scene its own id in data.scenes, or rename the files matched by data.scene_glob",
    )
    return tuple(parsed)


def _parse_labels(labels: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> list[LabelSource]:
    """Build label sources and check every class name they mention."""
    parsed = []
    for index, entry in enumerate(labels):
        unknown_keys = set(entry) - {"path", "class_name", "class_column", "class_values", "layer"}
        if unknown_keys:
            raise GlacierInputError(f"data.labels[{index}] has unknown keys {sorted(unknown_keys)}")
        source = LabelSource(
            path=Path(str(entry["path"])),
            class_name=entry.get("class_name"),
            class_column=entry.get("class_column"),
            class_values=dict(entry.get("class_values") or {}),
            layer=entry.get("layer"),
        )
        if (source.class_name is None) == (source.class_column is None):
            raise GlacierInputError(
                f"data.labels[{index}] ({source.path}) needs exactly one of class_name or "
                "class_column"
            )
        named = [source.class_name] if source.class_name else list(source.class_values.values())
        for name in named:
            if name not in classes:
                raise GlacierInputError(
                    f"data.labels[{index}] ({source.path}) names unknown class '{name}'; "
                    f"data.classes is {list(classes)}"
                )
        parsed.append(source)
    return parsed


def _parse_date_filter(rule: Mapping[str, Any]) -> DateFilter:
    """Build the date filter, naming unknown or missing keys."""
    known = {f.name for f in fields(DateFilter)}
    unknown = sorted(set(rule) - known)
    if unknown or "column" not in rule or "year" not in rule:
        problem = f"has unknown keys {unknown}" if unknown else "needs 'column' and 'year'"
        raise GlacierConfigError(f"data.date_filter {problem}; known keys: {sorted(known)}")
    return DateFilter(**rule)


class DataSpec:
    """Everything preprocessing needs to know about one dataset (a ``data/`` config).

    Args:
        name: Dataset name; names the processed folder.
        classes: Class names, one mask channel each (background is implicit).
        labels: Polygon sources (see :class:`LabelSource` fields).
        scenes: Explicit scenes: ``{id, sources: [{path, bands}]}``.
        scene_glob: Alternatively, a glob of single-file scenes, each with ``bands``.
        bands: Band names of every file matched by ``scene_glob``.
        derived: Derived channels appended to the raw bands (``ndvi``, ``ndwi``, ``ndsi``,
            ``elevation``, ``slope``).
        band_roles: Maps index roles (``red``, ``green``, ``nir``, ``swir1``) to band names.
        dem: DEM GeoTIFF for ``elevation``/``slope``, resampled to each scene grid.
        nodata: Nodata value for band files that declare none.
        date_filter: Keep polygons within a year range (see :class:`DateFilter`).
        region: Polygon file of the valid area; pixels outside become nodata.
        region_layer: The layer of ``region`` holding the area (required when it has several).
        slice_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles.
        channel_sets: Named channel subsets users can select with ``channels=NAME``.
        formulas: Bands that are derived channels read from the files, with their formula in
            band names (``{ndsi: (B5-B2)/(B5+B2)}``, ``{elevation: elevation [m]}``): a checkpoint
            refuses scenes whose channel of that name means something else.
        storage_dtypes: Narrower dtypes to store bands in (``{B1: uint8}`` for digital numbers
            kept as float32 in the files; checked exact on every valid pixel).
        nodata_all_zero: A pixel that is 0 in every band is nodata (never one band at 0).
        qa_band: A Landsat QA band among the scene's bands (``BQA``): pixels it flags become
            nodata (see :mod:`glacier.data.contract.qa`).
        qa_mask: Conditions that flag a pixel (``fill``, ``cloud``, ``cloud_shadow``,
            ``snow_ice``).
        qa_confidence: Lowest QA confidence that flags (``low``, ``medium``, ``high``).
        root: The data folder the other paths of the config are written relative to (through
            ``${data.root}``); not read otherwise.
    """

    def __init__(
        self,
        name: str,
        classes: Sequence[str],
        labels: Sequence[Mapping[str, Any]],
        scenes: Sequence[Mapping[str, Any]] | None = None,
        scene_glob: str | None = None,
        bands: Sequence[str] | None = None,
        derived: Sequence[str] = (),
        band_roles: Mapping[str, str] | None = None,
        dem: str | None = None,
        nodata: float | None = None,
        date_filter: Mapping[str, Any] | None = None,
        region: str | None = None,
        slice_size: int = 512,
        overlap: int = 32,
        channel_sets: Mapping[str, Sequence[str]] | None = None,
        formulas: Mapping[str, str] | None = None,
        storage_dtypes: Mapping[str, str] | None = None,
        nodata_all_zero: bool = False,
        qa_band: str | None = None,
        qa_mask: Sequence[str] = DEFAULT_FLAGS,
        qa_confidence: str = "medium",
        root: str | None = None,
        region_layer: str | None = None,
    ) -> None:
        if not classes:
            raise GlacierInputError(f"data '{name}': data.classes is empty")
        if len(set(classes)) != len(classes) or BACKGROUND in classes:
            raise GlacierInputError(f"data.classes must be unique and not 'background': {classes}")
        require_range("data.slice_size", slice_size, 2, integer=True)
        require_non_negative("data.overlap", overlap)
        if not 0 <= overlap < slice_size:
            raise GlacierInputError(f"need 0 <= data.overlap < data.slice_size, got {overlap}")
        unknown = [d for d in derived if d not in DERIVED_CHANNELS]
        if unknown:
            raise GlacierInputError(
                f"unknown derived channel(s) {unknown} in data.derived; known: {DERIVED_CHANNELS}"
            )
        self.name = name
        self.classes = [str(c) for c in classes]
        self.labels = _parse_labels(labels, self.classes)
        self.scenes = _parse_scenes(scenes, scene_glob, bands)
        self.derived = [str(d) for d in derived]
        self.band_roles = dict(band_roles or {})
        self.dem = Path(dem) if dem else None
        self.nodata = nodata
        self.date_filter = _parse_date_filter(date_filter) if date_filter else None
        self.region = Path(region) if region else None
        self.region_layer = str(region_layer) if region_layer is not None else None
        self.slice_size = int(slice_size)
        self.overlap = int(overlap)
        self.formulas = {str(k): str(v) for k, v in (formulas or {}).items()}
        self.storage_dtypes = {str(k): str(v) for k, v in (storage_dtypes or {}).items()}
        self.nodata_all_zero = bool(nodata_all_zero)
        self.qa = None if qa_band is None else QaMask(str(qa_band), tuple(qa_mask), qa_confidence)
        if self.qa is not None:
            self.qa.check_band(self.scenes[0].band_names, f"data '{name}'")
        self.root = Path(root) if root else None
        for key, names in (("formulas", self.formulas), ("storage_dtypes", self.storage_dtypes)):
            unknown_bands = [b for b in names if b not in self.scenes[0].band_names]
            if unknown_bands:
                raise GlacierInputError(
                    f"data.{key} names {unknown_bands}, which are not bands of the scenes: "
                    f"{self.scenes[0].band_names}"
                )
        clashes = [d for d in self.derived if d in self.scenes[0].band_names]
        if clashes:
            raise GlacierInputError(
                f"data.derived computes {clashes}, which the scene files already hold as bands; "
                "declare their formulas in data.formulas instead"
            )
        self.channel_sets = {k: list(v) for k, v in (channel_sets or {}).items()}
        for set_name, members in self.channel_sets.items():
            unknown_channels = [c for c in members if c not in self.channels]
            if unknown_channels:
                raise GlacierInputError(
                    f"data.channel_sets.{set_name} names {unknown_channels}, which are not "
                    f"channels of this dataset: {self.channels}"
                )
        if ("elevation" in self.derived or "slope" in self.derived) and self.dem is None:
            raise GlacierInputError("data.derived asks for elevation/slope but data.dem is not set")

    @property
    def nodata_rule(self) -> NodataRule:
        """The nodata rule of these scenes (declared value, all-zero pixels, QA flags)."""
        return NodataRule(self.nodata, self.nodata_all_zero, self.qa)

    @property
    def channels(self) -> list[str]:
        """Stored channel names: raw bands of the first scene, then derived channels."""
        return [*self.scenes[0].band_names, *self.derived]

    def describe(self) -> dict[str, Any]:
        """Return a JSON-serialisable description (used for stage fingerprints and checkpoints)."""
        return {
            "name": self.name,
            "classes": self.classes,
            "scenes": [
                {
                    "id": s.id,
                    "sources": [{"path": str(b.path), "bands": b.bands} for b in s.sources],
                }
                for s in self.scenes
            ],
            "labels": [vars(label) | {"path": str(label.path)} for label in self.labels],
            "derived": self.derived,
            "band_roles": self.band_roles,
            "dem": str(self.dem) if self.dem else None,
            "nodata": self.nodata,
            "date_filter": vars(self.date_filter) if self.date_filter else None,
            "region": str(self.region) if self.region else None,
            "region_layer": self.region_layer,
            "slice_size": self.slice_size,
            "overlap": self.overlap,
        }
