"""True footprints of the HKH release's slices.

With ``raster_data/`` present, each slice's footprint and CRS come from its tile's grid and the
window position (exact). Without it, the boxes of ``slices.geojson`` are used after undoing the
predecessor's north–south mirror within the tile's extent (the union of the tile's boxes), in a
UTM zone estimated from the tile's WRS-2 path (the file declares EPSG:32643 for every tile):
approximate, and said so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from glacier.data.hkh.release import estimated_utm_epsg
from glacier.data.hkh.release_facts import (
    PATCH_STEP_OVERLAP,
    RELEASE_METADATA,
    RELEASE_TILES,
    SLICE_NAME,
    ReleaseSlice,
)
from glacier.errors import GlacierInputError

log = logging.getLogger(__name__)
BOUNDS = ["x_min", "y_min", "x_max", "y_max"]


@dataclass(frozen=True)
class TileGrid:
    """A tile's grid, read from its GeoTIFF header."""

    crs: str
    transform: Affine
    width: int
    height: int


def read_metadata(root: Path) -> gpd.GeoDataFrame | None:
    """``slices/slices.geojson`` with the tile number and window index of each feature, if any."""
    path = root / RELEASE_METADATA
    if not path.is_file():
        return None
    frame = gpd.read_file(path)
    if "img_slice" not in frame.columns:
        raise GlacierInputError(f"{path} has no img_slice property; columns {list(frame.columns)}")
    names = frame["img_slice"].astype(str).map(lambda p: Path(p.replace("\\", "/")).name)
    parsed = names.str.extract(SLICE_NAME.pattern)
    frame["tile"] = pd.to_numeric(parsed[0], errors="coerce")
    frame["k"] = pd.to_numeric(parsed[2], errors="coerce")
    return frame[frame["tile"].notna()].astype({"tile": int, "k": int})


def tile_names(tiles: Sequence[int], metadata: gpd.GeoDataFrame | None) -> dict[int, str]:
    """Tile name of each tile number: from ``img_source`` in the metadata, else the release list."""
    names: dict[int, str] = {}
    if metadata is not None and "img_source" in metadata.columns:
        for tile, source in zip(metadata["tile"], metadata["img_source"], strict=True):
            if isinstance(source, str) and source:
                names.setdefault(int(tile), Path(source.replace("\\", "/")).stem)
    for tile in tiles:
        if tile not in names:
            names[tile] = RELEASE_TILES[tile] if tile < len(RELEASE_TILES) else f"tile_{tile}"
    return names


def read_tile_grid(root: Path, name: str) -> TileGrid | None:
    """The grid of ``raster_data/{name}.tif``, or None when the tile is not there."""
    path = root / "raster_data" / f"{name}.tif"
    if not path.is_file():
        return None
    with rasterio.open(path) as tile:
        if tile.crs is None:
            raise GlacierInputError(f"{path} has no CRS")
        return TileGrid(tile.crs.to_string(), tile.transform, tile.width, tile.height)


def window_offset(k: int, width: int, size: int) -> tuple[int, int]:
    """(row, col) of window ``k``: row-major, ``size`` px at a ``size - 6`` px step, full only."""
    step = size - PATCH_STEP_OVERLAP
    columns = (width - size) // step + 1
    row, col = divmod(k, columns)
    return row * step, col * step


def exact_footprints(pairs: Sequence[ReleaseSlice], grid: TileGrid, size: int) -> pd.DataFrame:
    """Footprints of one tile's slices from its grid (row 0 = the tile's top edge)."""
    rows = []
    for pair in pairs:
        row, col = window_offset(pair.k, grid.width, size)
        left, bottom, right, top = window_bounds(Window(col, row, size, size), grid.transform)
        rows.append([pair.k, row, col, grid.crs, left, bottom, right, top])
    return pd.DataFrame(rows, columns=["slice", "row_off", "col_off", "crs", *BOUNDS])


def unmirrored_footprints(
    pairs: Sequence[ReleaseSlice], boxes: gpd.GeoDataFrame, name: str, size: int
) -> pd.DataFrame:
    """Approximate footprints of one tile's slices from its mirrored ``slices.geojson`` boxes.

    The predecessor counted box rows from the tile's south edge; flipping each box within the
    union of the tile's boxes puts it back (to within the 6-px overlap and the box stretch).
    """
    step = size - PATCH_STEP_OVERLAP
    bounds = boxes.geometry.bounds
    x0, y0, y1 = bounds["minx"].min(), bounds["miny"].min(), bounds["maxy"].max()
    width = float((bounds["maxx"] - bounds["minx"]).median())
    height = float((bounds["maxy"] - bounds["miny"]).median())
    by_k = dict(zip(boxes["k"], bounds.itertuples(index=False), strict=True))
    crs = f"EPSG:{estimated_utm_epsg(name)}"
    rows = []
    for pair in pairs:
        box = by_k.get(pair.k)
        if box is None:  # no box: placeholder offsets, no footprint
            rows.append([pair.k, pair.k * step, -1, "", *[np.nan] * 4])
            continue
        minx, miny, maxx, maxy = box
        row_from_south = round((miny - y0) / height)
        rows_total = round((y1 - y0) / height)
        row = (rows_total - 1 - row_from_south) * step
        col = round((minx - x0) / width) * step
        rows.append([pair.k, row, col, crs, minx, y0 + y1 - maxy, maxx, y0 + y1 - miny])
    return pd.DataFrame(rows, columns=["slice", "row_off", "col_off", "crs", *BOUNDS])


def release_footprints(root: Path, pairs: Sequence[ReleaseSlice], size: int) -> pd.DataFrame:
    """Scene (tile name), window, CRS and footprint bounds of every slice pair, in order.

    Returns:
        One row per pair: ``scene, slice, row_off, col_off, crs, x_min..y_max, exact``
        (NaN bounds where neither the tile nor its metadata box is known).
    """
    metadata = read_metadata(root)
    tiles = sorted({pair.tile for pair in pairs})
    names = tile_names(tiles, metadata)
    frames, approximate, unknown = [], [], []
    for tile in tiles:
        members = [pair for pair in pairs if pair.tile == tile]
        grid = read_tile_grid(root, names[tile])
        boxes = None if metadata is None else metadata[metadata["tile"] == tile]
        if grid is not None:
            frame = exact_footprints(members, grid, size).assign(exact=True)
        elif boxes is not None and len(boxes):
            frame = unmirrored_footprints(members, boxes, names[tile], size).assign(exact=False)
            approximate.append(names[tile])
        else:  # position unknown: distinct placeholder offsets keep windows addressable
            step = size - PATCH_STEP_OVERLAP
            frame = pd.DataFrame({"slice": [p.k for p in members], "crs": "", "exact": False})
            frame["row_off"], frame["col_off"] = frame["slice"] * step, 0
            frame[BOUNDS] = np.nan
            unknown.append(names[tile])
        frames.append(frame.assign(scene=names[tile]))
    if approximate:
        log.warning(
            "raster_data/ lacks tiles %s: their footprints are the metadata's boxes un-mirrored, "
            "in an estimated UTM zone; geographic splits over them are approximate",
            approximate,
        )
    if unknown:
        log.warning("no tile or metadata box for tiles %s: no footprints", unknown)
    return pd.concat(frames, ignore_index=True)
