"""Which inventory glacier each pixel of a scene belongs to.

A pixel whose centre lies inside an outline belongs to that glacier (the same rule the reference
map is burned with, so per-glacier reference areas add up to the scene's). A pixel outside
every outline but within ``buffer_m`` of one belongs to the nearest outline (a glacier may have
advanced past its inventory outline); where buffers of touching glaciers meet, the nearer
outline wins. Every pixel counts for at most one glacier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from scipy.ndimage import distance_transform_edt

from glacier.data.labels import Inventory
from glacier.data.raster import pixel_size_m


@dataclass(frozen=True)
class SceneGrid:
    """A scene's pixel grid.

    Attributes:
        transform: Affine transform (north up).
        crs: CRS.
        height: Rows.
        width: Columns.
    """

    transform: Affine
    crs: CRS
    height: int
    width: int

    @classmethod
    def of(cls, raster: Path) -> SceneGrid:
        """The grid of a raster file."""
        with rasterio.open(raster) as src:
            return cls(src.transform, src.crs, src.height, src.width)

    @property
    def box(self) -> shapely.Polygon:
        """The grid's bounds as a polygon in its CRS."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return shapely.box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))


@dataclass
class GlacierPixels:
    """The glaciers of one scene, pixel by pixel.

    Attributes:
        ids: (H, W) int32: 0 for no glacier, ``n + 1`` for inventory glacier ``n``.
        inside: (H, W) bool: the pixel's centre is inside an outline (reference pixels).
        present: Glacier numbers whose outline (or buffer) reaches the scene.
        cut: (N,) True where an outline reaches beyond the scene's grid.
    """

    ids: np.ndarray
    inside: np.ndarray
    present: np.ndarray
    cut: np.ndarray


def _burn_ids(outlines: list[tuple[shapely.Geometry, int]], grid: SceneGrid) -> np.ndarray:
    ids = np.zeros((grid.height, grid.width), dtype=np.int32)
    if outlines:
        rasterize(outlines, out=ids, transform=grid.transform, all_touched=False)
    return ids


def _grow(ids: np.ndarray, grid: SceneGrid, buffer_m: float) -> np.ndarray:
    """Give pixels within ``buffer_m`` of an outline the id of the nearest outline pixel."""
    if buffer_m <= 0 or not ids.any():
        return ids
    width_m, height_m = pixel_size_m(grid.transform, grid.crs)
    rows, cols = np.nonzero(ids)
    pad_r, pad_c = int(np.ceil(buffer_m / height_m)) + 1, int(np.ceil(buffer_m / width_m)) + 1
    r0, r1 = max(rows.min() - pad_r, 0), min(rows.max() + pad_r + 1, grid.height)
    c0, c1 = max(cols.min() - pad_c, 0), min(cols.max() + pad_c + 1, grid.width)
    window = ids[r0:r1, c0:c1]
    distance, (near_r, near_c) = distance_transform_edt(
        window == 0, sampling=(height_m, width_m), return_indices=True
    )
    grown = ids.copy()
    grown[r0:r1, c0:c1] = np.where(distance <= buffer_m, window[near_r, near_c], 0)
    return grown


def assign_pixels(
    inventory: Inventory,
    grid: SceneGrid,
    buffer_m: float,
    exclude: shapely.Geometry | None = None,
) -> GlacierPixels:
    """The glacier of every pixel of a scene (see the module doc).

    Args:
        inventory: The inventory.
        grid: The scene's grid.
        buffer_m: Distance outside an outline that still counts for it.
        exclude: Area (in the scene's CRS) already counted by an earlier scene of the run:
            its pixels belong to no glacier here, so overlapping scenes count each place once.

    Returns:
        The pixel assignment.
    """
    outlines = inventory.outlines_in(grid.crs)
    reach = grid.box.buffer(buffer_m if grid.crs.is_projected else 0.0)
    touching = np.flatnonzero(outlines.intersects(reach).to_numpy())
    pairs = [(outlines.iat[n], int(n) + 1) for n in touching if outlines.iat[n] is not None]
    inside_ids = _burn_ids(pairs, grid)
    ids = _grow(inside_ids, grid, buffer_m)
    inside = inside_ids > 0
    if exclude is not None and not exclude.is_empty:
        taken = rasterize([(exclude, 1)], out_shape=ids.shape, transform=grid.transform) == 1
        ids[taken] = 0
        inside &= ~taken
    cut = np.zeros(len(outlines), dtype=bool)
    cut[touching] = ~outlines.iloc[touching].within(grid.box).to_numpy()
    present = np.unique(ids[ids > 0]) - 1
    return GlacierPixels(ids=ids, inside=inside, present=present.astype(np.int64), cut=cut)
