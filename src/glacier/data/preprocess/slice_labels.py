"""The label pass over a scene's slice windows: nodata marked in the labels, one record a window.

It follows the pixel pass (:func:`glacier.data.preprocess.slicing.slice_scene`) once the labels
are burned: each strip's nodata (kept by the pixel pass) is written into the labels as
``IGNORE_INDEX``, and every window of the strip gets its record (footprint, nodata fraction, mean
of the valid pixels, fraction of each class among them) from column sums, since every window
spans its strip's full height. The scene's own totals (nodata and class fractions of
``mask_metadata.csv``) are counted on the rows each strip owns, so every pixel counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from glacier.data.contract import IGNORE_INDEX
from glacier.data.preprocess.slicing import window_bounds
from glacier.data.preprocess.strips import SlicedPixels, StripPixels


@dataclass(frozen=True)
class LabelTotals:
    """Pixel counts of a scene's marked labels.

    Attributes:
        pixels: The scene's pixels (H × W).
        invalid: Nodata pixels (``IGNORE_INDEX``).
        ones: Pixels of each class (label 1), in class order.
    """

    pixels: int
    invalid: int
    ones: tuple[int, ...]

    @property
    def nodata_fraction(self) -> float:
        """Share of the scene's pixels that are nodata."""
        return self.invalid / self.pixels

    def class_fraction(self, index: int) -> float:
        """Share of the scene's pixels in class ``index``."""
        return self.ones[index] / self.pixels


def label_pass(
    sliced: SlicedPixels,
    labels: np.ndarray,
    classes: tuple[str, ...],
    channels: int,
    scene_id: str,
    crs: str,
    transform: Affine,
) -> tuple[list[dict[str, Any]], LabelTotals]:
    """Mark nodata in ``labels`` (in place) and build every slice window's record.

    Args:
        sliced: The pixel pass over the scene.
        labels: The scene's burned (H, W, K) uint8 labels (0/1), e.g. a writable memory map.
        classes: Class names (record columns ``mask_mean_{class}``).
        channels: Stored channels (the image mean is over all of them).
        scene_id: Scene id (records).
        crs: The scene CRS as text (records).
        transform: The scene's transform (footprints).

    Returns:
        Slice records (scene, slice number, offsets, size, CRS, footprint bounds in the scene
        CRS, ``nodata_frac``, ``img_mean`` and ``mask_mean_{class}``) and the scene's totals.
    """
    height, width, kinds = labels.shape
    cols, size = sliced.col_starts, sliced.size
    cover = cols[-1] + size
    records: list[dict[str, Any]] = []
    invalid, ones = 0, [0] * kinds
    for strip in sliced.strips:
        part = labels[strip.row : strip.row + strip.inside]
        valid = strip.valid[: strip.inside, :width]
        if not strip.complete:
            part[~valid] = IGNORE_INDEX
        owned = part[: strip.owned]
        invalid += int(np.count_nonzero(owned[..., 0] == IGNORE_INDEX))
        fractions = []
        for k in range(kinds):
            is_class = part[..., k] == 1
            ones[k] += int(np.count_nonzero(is_class[: strip.owned]))
            columns = np.zeros(cover + 1, dtype=np.int64)
            np.cumsum(is_class.sum(axis=0), out=columns[1 : width + 1])
            columns[width + 1 :] = columns[width]
            fractions.append(columns)
        stats = _window_stats(strip, fractions, classes, channels, cols, size)
        bounds = window_bounds(transform, strip.row, cols, size)
        records += _strip_records(scene_id, len(records), strip.row, cols, size, crs, bounds, stats)
    return records, LabelTotals(height * width, invalid, tuple(ones))


def _window_stats(
    strip: StripPixels,
    fractions: Sequence[np.ndarray],
    classes: tuple[str, ...],
    channels: int,
    cols: list[int],
    size: int,
) -> Iterator[dict[str, float]]:
    """Per window of a strip: nodata fraction, image mean, class fractions of valid pixels."""
    count, image = strip.count, strip.image
    for col in cols:
        end = col + size
        pixels = int(count[end] - count[col])
        record = {"nodata_frac": 1.0 - pixels / (size * size)}
        mean = (image[end] - image[col]) / (pixels * channels) if pixels else 0.0
        record["img_mean"] = float(mean)
        for name, sums in zip(classes, fractions, strict=True):
            record[f"mask_mean_{name}"] = float((sums[end] - sums[col]) / pixels) if pixels else 0.0
        yield record


def _strip_records(
    scene_id: str,
    first: int,
    row: int,
    cols: Sequence[int],
    size: int,
    crs: str,
    bounds: Sequence[tuple[float, float, float, float]],
    stats: Iterable[dict[str, float]],
) -> list[dict[str, Any]]:
    """The slice records of one strip's windows, numbered from ``first``."""
    return [
        {
            "scene": scene_id,
            "slice": first + number,
            "row_off": row,
            "col_off": col,
            "size": size,
            "crs": crs,
            **dict(zip(("x_min", "y_min", "x_max", "y_max"), box, strict=True)),
            **record,
        }
        for number, (col, box, record) in enumerate(zip(cols, bounds, stats, strict=True))
    ]
