"""Check every input of a dataset from its headers, before a run writes anything.

:func:`validate_inputs` opens each band file, the DEM, the region and the outline files
without reading pixels or geometries and refuses, with a one-line message naming the file or
config key, the problem and the fix, anything that would later fail midway or, worse, give a
silently wrong dataset. The headers it returns feed :func:`scene_input_fingerprint`, so a stage
cache notices a change of band names, files or grids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glacier.data.checks.vectors import validate_labels, validate_region
from glacier.data.raster import (
    BandFileHeader,
    RasterHeader,
    SceneHeader,
    band_file_coverage,
    check_band_count,
    check_georeferenced,
    check_scene_size,
    coverage,
    read_header,
    validate_derived,
)
from glacier.data.spec import DataSpec, SceneSpec
from glacier.errors import GlacierFileError, GlacierInputError
from glacier.utils.io import file_fingerprint, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputHeaders:
    """Everything :func:`validate_inputs` found.

    Attributes:
        scenes: One header per scene, in dataset order.
        dem: DEM header, or None.
        dem_coverage: Per scene id, the fraction of the scene the DEM covers.
        region: Region file, or None.
        labels: Per label source, what
            :func:`glacier.data.checks.vectors.check_label_source` found.
    """

    scenes: list[SceneHeader]
    dem: RasterHeader | None
    dem_coverage: dict[str, float]
    region: Path | None
    labels: list[dict[str, Any]]


def read_scene_header(scene: SceneSpec) -> SceneHeader:
    """Read and check the headers of a scene's band files (no pixel is read).

    Checks, per file: it exists and GDAL reads it; its band count matches the configured
    names; it has a CRS, a north-up transform and a supported dtype; it overlaps the grid of
    the first file, which must be at least 2×2 pixels.

    Args:
        scene: The scene.

    Returns:
        Its header.

    Raises:
        GlacierInputError: A subclass naming the file, the problem and the fix.
    """
    what = f"scene '{scene.id}' band file"
    files: list[BandFileHeader] = []
    for source in scene.sources:
        header = read_header(source.path, what)
        check_band_count(header, source.bands, what)
        check_georeferenced(header, what)
        if not files:
            check_scene_size(header, what)
            covered = 1.0
        else:
            covered = band_file_coverage(header, files[0].header, scene.id)
        if covered < 1.0:
            log.warning(
                "%s %s covers %.1f%% of the scene; the rest of the scene is nodata",
                what,
                source.path,
                100 * covered,
            )
        files.append(BandFileHeader(header, tuple(source.bands), covered))
    return SceneHeader(scene.id, tuple(files))


def validate_scenes(spec: DataSpec) -> list[SceneHeader]:
    """Check every scene of a dataset from its headers; see :func:`read_scene_header`.

    Also checks that every scene has the bands of the first scene in the same order (they
    become the same channels) and that every derived channel can be computed.

    Args:
        spec: The dataset.

    Returns:
        One header per scene, in dataset order.

    Raises:
        GlacierInputError: A subclass naming the file or key, the problem and the fix.
    """
    headers = [read_scene_header(scene) for scene in spec.scenes]
    first = headers[0]
    for header in headers[1:]:
        if header.band_names != first.band_names:
            raise GlacierInputError(
                f"data.scenes: scene '{header.id}' has bands {header.band_names} but scene "
                f"'{first.id}' has {first.band_names}; every scene needs the same bands in the "
                "same order (they become the same channels)"
            )
    validate_derived(spec.derived, first.band_names, spec.band_roles, spec.dem is not None)
    return headers


def validate_dem(
    path: Path, scenes: Sequence[SceneHeader]
) -> tuple[RasterHeader, dict[str, float]]:
    """Check the DEM's header and that it overlaps every scene.

    Args:
        path: The DEM (``data.dem``).
        scenes: Scene headers.

    Returns:
        The DEM header and, per scene id, the fraction of the scene it covers (pixels outside
        it become nodata; logged when below 1).

    Raises:
        GlacierInputError: If it is missing, unreadable, not georeferenced, or misses a scene.
    """
    what = "DEM (data.dem)"
    header = read_header(path, what)
    check_georeferenced(header, what)
    covered: dict[str, float] = {}
    for scene in scenes:
        grid = scene.grid
        covered[scene.id] = coverage(header, scene.crs, grid.affine, grid.width, grid.height)
        if covered[scene.id] <= 0:
            raise GlacierFileError(
                f"{what} {path} does not overlap scene '{scene.id}' ({grid.path}); give a DEM "
                "that covers every scene"
            )
        if covered[scene.id] < 1.0:
            log.warning(
                "%s %s covers %.1f%% of scene '%s'; elevation/slope are nodata elsewhere",
                what,
                path,
                100 * covered[scene.id],
                scene.id,
            )
    return header, covered


def validate_inputs(spec: DataSpec) -> InputHeaders:
    """Check every input of a dataset before anything is written (headers only).

    Args:
        spec: The dataset.

    Returns:
        Headers of scenes and DEM and what was found in the label files.

    Raises:
        GlacierInputError: A subclass whose one-line message names the file or config key,
            the problem and what to do.
    """
    scenes = validate_scenes(spec)
    dem, dem_coverage = validate_dem(spec.dem, scenes) if spec.dem else (None, {})
    if spec.region is not None:
        validate_region(spec.region, scenes, spec.region_layer)
    labels = validate_labels(spec, scenes)
    return InputHeaders(scenes, dem, dem_coverage, spec.region, labels)


def scene_input_fingerprint(scene: SceneHeader, content_hash: bool = False) -> dict[str, Any]:
    """A JSON-serialisable fingerprint of a scene for stage caches.

    It covers the id, the band names and their order, each file's resolved path, size and
    modification time (or, with ``content_hash``, a SHA-256 of its content instead of the
    time) and its header (CRS, transform, size, dtypes, nodata): renaming a band, reordering
    files or replacing a file changes it.

    Args:
        scene: The scene's header (from :func:`read_scene_header`).
        content_hash: Hash file contents instead of using modification times (reads every
            byte: slow for big scenes, but a ``touch`` or a copy keeping content keeps caches).

    Returns:
        A dictionary of plain JSON values.
    """
    files = []
    for item in scene.files:
        entry = {**item.header.describe(), **file_fingerprint(item.header.path)}
        entry["bands"] = list(item.bands)
        if content_hash:
            del entry["mtime_ns"]
            entry["sha256"] = file_sha256(item.header.path)
        files.append(entry)
    return {"id": scene.id, "band_names": scene.band_names, "files": files}
