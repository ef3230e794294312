"""Loading a :class:`~glacier.data.loading.window_cache.WindowCache` from a pixel store, once.

Stores of whole scenes (:class:`~glacier.data.store.SceneStore`) are read tile by tile, a few
million pixels at a time, straight from their memory maps (padding where a slice hangs over the
scene's edge, as the loaders pad). Stores of fixed patches (the HKH release in place) are read
window by window. Where the cache keeps a channel in a narrower dtype than the store (the
release's float32 digital numbers as uint8), every valid value is checked to convert exactly;
pixels that are nodata by a non-finite value get the nodata label, so the batch assembled from
the cache (:class:`~glacier.data.loading.batch.BatchLayout`) equals the one assembled from the
store value for value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glacier.data.contract import (
    IGNORE_INDEX,
    Channel,
    NodataRule,
    StorageGroup,
    fill_value,
    storage_groups,
)
from glacier.data.loading.window_cache import CacheTile, WindowCache
from glacier.data.store import PixelStore, read_window
from glacier.utils.progress import progress_bar

CHUNK_PIXELS = 1 << 22  # pixels read at a time from a scene's arrays
MB = 1e6


class InexactChannelsError(Exception):
    """Stored values of these channels do not convert exactly to the cache's dtypes."""

    def __init__(self, channels: Sequence[str]) -> None:
        super().__init__(", ".join(channels))
        self.channels = tuple(channels)


@dataclass(frozen=True)
class ChannelConversion:
    """How the store's channels become the cache's.

    Attributes:
        names: Channel names in contract order.
        source: The store's storage groups.
        target: The cache's storage groups (same channels, possibly narrower dtypes).
        all_zero: A pixel zero in every channel is nodata (the contract's rule).
    """

    names: tuple[str, ...]
    source: tuple[StorageGroup, ...]
    target: tuple[StorageGroup, ...]
    all_zero: bool

    @classmethod
    def of(
        cls, stored: Sequence[Channel], cached: Sequence[Channel], all_zero: bool
    ) -> ChannelConversion:
        """The conversion from the stored to the cached channels (same names and order)."""
        return cls(
            names=tuple(c.name for c in stored),
            source=tuple(storage_groups(stored)),
            target=tuple(storage_groups(cached)),
            all_zero=all_zero,
        )

    def widen(self, names: Sequence[str]) -> ChannelConversion:
        """The same conversion keeping the named channels in their stored dtypes."""
        dtypes = {c: g.dtype for g in self.target for c in g.channels}
        dtypes |= {c: g.dtype for g in self.source for c in g.channels if self.names[c] in names}
        cached = [Channel(name, dtype=dtypes[i]) for i, name in enumerate(self.names)]
        target = tuple(storage_groups(cached))
        return ChannelConversion(self.names, self.source, target, self.all_zero)

    @property
    def identity(self) -> bool:
        """The cache holds the store's arrays as they are."""
        return self.source == self.target

    def convert(
        self, images: Sequence[np.ndarray], label: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Stored arrays of one tile as the cache's arrays.

        Raises:
            InexactChannelsError: If a valid value of a narrowed channel would change.
        """
        if self.identity:
            return list(images), label
        finite = np.ones(label.shape[:2], dtype=bool)
        for group, array in zip(self.source, images, strict=True):
            if np.dtype(group.dtype).kind == "f":
                finite &= np.isfinite(array).all(axis=-1)
        valid = finite & (label[..., 0] != IGNORE_INDEX)
        if self.all_zero:
            valid &= ~NodataRule.zero_pixels(images)
        where = {
            channel: (number, offset)
            for number, group in enumerate(self.source)
            for offset, channel in enumerate(group.channels)
        }
        out, inexact = [], []
        for group in self.target:
            values = np.stack([images[where[c][0]][..., where[c][1]] for c in group.channels], -1)
            converted, bad = _narrow(values, group.dtype, valid)
            out.append(converted)
            inexact += [self.names[c] for c, b in zip(group.channels, bad, strict=True) if b]
        if inexact:
            raise InexactChannelsError(inexact)
        if not finite.all():
            label = label.copy()
            label[~finite, 0] = IGNORE_INDEX  # nodata by NaN, whatever dtype holds the values
        return out, label


def _narrow(values: np.ndarray, dtype: str, valid: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    """``values`` as ``dtype``; per channel, whether a valid value changed."""
    if values.dtype == np.dtype(dtype):
        return values, [False] * values.shape[-1]
    with np.errstate(invalid="ignore", over="ignore"):
        converted = values.astype(dtype)
    kept, back = values[valid], converted[valid].astype(values.dtype)
    bad = [bool((kept[:, c] != back[:, c]).any()) for c in range(values.shape[-1])]
    if np.dtype(dtype).kind in "iu":
        converted[~valid] = fill_value(dtype)
    return converted, bad


def _tile_rows(store: PixelStore, tile: CacheTile) -> list[tuple[int, int]]:
    if not hasattr(store, "arrays"):
        return [(0, tile.height)]  # a patch store reads whole windows
    step = max(1, CHUNK_PIXELS // tile.width)
    return [(top, min(top + step, tile.height)) for top in range(0, tile.height, step)]


def read_tile(
    store: PixelStore, tile: CacheTile, groups: Sequence[StorageGroup], top: int, bottom: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Rows ``top:bottom`` of a tile as stored: image arrays (one per group) and labels.

    Whole-scene stores are read from their arrays (padding outside the scene); patch stores
    read the tile as one window.
    """
    if not hasattr(store, "arrays"):
        return store.window(tile.scene, tile.row, tile.col, tile.height)
    images, labels = store.arrays(tile.scene)
    height, width, row = bottom - top, tile.width, tile.row + top
    out = [
        read_window(array, row, tile.col, height, width, fill_value(group.dtype))
        for group, array in zip(groups, images, strict=True)
    ]
    return out, read_window(labels, row, tile.col, height, width, IGNORE_INDEX)


def fill_cache(
    cache: WindowCache, store: PixelStore, conversion: ChannelConversion, progress: bool
) -> None:
    """Load every tile of the cache from the store (progress in MB while it loads).

    Raises:
        InexactChannelsError: As soon as a narrowed channel does not convert exactly.
    """
    layout = cache.layout
    bar = progress_bar(None, int(layout.nbytes / MB), "cache (MB)", progress)
    try:
        for number, tile in enumerate(layout.tiles):
            views = cache.tile_views(number)
            for top, bottom in _tile_rows(store, tile):
                images, label = read_tile(store, tile, conversion.source, top, bottom)
                converted, label_out = conversion.convert(images, label)
                for view, array in zip(views, [*converted, label_out], strict=True):
                    view[top:bottom].copy_(torch.from_numpy(np.ascontiguousarray(array)))
                bar.update(int((bottom - top) * tile.width * layout.bytes_per_pixel / MB))
    finally:
        bar.close()
