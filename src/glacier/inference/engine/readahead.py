"""Rows of tiles read ahead by reader threads, into reused (page-locked on a GPU) buffers.

A scene is predicted one row of tiles at a time: one windowed read per row (tiles share columns
where they overlap). Reader threads read the next rows, of this scene and the next ones, while
the device works; GDAL releases the GIL. On a GPU each row crosses to the device in one
non-blocking copy from page-locked memory, and its tiles are views of the device row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

import numpy as np
import torch
from rasterio.windows import Window
from torch import Tensor

from glacier.data.raster import RgbSample, SceneReader, finite_everywhere


@dataclass
class Row:
    """One row of tiles of a scene, read.

    Attributes:
        index: Row number in the scene's tile layout.
        top: First scene row.
        host: (C, tile, cover) float32 host buffer (NaN = nodata), the model's channels.
        valid: (tile, cover) pixels with data in every channel.
        device: The row on the model's device (``host`` itself on a CPU).
        device_valid: ``valid`` on the device.
        tiles_left: Tiles of this row not yet in a batch.
        buffer: The pooled buffer to give back once the row is used.
        copied: Event of the row's copy to the GPU, or None on a CPU.
    """

    index: int
    top: int
    host: np.ndarray
    valid: np.ndarray
    device: Tensor
    device_valid: Tensor
    tiles_left: int
    buffer: Tensor
    copied: torch.cuda.Event | None = None

    def ready(self) -> None:
        """Make the current CUDA stream wait for the row's copy (nothing on a CPU)."""
        if self.copied is not None:
            torch.cuda.current_stream().wait_event(self.copied)
            self.device.record_stream(torch.cuda.current_stream())
            self.device_valid.record_stream(torch.cuda.current_stream())


class BufferPool:
    """Reusable float32 row buffers by shape; page-locked when rows go to a GPU.

    Args:
        pinned: Allocate page-locked memory (GPU prediction).
    """

    def __init__(self, pinned: bool) -> None:
        self.pinned = pinned
        self._free: dict[tuple[int, ...], list[Tensor]] = {}

    def take(self, shape: tuple[int, ...]) -> Tensor:
        """A buffer of ``shape`` (reused when one is free)."""
        free = self._free.get(shape)
        if free:
            return free.pop()
        return torch.empty(shape, dtype=torch.float32, pin_memory=self.pinned)

    def give(self, buffer: Tensor) -> None:
        """Return a buffer for reuse."""
        self._free.setdefault(tuple(buffer.shape), []).append(buffer)


def read_row(
    reader: SceneReader,
    channel_indices: list[int],
    top: int,
    tile: int,
    cover: int,
    buffer: Tensor,
    preview: RgbSample | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read rows ``top..top+tile`` of every channel into ``buffer``; keep the model's channels.

    ``preview`` takes its samples of the raw rows on the way (the scene is read only once).

    Returns:
        The (C_model, tile, cover) image and the (tile, cover) validity of those channels.
    """
    seen = None if preview is None else partial(preview.add, top, 0)
    band, valid = reader.read_with_mask(Window(0, top, cover, tile), buffer.numpy(), seen)
    if channel_indices != list(range(len(reader.band_names))):
        band = band[channel_indices]  # every channel of a nodata pixel is NaN: still caught
        valid = finite_everywhere(band)
    return band, valid


def to_device(row: Row, device: torch.device, stream: torch.cuda.Stream | None) -> Row:
    """Start the row's copy to ``device`` on a side stream (nothing to do on a CPU).

    The copy runs while the model works on earlier rows; :meth:`Row.ready` orders it before
    the row's first use.
    """
    if device.type == "cpu" or stream is None:
        return row
    with torch.cuda.stream(stream):
        row.device = torch.from_numpy(row.host).to(device, non_blocking=True)
        row.device_valid = torch.from_numpy(row.valid).to(device, non_blocking=True)
        row.copied = torch.cuda.Event()
        row.copied.record(stream)
    return row


Item = TypeVar("Item")


class ReadAhead(Generic[Item]):
    """Run reads in order, ``depth`` ahead of the item being consumed, on reader threads.

    Args:
        reads: Reads in prediction order (callables run on a reader thread).
        depth: Reads in flight beyond the item being consumed.
        threads: Reader threads.
    """

    def __init__(self, reads: Iterator[Callable[[], Item]], depth: int, threads: int) -> None:
        self.reads = reads
        self.depth = depth
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="glacier-read")
        self.pending: deque[Future[Item]] = deque()

    def _fill(self) -> None:
        while len(self.pending) < self.depth:
            read = next(self.reads, None)
            if read is None:
                return
            self.pending.append(self.pool.submit(read))

    def __iter__(self) -> Iterator[Item]:
        self._fill()
        while self.pending:
            row = self.pending.popleft().result()
            self._fill()  # the next read starts before this row is used
            yield row

    def close(self) -> None:
        """Stop reading (waits for reads in flight)."""
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
