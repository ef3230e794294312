"""Turn ``predict.py`` inputs into scenes laid out as the checkpoint's training data."""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path

from glacier.data.checks import read_scene_header
from glacier.data.raster import read_header
from glacier.data.spec import BandSource, SceneSpec
from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.utils.names import sanitize_name, unique_output_names

log = logging.getLogger(__name__)


def expand_inputs(inputs: str | Sequence[str]) -> list[Path]:
    """Expand a path, a glob or a list of them into existing files (sorted per pattern).

    A file matched by several patterns is kept once, where it first appears.

    Args:
        inputs: ``input=`` as given.

    Returns:
        File paths.

    Raises:
        GlacierFileNotFoundError: If a pattern matches nothing.
    """
    patterns = [inputs] if isinstance(inputs, str) else list(inputs)
    files: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern)))
        if not matches:
            raise GlacierFileNotFoundError(f"input scene not found: {pattern}")
        files.extend(Path(m) for m in matches)
    first: dict[Path, Path] = {}
    for path in files:
        first.setdefault(path.resolve(), path)
    unique = list(first.values())
    if len(unique) < len(files):
        log.info("input: %d file(s) matched twice are mapped once", len(files) - len(unique))
    return unique


def scenes_from_inputs(files: Sequence[Path], layout: Sequence[Sequence[str]]) -> list[SceneSpec]:
    """Group input files into scenes with the checkpoint's raw band layout, and check them.

    With a multi-file layout (e.g. an RGB file plus a NIR file) and exactly that many files whose
    band counts match, the files form one scene named after the first. Otherwise each file is a
    scene holding every raw band in order. Scene ids are the file stems made valid by
    :func:`glacier.utils.names.sanitize_name` (the rule ``data.scene_glob`` follows); inputs
    whose ids collide are refused. Every scene's headers are checked
    (:func:`glacier.data.checks.inputs.read_scene_header`) before any scene is mapped.

    Args:
        files: Input rasters.
        layout: Band names per source file of the training data.

    Returns:
        Scene specs.

    Raises:
        GlacierInputError: If a file's band count fits neither layout, two inputs would write
            outputs of the same name, or a file is not a usable georeferenced raster.
    """
    counts = [read_header(Path(f), "input scene").count for f in files]
    if len(layout) > 1 and counts == [len(s) for s in layout]:
        sources = tuple(BandSource(f, tuple(b)) for f, b in zip(files, layout, strict=True))
        scene = SceneSpec(sanitize_name(Path(files[0]).stem), sources)
        read_scene_header(scene)
        return [scene]
    bands = tuple(name for source in layout for name in source)
    names = unique_output_names(files)
    scenes = []
    for path, count, name in zip(files, counts, names, strict=True):
        if count != len(bands):
            expected = " + ".join(str(len(s)) for s in layout)
            raise GlacierInputError(
                f"{path} has {count} band(s) but the checkpoint was trained on {len(bands)} raw "
                f"bands {list(bands)} (files of {expected} bands)"
            )
        scenes.append(SceneSpec(name, (BandSource(path, bands),)))
    for scene in scenes:
        read_scene_header(scene)
    return scenes
