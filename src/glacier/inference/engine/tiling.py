"""Sliding-window layout and blending weights for full-scene prediction."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering ``length`` pixels with at least ``overlap`` shared.

    The last tile is shifted inward so no tile hangs over the edge (a scene smaller than a
    tile gets one tile at 0, padded by the reader).

    Args:
        length: Scene extent in pixels.
        tile: Tile extent.
        overlap: Pixels shared by neighbouring tiles (< tile).

    Returns:
        Increasing start offsets.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"need 0 <= overlap < tile_size, got overlap={overlap}, tile={tile}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """Separable linear taper over ``overlap`` pixels at each tile side, strictly positive.

    Overlapping tiles are averaged with these weights, so predictions fade smoothly from one
    tile to the next instead of switching at a seam.

    Args:
        tile: Tile extent.
        overlap: Taper width.

    Returns:
        (tile, tile) float32 weights in (0, 1].
    """
    ramp = np.ones(tile, dtype=np.float32)
    if overlap > 0:
        index = np.arange(tile, dtype=np.float32) + 0.5
        ramp = np.minimum(1.0, np.minimum(index, tile - index) / overlap).astype(np.float32)
    return np.maximum(np.outer(ramp, ramp), 1e-3).astype(np.float32)
