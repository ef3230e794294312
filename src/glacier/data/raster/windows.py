"""Pieces of reading a scene's windows (used by :class:`~glacier.data.raster.SceneReader`).

Opening a band file checked, warping it onto the grid, clipping a window to the raster, the
output array, and the finite-pixel mask.
"""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from glacier.data.raster.headers import (
    RasterHeader,
    check_band_count,
    check_georeferenced,
    header_of,
    open_raster,
    representable_nodata,
)
from glacier.data.spec import BandSource
from glacier.errors import GlacierInputError

# integer dtypes whose every value float32 holds exactly (widening them is the same either way)
EXACT_IN_FLOAT32 = {"uint8", "int8", "uint16", "int16"}


def open_checked(source: BandSource, scene_id: str) -> tuple[DatasetReader, RasterHeader]:
    """Open a band file; check its band count, CRS, transform and dtypes; return its header."""
    what = f"scene '{scene_id}' band file"
    dataset = open_raster(source.path, what)
    try:
        header = header_of(dataset, source.path)
        check_band_count(header, source.bands, what)
        check_georeferenced(header, what)
    except GlacierInputError:
        dataset.close()
        raise
    return dataset, header


def intersect(window: Window, width: int, height: int) -> tuple[Window, int, int] | None:
    """Clip ``window`` to the raster; return the clipped window and its offset inside ``window``."""
    row0 = max(0, int(window.row_off))
    col0 = max(0, int(window.col_off))
    row1 = min(height, int(window.row_off + window.height))
    col1 = min(width, int(window.col_off + window.width))
    if row1 <= row0 or col1 <= col0:
        return None
    inner = Window(col0, row0, col1 - col0, row1 - row0)
    return inner, row0 - int(window.row_off), col0 - int(window.col_off)


def output_array(shape: tuple[int, int, int], out: np.ndarray | None) -> np.ndarray:
    """``out`` checked against ``shape``, or a new float32 array of that shape."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous float32 array of shape {shape}, "
            f"got {out.dtype} {out.shape}"
        )
    return out


def finite_everywhere(stack: np.ndarray) -> np.ndarray:
    """(h, w) mask of pixels finite in every channel of a (C, h, w) stack.

    The per-channel sum is non-finite wherever a channel is (or, rarely, where it
    overflows); when it is finite everywhere, as it is for most windows, the exact check of
    every channel is skipped: a third of the time, and no (C, h, w) boolean temporary.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # inf + -inf: NaN, as wanted
        total = np.add.reduce(stack, axis=0)
    if np.isfinite(total).all():
        return np.ones(stack.shape[1:], dtype=bool)
    finite: np.ndarray = np.isfinite(stack).all(axis=0)
    return finite


def inside_and_finite(
    raw: np.ndarray, window: Window, width: int, height: int, finite: bool = False
) -> np.ndarray:
    """(h, w) pixels of a raw read of ``window`` inside the scene and finite in every band.

    Padding past the scene's edge reads as NaN: it is marked invalid without being looked at,
    so the finite check (:func:`finite_everywhere`) sees only the scene's own pixels.
    ``finite``: the scene's pixels are known to be (integers read with no nodata to mark):
    no check.
    """
    clipped = intersect(window, width, height)
    valid = np.zeros(raw.shape[1:], dtype=bool)
    if clipped is not None:
        inner, row, col = clipped
        rows = slice(row, row + int(inner.height))
        cols = slice(col, col + int(inner.width))
        valid[rows, cols] = True if finite else finite_everywhere(raw[:, rows, cols])
    return valid


def read_as_integers(reader: DatasetReader | WarpedVRT) -> bool:
    """Whether a band file is read as it is stored (on the grid, no warp), 8/16-bit integers."""
    return not isinstance(reader, WarpedVRT) and set(reader.dtypes) <= EXACT_IN_FLOAT32


def warped_onto(
    dataset: DatasetReader,
    header: RasterHeader,
    grid: DatasetReader | WarpedVRT,
    nodata: float | None,
) -> WarpedVRT:
    """A bilinear float32 warp of ``dataset`` onto the grid of ``grid`` (the first band file).

    Grid pixels the file does not cover, and its nodata pixels, read as NaN.
    """
    return WarpedVRT(
        dataset,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=rasterio.enums.Resampling.bilinear,
        src_nodata=representable_nodata(nodata, header.dtypes[0]),
        nodata=np.nan,
        dtype="float32",
    )
