"""The change map between two dates on one grid: stable glacier, loss, gain, stable background.

The before run's class maps are warped (nearest neighbour) onto each after scene's grid; a pixel
is glacier when its class is any glacier class. Where either date is nodata (outside a scene,
the scene's nodata, a QA-flagged cloud) the change is nodata: unobserved pixels never count
as loss or gain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from glacier.data.contract import IGNORE_INDEX
from glacier.inference.change.runs import MappedScene
from glacier.inference.engine import RESAMPLING_CATEGORICAL, to_cog
from glacier.inference.output_names import CHANGE, scene_output

STABLE_BACKGROUND, STABLE_GLACIER, LOSS, GAIN = 0, 1, 2, 3
CHANGE_CLASSES = ("stable background", "stable glacier", "loss", "gain")


def warp_onto(sources: Sequence[Path], target: Path) -> np.ndarray:
    """Class maps warped onto ``target``'s grid (nearest); the first covering map wins.

    Args:
        sources: Class maps of the other date (any grids and CRSs).
        target: A class map whose grid is the output's.

    Returns:
        (H, W) uint8 classes, 255 where no source covers a pixel or it is nodata.
    """
    with rasterio.open(target) as grid:
        out = np.full((grid.height, grid.width), IGNORE_INDEX, dtype=np.uint8)
        for path in sources:
            with (
                rasterio.open(path) as src,
                WarpedVRT(
                    src,
                    crs=grid.crs,
                    transform=grid.transform,
                    width=grid.width,
                    height=grid.height,
                    resampling=Resampling.nearest,
                    src_nodata=IGNORE_INDEX,
                    nodata=IGNORE_INDEX,
                ) as vrt,
            ):
                warped = vrt.read(1)
            fill = (out == IGNORE_INDEX) & (warped != IGNORE_INDEX)
            out[fill] = warped[fill]
    return out


def change_classes(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) uint8 change codes (see the module doc) of two class maps on one grid."""
    valid = (before != IGNORE_INDEX) & (after != IGNORE_INDEX)
    was, now = valid & (before > 0), valid & (after > 0)
    change = np.full(before.shape, IGNORE_INDEX, dtype=np.uint8)
    change[valid] = STABLE_BACKGROUND
    change[was & now] = STABLE_GLACIER
    change[was & ~now] = LOSS
    change[~was & now & valid] = GAIN
    return change


def write_change_map(change: np.ndarray, like: Path, path: Path, cog: bool = True) -> Path:
    """Write the change codes on ``like``'s grid (band described, categories named), as a COG.

    Returns:
        ``path``.
    """
    with rasterio.open(like) as src:
        profile = {
            "driver": "GTiff",
            "width": src.width,
            "height": src.height,
            "count": 1,
            "dtype": "uint8",
            "crs": src.crs,
            "transform": src.transform,
            "nodata": IGNORE_INDEX,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
        }
    partial = path.with_name(f".{path.name}.partial.tif")
    with rasterio.open(partial, "w", **profile) as dst:
        dst.write(change, 1)
        dst.set_band_description(
            1,
            "glacier change: "
            + ", ".join(f"{code} {name}" for code, name in enumerate(CHANGE_CLASSES)),
        )
        dst.update_tags(1, **{f"class_{code}": name for code, name in enumerate(CHANGE_CLASSES)})
    try:
        if cog:
            to_cog(partial, path, RESAMPLING_CATEGORICAL)
        else:
            partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def scene_change(
    before: Sequence[MappedScene], after: MappedScene, out_dir: Path, cog: bool = True
) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """The change map of one after scene against the before scenes that overlap it.

    Returns:
        The written change map, and the before/after class maps and change codes on its grid.
    """
    warped = warp_onto([s.classes for s in before], after.classes)
    with rasterio.open(after.classes) as src:
        now = src.read(1)
    change = change_classes(warped, now)
    path = write_change_map(change, after.classes, scene_output(out_dir, after.scene, CHANGE), cog)
    return path, warped, now, change
