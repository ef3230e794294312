"""The parts of a data config: scenes and their band files, outline sources, the date filter.

Each is parsed from its config entries here, refusing a wrong one in one line that names the key.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from glacier.errors import (
    GlacierConfigError,
    GlacierInputError,
    require_choice,
    require_non_negative,
    require_range,
)
from glacier.utils.names import refuse_collisions, sanitize_name, validate_scene_id

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


def parse_scenes(
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


def parse_labels(labels: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> list[LabelSource]:
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


def parse_date_filter(rule: Mapping[str, Any]) -> DateFilter:
    """Build the date filter, naming unknown or missing keys."""
    known = {f.name for f in fields(DateFilter)}
    unknown = sorted(set(rule) - known)
    if unknown or "column" not in rule or "year" not in rule:
        problem = f"has unknown keys {unknown}" if unknown else "needs 'column' and 'year'"
        raise GlacierConfigError(f"data.date_filter {problem}; known keys: {sorted(known)}")
    return DateFilter(**rule)
