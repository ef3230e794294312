"""A generated second date: a scene whose chosen glaciers retreated by a known area.

Each chosen glacier loses every pixel within ``pixels`` pixel widths of its outline's edge
(Euclidean distance from the nearest pixel outside the outline): those pixels take the band values
of the nearest pixel outside every outline, so they look like the ground around the glacier.
The lost area is known pixel by pixel, which is what ``glacier change`` is checked against on
the real sample (README, "Glacier change"; ``notebooks/03_prediction.ipynb``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.features import rasterize

from glacier.errors import GlacierInputError


@dataclass(frozen=True)
class Retreat:
    """The second date's files and what each chosen glacier lost.

    Attributes:
        files: The new band files, in the order of the originals.
        lost: ``glacier_id``, ``pixels`` and ``km2`` lost, per chosen glacier.
    """

    files: list[Path]
    lost: pd.DataFrame


def retreat_masks(
    outlines: gpd.GeoDataFrame, chosen: Sequence[int], src: rasterio.DatasetReader, pixels: float
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """On one raster's grid: the retreat ring, the outside of every outline, pixels lost each.

    Returns:
        (H, W) bool ring, (H, W) bool outside-every-outline, lost pixel count per chosen glacier.
    """
    from scipy.ndimage import distance_transform_edt  # not on glacier preprocess's start-up

    shape = (src.height, src.width)
    shapes = outlines.geometry.to_crs(src.crs)
    inside_any = rasterize(
        ((g, 1) for g in shapes if g is not None), out_shape=shape, transform=src.transform
    ).astype(bool)
    ring = np.zeros(shape, dtype=bool)
    counts = []
    for number in chosen:
        own = rasterize([(shapes.iat[number], 1)], out_shape=shape, transform=src.transform) == 1
        depth = distance_transform_edt(own)  # pixels from the nearest pixel outside the outline
        lost = own & (depth <= pixels)
        counts.append(int(lost.sum()))
        ring |= lost
    return ring, ~inside_any, counts


def apply_retreat(
    sources: Sequence[Path],
    outlines: gpd.GeoDataFrame,
    ids: Sequence[str],
    id_column: str,
    pixels: float,
    out_dir: Path,
    stems: Sequence[str],
) -> Retreat:
    """Write copies of a scene's band files in which the chosen glaciers retreated.

    Args:
        sources: The scene's band files (any number, each on its own grid).
        outlines: Inventory outlines (any CRS).
        ids: Ids of the glaciers that retreat.
        id_column: The outlines' id column.
        pixels: Retreat depth in pixel widths, from each outline's edge inwards.
        out_dir: Where the new files go.
        stems: File stem of each new file (name the scene with its new date, e.g.
            ``LE71400412010308SGS00_RGB`` for 2010-11-04).

    Returns:
        The new files and the area each glacier lost (on the first file's grid).

    Raises:
        GlacierInputError: For an id the outlines do not have.
    """
    missing = [i for i in ids if i not in set(outlines[id_column].astype(str))]
    if missing:
        raise GlacierInputError(f"retreat: no outline with {id_column} {missing}")
    from scipy.ndimage import distance_transform_edt

    chosen = [int(np.flatnonzero(outlines[id_column].astype(str) == i)[0]) for i in ids]
    out_dir.mkdir(parents=True, exist_ok=True)
    written, lost_counts, pixel_km2 = [], [0] * len(ids), 0.0
    for index, (source, stem) in enumerate(zip(sources, stems, strict=True)):
        with rasterio.open(source) as src:
            ring, outside, counts = retreat_masks(outlines, chosen, src, pixels)
            _, (near_r, near_c) = distance_transform_edt(~outside, return_indices=True)
            data = src.read()
            data[:, ring] = data[:, near_r[ring], near_c[ring]]
            profile = src.profile
            if index == 0:
                lost_counts = counts
                pixel_km2 = abs(src.transform.a * src.transform.e) / 1e6
        target = out_dir / f"{stem}{Path(source).suffix}"
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(data)
        written.append(target)
    lost = pd.DataFrame(
        {
            "glacier_id": list(ids),
            "pixels": lost_counts,
            "km2": [c * pixel_km2 for c in lost_counts],
        }
    )
    return Retreat(written, lost)


def largest_inside(
    outlines: gpd.GeoDataFrame, scene: Path, count: int, id_column: str
) -> list[str]:
    """Ids of the ``count`` largest outlines lying wholly inside a scene's footprint.

    Args:
        outlines: Inventory outlines (any CRS).
        scene: One band file of the scene.
        count: How many to choose.
        id_column: The outlines' id column.
    """
    from shapely.geometry import box

    with rasterio.open(scene) as src:
        footprint = box(*src.bounds)
        shapes = outlines.to_crs(src.crs)
    inside = shapes[shapes.geometry.within(footprint)]
    ranked = inside.assign(area_m2=inside.geometry.area).sort_values("area_m2", ascending=False)
    return [str(value) for value in ranked[id_column].head(count)]
