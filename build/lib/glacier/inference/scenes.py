"""Turn ``predict.py`` inputs into scenes laid out as the checkpoint's training data."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import rasterio

from glacier.data.spec import BandSource, SceneSpec
from glacier.errors import GlacierFileNotFoundError, GlacierInputError


def _band_count(path: Path) -> int:
    if not path.is_file():
        raise GlacierFileNotFoundError(f"input scene not found: {path}")
    try:
        with rasterio.open(path) as dataset:
            return int(dataset.count)
    except rasterio.errors.RasterioIOError as error:
        raise GlacierInputError(f"cannot read input scene {path}: {error}") from error


def expand_inputs(inputs: str | Sequence[str]) -> list[Path]:
    """Expand a path, a glob or a list of them into existing files (sorted per pattern).

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
    return files


def scenes_from_inputs(files: Sequence[Path], layout: Sequence[Sequence[str]]) -> list[SceneSpec]:
    """Group input files into scenes with the checkpoint's raw band layout.

    With a multi-file layout (e.g. an RGB file plus a NIR file) and exactly that many files whose
    band counts match, the files form one scene. Otherwise each file is a scene holding every raw
    band in order.

    Args:
        files: Input rasters.
        layout: Band names per source file of the training data.

    Returns:
        Scene specs.

    Raises:
        GlacierInputError: If a file's band count fits neither layout.
    """
    counts = [_band_count(f) for f in files]
    if len(layout) > 1 and counts == [len(s) for s in layout]:
        sources = tuple(BandSource(f, tuple(b)) for f, b in zip(files, layout, strict=True))
        return [SceneSpec(files[0].stem, sources)]
    bands = tuple(name for source in layout for name in source)
    scenes = []
    for path, count in zip(files, counts, strict=True):
        if count != len(bands):
            expected = " + ".join(str(len(s)) for s in layout)
            raise GlacierInputError(
                f"{path} has {count} band(s) but the checkpoint was trained on {len(bands)} raw "
                f"bands {list(bands)} (files of {expected} bands)"
            )
        scenes.append(SceneSpec(path.stem, (BandSource(path, bands),)))
    return scenes
