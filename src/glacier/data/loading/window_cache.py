"""Training pixels resident in memory: tiles of stored pixels, batches gathered by index.

A cache holds *tiles*: each fixed window (slice) once, or the region of a scene that random
windows may cover. Every storage group (``image_uint8``…) and the labels are one flat tensor
each, the tiles one after another in row-major pixel order, in the dtypes they are stored in.
A batch is named by its keys, one ``(tile, row, col, size)`` row per window (row and column
inside the tile), and gathered with one ``index_select`` per group: a window is ``size`` runs
of ``size × channels`` contiguous values, and an ``unfold`` view of the flat tensor has one row
per possible run start, so the gather copies whole runs (one kernel on a GPU) without
per-sample Python. On a CPU it runs at about 0.6-0.8 × memcpy speed (``make bench``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from glacier.data.contract import StorageGroup
from glacier.data.loading.batch import LABEL_KEY

CACHE_KEYS = "cache_keys"  # batch key of a batch of window keys (B, 4) int64
# unsigned dtypes wider than a byte are gathered as the signed dtype of their size (CUDA's
# gather kernels do not all cover torch's newer unsigned types; the bits are copied unchanged)
SIGNED = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}


@dataclass(frozen=True)
class CacheTile:
    """A rectangle of a scene's stored pixels held in the cache.

    Attributes:
        scene: Scene id.
        row: Top row in the scene (may be negative for slices hanging over the edge).
        col: Left column.
        height: Rows.
        width: Columns.
    """

    scene: str
    row: int
    col: int
    height: int
    width: int

    @property
    def pixels(self) -> int:
        """Pixels of the tile."""
        return self.height * self.width


@dataclass(frozen=True)
class CacheLayout:
    """What a cache holds: its tiles, the storage groups of its channels, the label channels.

    Attributes:
        tiles: The tiles, in cache order.
        groups: Storage groups of the cached channels (their dtypes may be narrower than the
            store's: the HKH release's float32 digital numbers as uint8).
        label_channels: Label channels (classes).
    """

    tiles: tuple[CacheTile, ...]
    groups: tuple[StorageGroup, ...]
    label_channels: int

    @property
    def keys(self) -> list[str]:
        """Batch keys: each group's, then ``label``."""
        return [*(group.key for group in self.groups), LABEL_KEY]

    def channels(self) -> list[int]:
        """Values per pixel of each key."""
        return [*(len(group.channels) for group in self.groups), self.label_channels]

    def dtypes(self) -> list[torch.dtype]:
        """Torch dtype of each key."""
        numpy = [np.dtype(group.dtype) for group in self.groups] + [np.dtype(np.uint8)]
        return [torch.from_numpy(np.empty(0, dtype=d)).dtype for d in numpy]

    @property
    def starts(self) -> np.ndarray:
        """First pixel of each tile in the flat tensors."""
        sizes = np.array([0, *(tile.pixels for tile in self.tiles)], dtype=np.int64)
        return np.cumsum(sizes)[:-1]

    @property
    def pixels(self) -> int:
        """Pixels of every tile."""
        return sum(tile.pixels for tile in self.tiles)

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes each pixel takes, labels included."""
        sizes = [torch.empty(0, dtype=d).element_size() for d in self.dtypes()]
        return sum(c * s for c, s in zip(self.channels(), sizes, strict=True))

    @property
    def nbytes(self) -> int:
        """Bytes of the whole cache."""
        return self.pixels * self.bytes_per_pixel


class WindowCache:
    """The tensors of a :class:`CacheLayout` on one device, and batch gathers from them.

    Args:
        layout: What the cache holds.
        device: Where the tensors live (the training device, or the CPU for host memory).
        pinned: Page-lock host tensors (host memory for a CUDA device).
    """

    def __init__(self, layout: CacheLayout, device: torch.device, pinned: bool = False) -> None:
        self.layout = layout
        self.device = torch.device(device)
        self.pinned = pinned and self.device.type == "cpu"
        pixels = layout.pixels
        self.tensors = [
            torch.empty(pixels * c, dtype=dtype, device=self.device, pin_memory=self.pinned)
            for c, dtype in zip(layout.channels(), layout.dtypes(), strict=True)
        ]
        self.tile_start = torch.as_tensor(layout.starts, device=self.device)
        widths = [tile.width for tile in layout.tiles]
        self.tile_width = torch.as_tensor(widths, dtype=torch.int64, device=self.device)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(t.numel() * t.element_size() for t in self.tensors)

    def tile_views(self, number: int) -> list[Tensor]:
        """(H, W, C) views of one tile in every tensor (to fill it)."""
        tile = self.layout.tiles[number]
        start = int(self.layout.starts[number])
        return [
            tensor[start * c : (start + tile.pixels) * c].view(tile.height, tile.width, c)
            for tensor, c in zip(self.tensors, self.layout.channels(), strict=True)
        ]

    def run_starts(self, keys: Tensor) -> tuple[Tensor, int]:
        """The first pixel of every window row of a batch, and the window size.

        Args:
            keys: (B, 4) int64 ``(tile, row, col, size)`` rows, one size for all.

        Returns:
            (B × size,) pixel offsets, and the size.
        """
        size = int(keys[0, 3])
        keys = keys.to(self.device, non_blocking=True)
        tile, row, col = keys[:, 0], keys[:, 1], keys[:, 2]
        rows = row[:, None] + torch.arange(size, device=self.device)
        starts = self.tile_start[tile, None] + rows * self.tile_width[tile, None] + col[:, None]
        return starts.reshape(-1), size

    def gather(self, keys: Tensor) -> dict[str, Tensor]:
        """A raw batch (as the loaders' workers would read it) from window keys.

        Args:
            keys: (B, 4) int64 ``(tile, row, col, size)`` rows (see :meth:`run_starts`).

        Returns:
            Every key of the layout mapped to a (B, size, size, C) tensor on the cache's device
            (page-locked when the cache is).
        """
        starts, size = self.run_starts(keys)
        gathered = {}
        for key, flat, channels in zip(
            self.layout.keys, self.tensors, self.layout.channels(), strict=True
        ):
            signed = SIGNED.get(flat.dtype, flat.dtype)  # the same bits, a dtype every kernel has
            runs = flat.view(signed).unfold(0, size * channels, channels)  # one row per pixel
            out = torch.empty(
                (len(keys) * size, size * channels),
                dtype=signed,
                device=self.device,
                pin_memory=self.pinned,
            )
            torch.index_select(runs, 0, starts, out=out)
            gathered[key] = out.view(flat.dtype).view(len(keys), size, size, channels)
        return gathered


def window_keys(rows: Sequence[tuple[int, int, int]], size: int) -> Tensor:
    """(B, 4) int64 keys of windows given as ``(tile, row, col)`` inside their tiles."""
    keys = torch.empty((len(rows), 4), dtype=torch.int64)
    keys[:, :3] = torch.as_tensor(rows, dtype=torch.int64).reshape(-1, 3)
    keys[:, 3] = size
    return keys
