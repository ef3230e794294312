"""Spatial k-fold cross-validation around a fixed held-out test region (``split/*folds.yaml``).

Preprocessing keeps the test region as :class:`~glacier.data.preprocess.splits.GeographicSplit`
does (slices by footprint centroid, slices touching it dropped) and cuts the rest of each scene
into ``folds`` contiguous strips across its longer side (``axis: auto``), with about the same
number of slice rows (or columns) each. Every kept non-test slice gets its strip's number in
``fold`` (test slices -1) and, in ``fold_touch``, a bit mask of the folds whose slices its
footprint overlaps (shares pixels with; its own fold included). The index stores those slices
as ``train``: statistics are over every non-test slice, the same for every fold.

At load time :func:`resolve_fold` turns that index into the plain train/dev/test index of one
fold (``split.fold``, read by the DataModule only, never part of the preprocessing fingerprint):
the fold's slices are dev, the other slices overlapping them are dropped, the rest train. So
``glacier train -m split.fold=0,1,2,3,4`` trains a cross-validated set from one preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from glacier.data.preprocess.splits import GeographicSplit
from glacier.errors import GlacierInputError

FOLD = "fold"  # index column: the slice's fold, -1 for test slices
FOLD_TOUCH = "fold_touch"  # index column: bit j set when the footprint overlaps fold j's slices
FOLD_COLUMNS = (FOLD, FOLD_TOUCH)
AXES = ("auto", "rows", "columns")
MAX_FOLDS = 62  # bits of the int64 mask
# overlap below this share of a footprint's area is a shared edge (or reprojection noise)
EDGE_TOLERANCE = 1e-6


class SpatialFolds:
    """``k`` spatial folds of the non-test area of each scene, around held-out test regions.

    Args:
        test_regions: Polygon files or lon/lat boxes held out for testing.
        folds: Number of folds ``k`` (2 … 62).
        fold: The fold a training run uses (its dev strip); read by the DataModule, checked here,
            not part of the fingerprint.
        axis: ``rows`` (strips stacked north to south), ``columns`` (west to east) or ``auto``
            (across the longer side of each scene's non-test area).
        drop_straddling: Drop slices touching a test region.
    """

    def __init__(
        self,
        test_regions: Sequence[str | Sequence[float]],
        folds: int = 5,
        fold: int | None = 0,
        axis: str = "auto",
        drop_straddling: bool = True,
    ) -> None:
        if not isinstance(folds, int) or not 2 <= folds <= MAX_FOLDS:
            raise GlacierInputError(f"split.folds={folds!r}: an integer from 2 to {MAX_FOLDS}")
        if fold is not None and (not isinstance(fold, int) or not 0 <= fold < folds):
            raise GlacierInputError(f"split.fold={fold!r}: an integer from 0 to {folds - 1}")
        if axis not in AXES:
            raise GlacierInputError(f"split.axis={axis!r}: one of {AXES}")
        self.test = GeographicSplit(test_regions, (), drop_straddling)
        self.folds = folds
        self.fold = fold
        self.axis = axis

    def describe(self) -> dict[str, object]:
        """Settings for the preprocessing fingerprint (``fold`` is not one: chosen at load)."""
        test = self.test.describe()
        return {
            "kind": "geographic_folds",
            "test": test["test"],
            "drop_straddling": test["drop_straddling"],
            "folds": self.folds,
            "axis": self.axis,
        }

    def assign(self, slices: pd.DataFrame) -> pd.Series:
        """``test`` inside the test regions, ``""`` (dropped) touching them, else ``train``."""
        return self.test.assign(slices)

    def fold_columns(self, index: pd.DataFrame) -> pd.DataFrame:
        """``fold`` and ``fold_touch`` of every slice of the kept index (see the module doc).

        Args:
            index: Kept slices with their ``split`` and footprint (``crs``, ``x_min`` …).

        Raises:
            GlacierInputError: If a scene has fewer slice rows (columns) than folds.
        """
        fold = pd.Series(-1, index=index.index, dtype=np.int64)
        rest = index[index["split"] != "test"]
        for scene, group in rest.groupby("scene", sort=True):
            fold.loc[group.index] = strip_numbers(group, self.folds, self.axis, str(scene))
        touch = pd.Series(0, index=index.index, dtype=np.int64)
        touch.loc[rest.index] = overlap_masks(rest, fold.loc[rest.index], self.folds)
        return pd.DataFrame({FOLD: fold, FOLD_TOUCH: touch})


def strip_numbers(slices: pd.DataFrame, folds: int, axis: str, scene: str) -> np.ndarray:
    """The strip (0 … folds-1) of each slice of one scene, by its footprint centroid.

    Strips hold about the same number of distinct centroid rows (``rows``: fold 0 northmost) or
    columns (``columns``: fold 0 westmost); ``auto`` cuts across the longer side of the slices'
    extent.

    Raises:
        GlacierInputError: If there are fewer distinct positions than folds.
    """
    width = slices["x_max"].max() - slices["x_min"].min()
    height = slices["y_max"].max() - slices["y_min"].min()
    if axis == "auto":
        axis = "rows" if height >= width else "columns"
    if axis == "rows":
        position = -(slices["y_min"] + slices["y_max"]).to_numpy() / 2  # north first
    else:
        position = (slices["x_min"] + slices["x_max"]).to_numpy() / 2
    levels, rank = np.unique(np.round(position, 6), return_inverse=True)
    if len(levels) < folds:
        raise GlacierInputError(
            f"scene {scene!r} has {len(levels)} slice {axis} outside the test region, fewer than "
            f"split.folds={folds}: use fewer folds or smaller slices"
        )
    return np.asarray(rank * folds // len(levels), dtype=np.int64)


def _footprints(slices: pd.DataFrame, crs: str) -> gpd.GeoSeries:
    boxes = shapely.box(slices.x_min, slices.y_min, slices.x_max, slices.y_max)
    return gpd.GeoSeries(boxes, index=slices.index, crs=crs)


def overlap_masks(slices: pd.DataFrame, fold: pd.Series, folds: int) -> np.ndarray:
    """Per slice, the bit mask of the folds whose slices its footprint overlaps.

    Footprints are compared in each slice's CRS (other CRSs' slices reprojected), so slices of
    overlapping scenes count too; a shared edge is no overlap.
    """
    masks = pd.Series(0, index=slices.index, dtype=np.int64)
    groups = {str(crs): _footprints(group, str(crs)) for crs, group in slices.groupby("crs")}
    for crs, boxes in groups.items():
        area = boxes.area.to_numpy()
        for number in range(folds):
            members = [b[fold.loc[b.index] == number].to_crs(crs) for b in groups.values()]
            region = shapely.union_all(pd.concat(members).values)
            shared = np.asarray(boxes.intersection(region).area)
            hit = shared > EDGE_TOLERANCE * area
            masks.loc[boxes.index[hit]] |= 1 << number
    return masks.to_numpy()


def resolve_fold(
    index: pd.DataFrame, fold: int | None, folds: int | None = None, where: str = "the index"
) -> pd.DataFrame:
    """The plain train/dev/test index of one fold (what the DataModule trains on).

    Args:
        index: ``splits.csv`` as read.
        fold: The fold whose slices are dev (None: every non-test slice trains, no dev).
        folds: Number of folds of the dataset (``dataset.json``; default: from the index).
        where: The index file, for messages.

    Returns:
        The fold's slices as ``dev``, the non-test slices not overlapping them as ``train``,
        test slices as they are; slices overlapping the fold's slices are left out.

    Raises:
        GlacierInputError: For a fold on an index without folds, or a fold out of range.
    """
    if FOLD not in index.columns:
        if fold is None:
            return index
        raise GlacierInputError(
            f"split.fold={fold}: {where} has no folds; preprocess with a folds split (e.g. "
            "split=everest_folds) or leave split.fold unset"
        )
    if fold is None:
        return index
    count = int(folds) if folds is not None else int(index[FOLD].max()) + 1
    if not 0 <= fold < count:
        raise GlacierInputError(f"split.fold={fold}: {where} has {count} folds, 0 to {count - 1}")
    held_out = index["split"].to_numpy() == "test"
    dev = ~held_out & (index[FOLD].to_numpy() == fold)
    touching = ~held_out & ~dev & ((index[FOLD_TOUCH].to_numpy() >> fold) & 1).astype(bool)
    resolved = index.copy()
    resolved.loc[dev, "split"] = "dev"
    resolved.loc[~held_out & ~dev, "split"] = "train"
    kept: pd.DataFrame = resolved[~touching]
    return kept
