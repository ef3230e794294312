"""Store a scene once (raw values, compact dtypes) with its labels, and index its slice windows.

One pass over the scene, strip by strip of slice rows: each strip is read (raw bands + derived
channels, NaN where nodata), written into the scene's arrays (see
:mod:`glacier.data.store.scene_store`), its nodata marked in the labels, and the statistics of every
slice window in it computed from column sums (each window spans the whole strip height). Memory is
bounded by a strip plus the (H, W, K) uint8 labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.windows import Window

from glacier.data.contract import (
    IGNORE_INDEX,
    DatasetContract,
    StorageGroup,
    fill_value,
    storage_groups,
)
from glacier.data.preprocess.moments import CellMoments, MomentAccumulator, cell_edges
from glacier.data.raster import SceneReader
from glacier.errors import GlacierInputError
from glacier.utils.io import reserve_space


def window_starts(length: int, size: int, overlap: int) -> list[int]:
    """Offsets of windows of ``size`` with ``overlap`` covering ``length`` pixels.

    The last window may extend past the edge; that remainder is padded, never dropped.

    Args:
        length: Scene extent in pixels.
        size: Window extent.
        overlap: Pixels shared by neighbours.

    Returns:
        Window start offsets.
    """
    stride = size - overlap
    return list(range(0, max(length - overlap, 1), stride))


@dataclass
class WritableSceneArrays:
    """The open (memory-mapped) arrays a scene is being written into.

    Attributes:
        groups: Storage groups of the contract's channels.
        images: One (H, W, C) array per group.
        labels: (H, W, K) uint8 labels (0/1 per class; nodata marked while slicing).
    """

    groups: list[StorageGroup]
    images: list[np.ndarray]
    labels: np.ndarray


def _check_lossless(values: np.ndarray, dtype: str, name: str, scene: str) -> None:
    """Refuse a narrowing storage dtype that would change a valid value."""
    info = np.iinfo(dtype)
    finite = values[np.isfinite(values)]
    if finite.size and (
        finite.min() < info.min or finite.max() > info.max or (finite != np.round(finite)).any()
    ):
        raise GlacierInputError(
            f"scene {scene!r}: channel {name!r} holds values that {dtype} cannot store exactly "
            f"(range {finite.min()}..{finite.max()}); fix data.storage_dtypes"
        )


def _store_rows(
    arrays: WritableSceneArrays,
    names: list[str],
    narrowed: set[int],
    strip: np.ndarray,
    keep: np.ndarray,
    rows: slice,
    scene: str,
) -> list[np.ndarray]:
    """Write rows of a (C, h, w) float32 strip (NaN = nodata) into the scene arrays.

    Args:
        arrays: The scene's arrays.
        names: Channel names (messages).
        narrowed: Channels stored in a narrower integer dtype than read (checked lossless).
        strip: The strip; its first ``rows`` rows and the scene's columns are stored.
        keep: (rows, W) valid pixels; the others get the array's fill value.
        rows: The scene rows to write.
        scene: Scene id (messages).

    Returns:
        The rows as stored: one (rows, W, Cg) array per storage group.
    """
    height, width = keep.shape
    complete = bool(keep.all())
    stored = []
    for group, target in zip(arrays.groups, arrays.images, strict=True):
        part = np.empty((height, width, len(group.channels)), dtype=group.dtype)
        integer = np.dtype(group.dtype).kind in "iu"
        for offset, channel in enumerate(group.channels):
            values = strip[channel, :height, :width]
            if integer and channel in narrowed:
                _check_lossless(values[keep], group.dtype, names[channel], scene)
            with np.errstate(invalid="ignore"):  # NaN (nodata) cast to an integer: set below
                part[..., offset] = values
        if integer and not complete:
            part[~keep] = fill_value(group.dtype)
        target[rows] = part
        stored.append(part)
    return stored


def _window_stats(
    strip: np.ndarray,
    valid: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...],
    cols: list[int],
    size: int,
) -> Iterator[dict[str, float]]:
    """Per window of a strip: nodata fraction, class fractions of valid pixels, image mean.

    Every window spans the strip's full height, so column sums and one cumulative sum give all
    windows at once (no per-window pass over pixels).
    """
    count = np.concatenate([[0], np.cumsum(valid.sum(axis=0, dtype=np.int64))])
    with np.errstate(invalid="ignore"):
        channel_sum = np.where(valid, strip.sum(axis=0, dtype=np.float64), 0.0)
    image = np.concatenate([[0.0], np.cumsum(channel_sum.sum(axis=0))])
    fractions = [
        np.concatenate([[0], np.cumsum(((labels[..., k] == 1) & valid).sum(axis=0))])
        for k in range(labels.shape[2])
    ]
    channels = strip.shape[0]
    for col in cols:
        end = col + size
        pixels = int(count[end] - count[col])
        record = {"nodata_frac": 1.0 - pixels / (size * size)}
        mean = (image[end] - image[col]) / (pixels * channels) if pixels else 0.0
        record["img_mean"] = float(mean)
        for name, sums in zip(classes, fractions, strict=True):
            record[f"mask_mean_{name}"] = float((sums[end] - sums[col]) / pixels) if pixels else 0.0
        yield record


def slice_scene(
    reader: SceneReader,
    contract: DatasetContract,
    arrays: WritableSceneArrays,
    extra_invalid: np.ndarray | None,
    overlap: int,
    scene_id: str,
    narrowed: set[int] | None = None,
) -> tuple[list[dict[str, Any]], CellMoments]:
    """Store the scene into ``arrays``; return one record per slice window and cell moments.

    Args:
        reader: The open scene (raw bands + derived channels in contract order).
        contract: The dataset contract (channel dtypes, classes, slice size).
        arrays: Where to write; the labels get 255 at every nodata pixel.
        extra_invalid: (H, W) pixels to treat as nodata besides the bands' own (the region).
        overlap: Pixels shared by neighbouring windows.
        scene_id: Scene id (records and messages).
        narrowed: Channels stored in a narrower integer dtype than read (checked lossless).

    Returns:
        Slice records (scene, slice number, offsets, size, CRS, footprint bounds in the scene
        CRS, ``nodata_frac``, ``img_mean`` and ``mask_mean_{class}``) and the valid pixels'
        moments per cell of the window grid (the statistics of any split, see
        :mod:`glacier.data.preprocess.moments`).
    """
    size = contract.slice_size
    height, width = reader.height, reader.width
    col_starts = window_starts(width, size, overlap)
    row_starts = window_starts(height, size, overlap)
    cover = col_starts[-1] + size
    buffer = np.empty((len(contract.channels), size, cover), dtype=np.float32)
    labels_strip = np.empty((size, cover, len(contract.classes)), dtype=np.uint8)
    records: list[dict[str, Any]] = []
    moments = MomentAccumulator(
        cell_edges(row_starts, size, height), cell_edges(col_starts, size, width), arrays.groups
    )
    crs = reader.crs.to_string()
    names = contract.channel_names
    for index, row in enumerate(row_starts):
        strip, valid = reader.read_with_mask(Window(0, row, cover, size), out=buffer)
        inside = min(size, height - row)
        if extra_invalid is not None:
            valid[:inside, :width] &= ~extra_invalid[row : row + inside]
        # the rows only this strip writes: up to the next strip's start (all for the last)
        stop = row_starts[index + 1] if index + 1 < len(row_starts) else height
        rows = slice(row, min(stop, height))
        keep = valid[: rows.stop - rows.start, :width]
        stored = _store_rows(arrays, names, narrowed or set(), strip, keep, rows, scene_id)
        moments.add(row, stored, keep)
        labels_strip.fill(IGNORE_INDEX)
        labels_strip[:inside, :width] = arrays.labels[row : row + inside]
        labels_strip[~valid] = IGNORE_INDEX
        arrays.labels[row : row + inside] = labels_strip[:inside, :width]
        stats = _window_stats(strip, valid, labels_strip, contract.classes, col_starts, size)
        bounds = window_bounds(reader.transform, row, col_starts, size)
        records += _strip_records(scene_id, len(records), row, col_starts, size, crs, bounds, stats)
    return records, moments.moments


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


def window_bounds(
    transform: Affine, row: int, cols: Sequence[int], size: int
) -> list[tuple[float, float, float, float]]:
    """(left, bottom, right, top) of the windows of a strip, in the scene CRS.

    The arithmetic of ``rasterio.windows.bounds`` (``transform @ (col, row)`` per corner), for
    every window of the strip at once.
    """
    a, b, c, d, e, f = transform[:6]
    start = np.asarray(cols, dtype=np.int64)
    end = start + size
    left, bottom = start * a + (row + size) * b + c, start * d + (row + size) * e + f
    right, top = end * a + row * b + c, end * d + row * e + f
    return list(zip(left.tolist(), bottom.tolist(), right.tolist(), top.tolist(), strict=True))


def open_scene_arrays(
    contract: DatasetContract,
    shape: tuple[int, int],
    labels: np.ndarray,
    paths: list[Path],
    stack: ExitStack,
) -> WritableSceneArrays:
    """Create the scene's image arrays (memory-mapped ``.npy`` files at ``paths``, one per group).

    Each file's blocks are reserved before any page is written (see
    :func:`glacier.utils.io.reserve_space`).

    Args:
        contract: The dataset contract.
        shape: Scene rows and columns.
        labels: The burned (H, W, K) labels.
        paths: Destination of each storage group's array (temporary names).
        stack: Closes (flushes) the memory maps.

    Returns:
        The arrays to slice into.
    """
    groups = storage_groups(contract.channels)
    images: list[np.ndarray] = []
    for group, path in zip(groups, paths, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.lib.format.open_memmap(
            path, mode="w+", dtype=group.dtype, shape=(*shape, len(group.channels))
        )
        stack.callback(_flush, array)
        reserve_space(path)  # a full disk: ENOSPC here, not a SIGBUS while writing the map
        images.append(array)
    return WritableSceneArrays(groups, images, labels)


def _flush(array: np.memmap) -> None:
    array.flush()
    del array
