"""The one protocol every pixel store implements: windows of raw values and labels by scene."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class PixelStore(Protocol):
    """A store of a processed dataset (see :class:`glacier.data.store.scene_store.SceneStore`)."""

    @property
    def group_keys(self) -> list[str]:
        """Batch key of each image array."""

    def window(
        self, scene_id: str, row: int, col: int, size: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Image windows (one per group) and labels."""

    def window_into(
        self,
        scene_id: str,
        row: int,
        col: int,
        size: int,
        images: list[np.ndarray],
        label: np.ndarray,
    ) -> None:
        """Read a window straight into given arrays (shaped as :meth:`window` returns)."""
