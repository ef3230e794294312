"""A conversion of raw band values that the user states for a scene unlike the training data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputConversion:
    """A linear conversion of raw band values stated by the user: ``value * scale + offset``.

    Prediction applies it to a scene whose bands differ from the checkpoint's training data
    (e.g. ``scale=1/257`` maps uint16 digital numbers onto a uint8-trained model's scale);
    derived channels are computed from the converted values.

    Attributes:
        scale: Factor.
        offset: Added after scaling.
    """

    scale: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        """Whether values stay as they are."""
        return self.scale == 1.0 and self.offset == 0.0

    def apply(self, raw: np.ndarray) -> None:
        """Convert a float32 (C, h, w) stack in place (NaN stays NaN)."""
        if not self.identity:
            raw *= np.float32(self.scale)
            raw += np.float32(self.offset)
