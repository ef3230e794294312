"""Pixel stores of a processed dataset: the one protocol and the per-scene arrays."""

from glacier.data.store.protocol import PixelStore
from glacier.data.store.scene_store import SceneStore, read_npy_header, read_window
from glacier.data.store.training_pixels import training_area

__all__ = [
    "PixelStore",
    "SceneStore",
    "read_npy_header",
    "read_window",
    "training_area",
]
