"""Store a scene once (raw values, compact dtypes): the pixel pass over its slice windows.

One pass over the scene, strip by strip of slice rows: each strip is read (raw bands + derived
channels, NaN where nodata), written into the scene's arrays (see
:mod:`glacier.data.store.scene_store`), its pixels' moments added per cell of the window grid,
and its validity and column totals kept for the label pass
(:mod:`glacier.data.preprocess.slice_labels`), which needs the burned labels. Memory is bounded
by a strip plus the scene's (H, W) validity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine

from glacier.data.contract import (
    DatasetContract,
    StorageGroup,
    fill_value,
    storage_groups,
)
from glacier.data.preprocess.moment_sums import PLANE_DTYPES
from glacier.data.preprocess.moments import MomentAccumulator, cell_edges
from glacier.data.preprocess.strips import SlicedPixels, StripPixels, StripReader, integer_lead
from glacier.data.raster import SceneReader
from glacier.errors import GlacierInputError
from glacier.utils.writeback import RowWriteback, open_written_array


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
        writebacks: One per array: starts writing rows to disk once they are stored.
    """

    groups: list[StorageGroup]
    images: list[np.ndarray]
    writebacks: list[RowWriteback]

    def start_writeback(self, rows: slice) -> None:
        """Start writing rows ``rows`` of every array back (see :mod:`glacier.utils.writeback`)."""
        for writeback in self.writebacks:
            writeback.rows(rows.start, rows.stop)


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
    complete: bool,
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
        complete: Whether every pixel of ``keep`` is valid.

    Returns:
        The rows as stored: one (rows, W, Cg) array per storage group.
    """
    height, width = keep.shape
    stored = []
    for group, target in zip(arrays.groups, arrays.images, strict=True):
        part = np.asarray(target)[rows]  # written in place: no copy of the strip in between
        integer = np.dtype(group.dtype).kind in "iu"
        for offset, channel in enumerate(group.channels):
            values = strip[channel, :height, :width]
            if integer and channel in narrowed:
                _check_lossless(values[keep], group.dtype, names[channel], scene)
            with np.errstate(invalid="ignore"):  # NaN (nodata) cast to an integer: set below
                part[..., offset] = values
        if integer and not complete:
            part[~keep] = fill_value(group.dtype)
        stored.append(part)
    return stored


def slice_scene(
    reader: SceneReader,
    contract: DatasetContract,
    arrays: WritableSceneArrays,
    extra_invalid: np.ndarray | None,
    overlap: int,
    scene_id: str,
    narrowed: set[int] | None = None,
    second_core_free: Callable[[], bool] = lambda: True,
) -> SlicedPixels:
    """Store the scene into ``arrays``, strip by strip of slice windows (the pixel pass).

    The labels are not needed here: they are burned meanwhile (in another process) and marked
    with this pass's nodata afterwards (:func:`glacier.data.preprocess.slice_labels.label_pass`).

    Args:
        reader: The open scene (raw bands + derived channels in contract order).
        contract: The dataset contract (channel dtypes, slice size).
        arrays: Where to write.
        extra_invalid: (H, W) pixels to treat as nodata besides the bands' own (the region).
        overlap: Pixels shared by neighbouring windows.
        scene_id: Scene id (messages).
        narrowed: Channels stored in a narrower integer dtype than read (checked lossless).
        second_core_free: Whether the other core is idle now (the labels' child is done): from
            then on, a thread reads the next strip while this one is stored (see
            :class:`ReadAhead`).

    Returns:
        Each strip's validity and column totals, and the valid pixels' moments per cell of
        the window grid (the statistics of any split, see
        :mod:`glacier.data.preprocess.moments`).
    """
    size = contract.slice_size
    height, width = reader.height, reader.width
    col_starts = window_starts(width, size, overlap)
    row_starts = window_starts(height, size, overlap)
    cover = col_starts[-1] + size
    moments = MomentAccumulator(
        cell_edges(row_starts, size, height), cell_edges(col_starts, size, width), arrays.groups
    )
    lead, planes_hold_bytes = _exact_reads(reader, contract, arrays.groups)
    channels = len(contract.channels)
    read = StripReader(reader, row_starts, size, cover, channels, extra_invalid, lead)
    names, strips = contract.channel_names, []
    with ExitStack() as stack:
        ahead = ReadAhead(read, len(row_starts), second_core_free, stack)
        for index in range(len(row_starts)):
            strip, pixels = ahead.strip(index)
            rows = slice(pixels.row, pixels.row + pixels.owned)
            keep = pixels.valid[: pixels.owned, :width]
            stored = _store_rows(
                arrays, names, narrowed or set(), strip, keep, rows, scene_id, pixels.complete
            )
            arrays.start_writeback(rows)
            planes = strip[:, : pixels.owned] if planes_hold_bytes else None
            moments.add(pixels.row, stored, keep, planes, pixels.complete)
            strips.append(pixels)
    return SlicedPixels(strips, col_starts, size, moments.moments)


class ReadAhead:
    """Strips in order: read by the caller, or one ahead by a thread once the other core is free.

    GDAL and NumPy let go of the GIL, so a thread reads well beside the caller; but while the
    labels' child is burning, a reader thread would only take turns with it and the
    caller for two cores (it cost 0.15 CPU-s more than it overlapped on the tiled Everest);
    once the child is done it halves the rest of the pass.

    Args:
        read: Reads strip ``index``.
        count: Strips.
        second_core_free: Whether the other core is idle now.
        stack: Shuts the thread down.
    """

    def __init__(
        self,
        read: Callable[[int], tuple[np.ndarray, StripPixels]],
        count: int,
        second_core_free: Callable[[], bool],
        stack: ExitStack,
    ) -> None:
        self.read, self.count, self.second_core_free = read, count, second_core_free
        self.stack = stack
        self.pool: ThreadPoolExecutor | None = None
        self.pending: Future[tuple[np.ndarray, StripPixels]] | None = None

    def strip(self, index: int) -> tuple[np.ndarray, StripPixels]:
        """Strip ``index`` (the next one is read meanwhile when the other core is free)."""
        got = self.read(index) if self.pending is None else self.pending.result()
        self.pending = None
        if index + 1 < self.count and (self.pool is not None or self.second_core_free()):
            if self.pool is None:
                self.pool = ThreadPoolExecutor(1, thread_name_prefix="strip-reader")
                self.stack.callback(self.pool.shutdown)
            self.pending = self.pool.submit(self.read, index + 1)
        return got


def _exact_reads(
    reader: SceneReader, contract: DatasetContract, groups: Sequence[StorageGroup]
) -> tuple[int, bool]:
    """What the strips as read hold exactly: integer channels first, the 8-bit groups' values.

    Returns:
        The leading channels summed exactly in float32 (see
        :func:`~glacier.data.preprocess.strips.integer_lead`), and whether every channel of an
        8-bit storage group is read as the integers it stores (their moments are then taken
        from the strip: :func:`~glacier.data.preprocess.moment_sums.plane_sums`).
    """
    integers = reader.integer_channels
    dtypes = [
        channel.dtype if exact else "float32"
        for channel, exact in zip(contract.channels, integers, strict=True)
    ]
    bytes_read = all(
        integers[channel]
        for group in groups
        if group.dtype in PLANE_DTYPES
        for channel in group.channels
    )
    return integer_lead(dtypes), bytes_read


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
    paths: list[Path],
    stack: ExitStack,
) -> WritableSceneArrays:
    """Create the scene's image arrays (memory-mapped ``.npy`` files at ``paths``, one per group).

    Each file is made by :func:`glacier.utils.writeback.open_written_array` (blocks reserved
    first, flushed when ``stack`` closes); rows are written back to disk as they are stored
    (:meth:`WritableSceneArrays.start_writeback`).

    Args:
        contract: The dataset contract.
        shape: Scene rows and columns.
        paths: Destination of each storage group's array (temporary names).
        stack: Closes (flushes) the memory maps.

    Returns:
        The arrays to slice into.
    """
    groups = storage_groups(contract.channels)
    images: list[np.ndarray] = []
    writebacks: list[RowWriteback] = []
    for group, path in zip(groups, paths, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        shape_stored = (*shape, len(group.channels))
        array, writeback = open_written_array(path, group.dtype, shape_stored, stack)
        images.append(array)
        writebacks.append(writeback)
    return WritableSceneArrays(groups, images, writebacks)
