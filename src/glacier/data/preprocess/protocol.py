"""What preprocessing is made of, as protocols: a split rule, and a dataset preprocessor.

A new data source implements :class:`DatasetPreprocessor` (and a pixel store,
:class:`~glacier.data.store.PixelStore`); the DataModule and the tasks need nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pandas as pd


class Splitter(Protocol):
    """What a ``split/`` config builds."""

    def describe(self) -> dict[str, object]:
        """Settings for fingerprints."""

    def assign(self, slices: pd.DataFrame) -> pd.Series:
        """Split name per slice ("" = dropped)."""

    def fold_columns(self, index: pd.DataFrame) -> pd.DataFrame | None:
        """Cross-validation columns of the kept index (``fold``, ``fold_touch``), or None."""


class DatasetPreprocessor(Protocol):
    """What a ``preprocessor/`` config builds (:func:`glacier.data.factory.build_preprocessor`)."""

    processed_dir: Path

    def is_complete(self) -> bool:
        """Whether the processed dataset exists and matches the inputs and settings."""

    def run(self) -> dict[str, Any] | None:
        """Write (or reuse) the dataset: its ``dataset.json`` content (None for a shard)."""
