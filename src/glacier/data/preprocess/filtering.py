"""Which slices to keep for training (the ``filter/`` config group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from glacier.errors import GlacierInputError


class SliceFilter:
    """Keep slices by label content and nodata share.

    A slice is kept when its nodata fraction is at most ``max_nodata_fraction`` and its labels
    qualify: some class listed in ``min_class_fraction`` reaches its fraction (when given) and
    the classes together cover at least ``min_total_fraction``. A seeded random share
    ``keep_unlabelled_fraction`` of slices failing only the label rule is kept anyway, so the
    model still sees plain background.

    Args:
        min_class_fraction: Per-class minimum fraction of valid pixels.
        min_total_fraction: Minimum fraction of valid pixels in any class.
        max_nodata_fraction: Maximum fraction of nodata (incl. padding) pixels.
        keep_unlabelled_fraction: Share of label-failing slices kept at random.
        seed: Random seed for that share.
    """

    def __init__(
        self,
        min_class_fraction: Mapping[str, float] | None = None,
        min_total_fraction: float = 0.0,
        max_nodata_fraction: float = 1.0,
        keep_unlabelled_fraction: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.min_class_fraction = dict(min_class_fraction or {})
        self.min_total_fraction = min_total_fraction
        self.max_nodata_fraction = max_nodata_fraction
        self.keep_unlabelled_fraction = keep_unlabelled_fraction
        self.seed = seed

    def describe(self) -> dict[str, object]:
        """Return the settings (for stage fingerprints)."""
        return dict(vars(self))

    def select(self, slices: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
        """Decide which slices to keep.

        Args:
            slices: Slice metadata with ``mask_mean_{class}`` and ``nodata_frac`` columns.
            classes: The dataset's class names.

        Returns:
            A boolean array, True for kept slices.

        Raises:
            GlacierInputError: If the filter names a class the dataset does not have.
        """
        unknown = [c for c in self.min_class_fraction if c not in classes]
        if unknown:
            raise GlacierInputError(
                f"filter.min_class_fraction names unknown class(es) {unknown}; the dataset "
                f"classes are {list(classes)}"
            )
        fractions = slices[[f"mask_mean_{c}" for c in classes]].to_numpy()
        labelled = fractions.sum(axis=1) >= self.min_total_fraction
        if self.min_class_fraction:
            any_class = np.zeros(len(slices), dtype=bool)
            for name, minimum in self.min_class_fraction.items():
                any_class |= slices[f"mask_mean_{name}"].to_numpy() >= minimum
            labelled &= any_class
        rng = np.random.default_rng(self.seed)
        lucky = rng.random(len(slices)) < self.keep_unlabelled_fraction
        enough_data = slices["nodata_frac"].to_numpy() <= self.max_nodata_fraction
        return np.asarray(enough_data & (labelled | lucky))
