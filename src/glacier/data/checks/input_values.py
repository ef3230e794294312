"""A scene's bands against what a checkpoint was trained on: source dtypes and value ranges.

A checkpoint's contract records, per raw band, the dtypes of its training files
(``Channel.source_dtypes``) and the range of its valid training values (``ChannelStats.ranges``:
the 0.1 and 99.9 % quantiles). Before a scene is mapped, :func:`check_scene_values` reads its
bands' dtypes from the headers and samples its valid values from a few full-width strips. A band of
another dtype, or whose sampled values fall outside the training range for more than
``max_outside`` of them, is a mismatch: a uint16 scene given to a uint8-trained model is mapped
as glacier everywhere, with no error. Prediction refuses mismatches unless a conversion is
stated (:class:`~glacier.data.raster.InputConversion`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from glacier.data.contract import Channel, NodataRule
from glacier.data.raster import InputConversion, SceneReader, read_header
from glacier.data.spec import SceneSpec

MAX_OUTSIDE = 0.05  # share of valid values outside the training range that is refused
SAMPLE_STRIPS = 4  # full-width strips sampled from a scene
SAMPLE_ROWS = 64  # rows of each (4 x 64 of 7000 rows: 4 % of a Landsat scene)
QUANTILES = (0.001, 0.999)  # the range reported for the scene, as recorded for training


@dataclass(frozen=True)
class BandCheck:
    """What one band of a scene holds, next to what the checkpoint was trained on.

    Attributes:
        band: Band name.
        file: The file holding it.
        dtype: Its dtype in that file.
        trained_dtypes: Its dtypes in the training files (empty: not recorded).
        values: The 0.1-99.9 % range of the sampled valid values (None: no valid value).
        trained: The training range (None: not recorded).
        outside: Share of the sampled valid values outside the training range.
    """

    band: str
    file: Path
    dtype: str
    trained_dtypes: tuple[str, ...]
    values: tuple[float, float] | None
    trained: tuple[float, float] | None
    outside: float = 0.0

    def mismatch(self, max_outside: float = MAX_OUTSIDE) -> bool:
        """Whether the dtype differs or too many values lie outside the training range."""
        other_dtype = bool(self.trained_dtypes) and self.dtype not in self.trained_dtypes
        return other_dtype or self.outside > max_outside

    @property
    def scale(self) -> float | None:
        """The factor mapping this band's top value onto the training one, when far from 1."""
        if self.values is None or self.trained is None or not self.values[1] > 0:
            return None
        factor = self.trained[1] / self.values[1]
        return factor if not 2 / 3 < factor < 3 / 2 else None

    def describe(self, checkpoint: str) -> str:
        """``<file>: band 'x' is uint16, values ...; checkpoint ... was trained on uint8, ...``."""
        trained = " or ".join(self.trained_dtypes) or "an unrecorded dtype"
        return (
            f"{self.file}: band {self.band!r} is {self.dtype}, values {_range(self.values)}, "
            f"{100 * self.outside:.1f} % of them outside the training range; checkpoint "
            f"{checkpoint} was trained on {trained}, values {_range(self.trained)}"
        )


def _range(bounds: tuple[float, float] | None) -> str:
    if bounds is None:
        return "unknown"
    return f"{bounds[0]:.6g}–{bounds[1]:.6g} (0.1–99.9 %)"


def band_files(scene: SceneSpec) -> dict[str, tuple[Path, str]]:
    """Per band of a scene, its file and dtype (headers only)."""
    found = {}
    for source in scene.sources:
        header = read_header(source.path, f"scene '{scene.id}' band file")
        for name, dtype in zip(source.bands, header.dtypes, strict=True):
            found[name] = (Path(source.path), str(dtype))
    return found


def sample_strips(
    height: int, width: int, strips: int = SAMPLE_STRIPS, rows: int = SAMPLE_ROWS
) -> list[Window]:
    """Evenly spaced full-width strips of ``rows`` rows (one read each, whatever the layout).

    Full-width strips cost one pass over their rows in a striped GeoTIFF as in a tiled one;
    windows would make a striped file read its strips once per window.
    """
    rows = min(rows, height)
    starts = {round(i * (height - rows) / max(strips - 1, 1)) for i in range(strips)}
    return [Window(0, top, width, rows) for top in sorted(starts)]


def sample_values(
    reader: SceneReader, strips: int = SAMPLE_STRIPS, rows: int = SAMPLE_ROWS
) -> np.ndarray:
    """(C, N) valid raw values (nodata rules and conversion applied) of a few strips."""
    parts = []
    for window in sample_strips(reader.height, reader.width, strips, rows):
        stack, valid = reader.read_with_mask(window)
        parts.append(stack[:, valid])
    return np.concatenate(parts, axis=1)


def check_scene_values(
    scene: SceneSpec,
    channels: Sequence[Channel],
    ranges: Mapping[str, tuple[float, float]],
    nodata: NodataRule | None = None,
    conversion: InputConversion | None = None,
) -> list[BandCheck]:
    """Compare each raw band a model uses with its training dtypes and value range.

    Args:
        scene: The scene to map.
        channels: The model's raw channels (``band``/``file`` kinds) from its contract.
        ranges: The contract's training value ranges.
        nodata: The nodata rule (its QA flags included), as when the scene is mapped.
        conversion: The stated conversion, applied to the sampled values.

    Returns:
        One check per channel, in order.
    """
    files = band_files(scene)
    with SceneReader(scene, (), None, None, nodata, conversion) as reader:
        values = sample_values(reader)
    names = scene.band_names
    checks = []
    for channel in channels:
        band = values[names.index(channel.name)]
        trained = ranges.get(channel.name)
        own = None
        outside = 0.0
        if band.size:
            low, high = np.quantile(band, QUANTILES)
            own = (float(low), float(high))
            if trained is not None:
                outside = float(((band < trained[0]) | (band > trained[1])).mean())
        path, dtype = files[channel.name]
        checks.append(
            BandCheck(channel.name, path, dtype, channel.source_dtypes, own, trained, outside)
        )
    return checks
