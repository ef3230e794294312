"""Per-glacier sums of one scene's maps: mapped area per class, reference area, nodata, edges.

Everything is a sum over pixels (areas in km², each pixel weighted by its ground area), so the
sums of several scenes of a run add up (overlaps are excluded before, see
:func:`~glacier.inference.glaciers.assign.assign_pixels`). Computed strip by strip: memory is a
few strips whatever the scene's size.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

import numpy as np
import rasterio
from rasterio.windows import Window

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.glaciers.assign import GlacierPixels

STRIP = 512


class PassMaps(Protocol):
    """The class map of every MC pass / ensemble member, read strip by strip."""

    @property
    def count(self) -> int:
        """Number of passes."""
        ...

    def strip(self, rows: slice) -> np.ndarray:
        """(P, rows, W) class maps of ``rows``."""
        ...


@dataclass(frozen=True)
class ArrayPasses:
    """Pass maps held in memory: a (P, H, W) array."""

    array: np.ndarray

    @property
    def count(self) -> int:
        """Number of passes."""
        return int(self.array.shape[0])

    def strip(self, rows: slice) -> np.ndarray:
        """(P, rows, W) class maps of ``rows``."""
        return self.array[:, rows]


@dataclass(frozen=True)
class FilePasses:
    """Pass maps in a ``_passes.tif`` (one band per pass), read strip by strip."""

    path: Path

    @property
    def count(self) -> int:
        """Number of passes (bands)."""
        with rasterio.open(self.path) as src:
            return int(src.count)

    def strip(self, rows: slice) -> np.ndarray:
        """(P, rows, W) class maps of ``rows``."""
        with rasterio.open(self.path) as src:
            window = Window(0, rows.start, src.width, min(rows.stop, src.height) - rows.start)
            maps: np.ndarray = src.read(window=window)
            return maps


@dataclass
class GlacierSums:
    """Per-glacier sums over one or more scenes (index = inventory glacier number).

    Attributes:
        mapped_km2: (N, K) area mapped as each class (column 0 = background), valid pixels.
        reference_km2: (N,) area inside the outline, observed (valid) pixels only.
        inside_km2: (N,) area inside the outline within the scenes (valid or not).
        edges_km2: (N,) half a pixel along the mapped glacier boundary: ``Σ edges × area / 2``.
        passes_km2: (P, N) mapped glacier area of each MC pass / ensemble member (P may be 0).
        scenes: (N,) number of scenes the glacier appears in.
    """

    mapped_km2: np.ndarray
    reference_km2: np.ndarray
    inside_km2: np.ndarray
    edges_km2: np.ndarray
    passes_km2: np.ndarray
    scenes: np.ndarray

    @classmethod
    def zeros(cls, glaciers: int, classes: int, passes: int = 0) -> GlacierSums:
        """Empty sums."""
        return cls(
            mapped_km2=np.zeros((glaciers, classes)),
            reference_km2=np.zeros(glaciers),
            inside_km2=np.zeros(glaciers),
            edges_km2=np.zeros(glaciers),
            passes_km2=np.zeros((passes, glaciers)),
            scenes=np.zeros(glaciers, dtype=np.int64),
        )

    def __add__(self, other: GlacierSums) -> GlacierSums:
        passes = (
            self.passes_km2 + other.passes_km2
            if self.passes_km2.shape == other.passes_km2.shape
            else np.zeros((0, len(self.reference_km2)))
        )
        return GlacierSums(
            self.mapped_km2 + other.mapped_km2,
            self.reference_km2 + other.reference_km2,
            self.inside_km2 + other.inside_km2,
            self.edges_km2 + other.edges_km2,
            passes,
            self.scenes + other.scenes,
        )

    def save(self, path: Path) -> None:
        """Write the sums to an ``.npz`` file (read back by :meth:`load`)."""
        with open(path, "wb") as handle:
            np.savez(handle, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> GlacierSums:
        """Read sums written by :meth:`save`."""
        with np.load(path) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})


def scene_sums(
    pixels: GlacierPixels,
    classes: np.ndarray,
    glacier_classes: tuple[int, ...],
    row_areas_km2: np.ndarray,
    glaciers: int,
    num_classes: int,
    pass_classes: PassMaps | None = None,
) -> GlacierSums:
    """Per-glacier sums of one scene.

    Args:
        pixels: Which glacier each pixel belongs to.
        classes: (H, W) uint8 class map (0 background, ``i`` class ``i``, 255 nodata).
        glacier_classes: Class values that are glacier (every class but background).
        row_areas_km2: (H,) ground area of one pixel of each row.
        glaciers: Number of inventory glaciers.
        num_classes: Classes of the map, background included.
        pass_classes: Optional class maps of each MC pass / member.

    Returns:
        The sums.
    """
    passes = 0 if pass_classes is None else pass_classes.count
    sums = GlacierSums.zeros(glaciers, num_classes, passes)
    valid = classes != IGNORE_INDEX
    is_glacier = np.isin(classes, glacier_classes) & valid
    height = classes.shape[0]
    for top in range(0, height, STRIP):
        rows = slice(top, min(top + STRIP, height))
        ids = pixels.ids[rows].astype(np.int64)
        area = np.broadcast_to(row_areas_km2[rows, None], ids.shape)
        labelled = ids > 0
        index = ids[labelled] - 1
        weight = area[labelled]
        ok = valid[rows][labelled]
        cls = classes[rows][labelled].astype(np.int64)
        flat = np.bincount(
            index[ok] * num_classes + cls[ok], weight[ok], minlength=glaciers * num_classes
        )
        sums.mapped_km2 += flat.reshape(glaciers, num_classes)
        inside = pixels.inside[rows][labelled]
        sums.reference_km2 += np.bincount(index[inside & ok], weight[inside & ok], glaciers)
        sums.inside_km2 += np.bincount(index[inside], weight[inside], glaciers)
        strip = None if pass_classes is None else pass_classes.strip(rows)
        for p in range(passes):
            assert strip is not None
            hit = ok & np.isin(strip[p][labelled], glacier_classes)
            sums.passes_km2[p] += np.bincount(index[hit], weight[hit], glaciers)
    sums.edges_km2 += _edge_areas(is_glacier, pixels.ids, row_areas_km2, glaciers)
    sums.scenes[pixels.present] += 1
    return sums


def _own_ids(is_glacier: np.ndarray, ids: np.ndarray, rows: slice) -> np.ndarray:
    """Glacier number + 1 of the mapped glacier pixels of ``rows`` (0 elsewhere)."""
    return np.where(is_glacier[rows] & (ids[rows] > 0), ids[rows], 0).astype(np.int64)


def _edge_areas(
    is_glacier: np.ndarray, ids: np.ndarray, row_areas_km2: np.ndarray, glaciers: int
) -> np.ndarray:
    """Per glacier, Σ over its mapped boundary edges of half a pixel's area.

    An edge of a glacier's mapped pixel counts where its 4-neighbour is not a mapped pixel of
    the same glacier (background, another glacier, nodata, or outside the scene). Strip by
    strip, with one halo row above and below.
    """
    height = is_glacier.shape[0]
    total = np.zeros(glaciers)
    for top in range(0, height, STRIP):
        bottom = min(top + STRIP, height)
        halo = slice(max(top - 1, 0), min(bottom + 1, height))
        own = _own_ids(is_glacier, ids, halo)
        padded = np.pad(own, 1)  # zeros beyond the scene's edges
        start = 1 + (top - halo.start)
        centre = padded[start : start + bottom - top, 1:-1]
        mine = centre > 0
        edges = np.zeros(centre.shape, dtype=np.int64)
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            near = padded[start + dr : start + dr + bottom - top, 1 + dc : 1 + dc + centre.shape[1]]
            edges += mine & (near != centre)
        half = edges * (row_areas_km2[top:bottom, None] / 2.0)
        total += np.bincount(centre[mine] - 1, half[mine], glaciers)
    return total
