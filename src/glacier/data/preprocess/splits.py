"""Assign slices to train/dev/test (the ``split/`` config group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from glacier.data.contract import SPLITS
from glacier.data.labels import choose_layer
from glacier.errors import GlacierInputError, require_file


class RandomSplit:
    """Seeded random split of slices (or of whole scenes, ``by="scene"``).

    Args:
        train: Fraction for training.
        dev: Fraction for validation.
        test: Fraction for testing.
        seed: Random seed.
        by: ``"slice"`` or ``"scene"`` (keep each scene's slices together).
    """

    def __init__(
        self,
        train: float = 0.7,
        dev: float = 0.1,
        test: float = 0.2,
        seed: int = 0,
        by: str = "slice",
    ) -> None:
        if min(train, dev, test) < 0 or abs(train + dev + test - 1.0) > 1e-6:
            raise GlacierInputError(
                f"split fractions must be >= 0 and sum to 1: {train}/{dev}/{test}"
            )
        if by not in ("slice", "scene"):
            raise GlacierInputError(f"split.by must be 'slice' or 'scene', got {by!r}")
        self.fractions = (train, dev, test)
        self.seed = seed
        self.by = by

    def describe(self) -> dict[str, object]:
        """Return the settings (for stage fingerprints)."""
        return {"kind": "random", "fractions": self.fractions, "seed": self.seed, "by": self.by}

    def fold_columns(self, index: pd.DataFrame) -> None:
        """No cross-validation folds."""
        return None

    def assign(self, slices: pd.DataFrame) -> pd.Series:
        """Assign each slice a split name.

        Args:
            slices: Slice metadata (``scene`` column used when ``by="scene"``).

        Returns:
            Split names aligned with ``slices``.
        """
        units = slices["scene"].unique() if self.by == "scene" else np.arange(len(slices))
        order = np.random.default_rng(self.seed).permutation(len(units))
        bounds = np.round(np.cumsum(self.fractions) * len(units)).astype(int)
        names = np.empty(len(units), dtype=object)
        start = 0
        for name, stop in zip(SPLITS, bounds, strict=True):
            names[order[start:stop]] = name
            start = stop
        if self.by == "scene":
            lookup = dict(zip(units, names, strict=True))
            return slices["scene"].map(lookup)
        return pd.Series(names, index=slices.index)


Region = str | Sequence[float] | Mapping[str, str]


def _read_region_file(path: str | Path, layer: str | None, key: str) -> list[shapely.Geometry]:
    """The polygons of a region file (in EPSG:4326); a file of several layers needs ``layer``."""
    what = f"{key} region file"
    require_file(path, what)
    frame = gpd.read_file(path, layer=choose_layer(path, layer, f"{key}.layer", what))
    if frame.crs is None:
        raise GlacierInputError(f"{path} ({key}) has no CRS")
    return list(frame.geometry.to_crs("EPSG:4326").values)


def _load_regions(regions: Sequence[Region], key: str) -> gpd.GeoSeries:
    """Read region polygons: file paths, ``{path, layer}`` entries, or lon/lat boxes.

    A box is ``[lon_min, lat_min, lon_max, lat_max]``.
    """
    shapes = []
    for index, region in enumerate(regions):
        entry = f"{key}[{index}]"
        if isinstance(region, str | Path):
            shapes.extend(_read_region_file(region, None, entry))
        elif isinstance(region, Mapping):
            unknown = sorted(set(region) - {"path", "layer"})
            if unknown or "path" not in region:
                raise GlacierInputError(
                    f"{entry}: a region file entry is {{path: FILE, layer: NAME}}, got {region}"
                )
            shapes.extend(_read_region_file(region["path"], region.get("layer"), entry))
        else:
            values = [float(v) for v in region]
            if len(values) != 4:
                raise GlacierInputError(f"{key}: a box needs 4 numbers (lon/lat), got {region}")
            shapes.append(shapely.box(*values))
    return gpd.GeoSeries(shapes, crs="EPSG:4326")


class GeographicSplit:
    """Split by place: slices whose footprint centroid lies in a test/dev region go there.

    Everything else is train. With ``drop_straddling``, training slices whose footprint touches a
    test or dev region are dropped so no pixel is seen in training and evaluation.

    Args:
        test_regions: Polygon files, ``{path, layer}`` entries (a file of several layers) or
            lon/lat boxes.
        dev_regions: The same, for dev.
        drop_straddling: Drop training slices that overlap held-out regions.
    """

    def __init__(
        self,
        test_regions: Sequence[Region],
        dev_regions: Sequence[Region] = (),
        drop_straddling: bool = True,
    ) -> None:
        self.test_regions = _load_regions(test_regions, "split.test_regions")
        self.dev_regions = _load_regions(dev_regions, "split.dev_regions")
        self.drop_straddling = drop_straddling
        self._config = {"test": list(map(str, test_regions)), "dev": list(map(str, dev_regions))}

    def describe(self) -> dict[str, object]:
        """Return the settings (for stage fingerprints)."""
        return {"kind": "geographic", **self._config, "drop_straddling": self.drop_straddling}

    def fold_columns(self, index: pd.DataFrame) -> None:
        """No cross-validation folds (see :class:`~glacier.data.preprocess.folds.SpatialFolds`)."""
        return None

    def assign(self, slices: pd.DataFrame) -> pd.Series:
        """Assign each slice a split name ("" = dropped).

        Args:
            slices: Slice metadata with footprint bounds and ``crs``.

        Returns:
            Split names aligned with ``slices``.
        """
        result = pd.Series("train", index=slices.index, dtype=object)
        for crs, group in slices.groupby("crs"):
            boxes = gpd.GeoSeries(
                shapely.box(group.x_min, group.y_min, group.x_max, group.y_max),
                index=group.index,
                crs=crs,
            )
            centroids = boxes.centroid
            held_out = np.zeros(len(group), dtype=bool)
            for name, regions in (("dev", self.dev_regions), ("test", self.test_regions)):
                if not len(regions):
                    continue
                area = shapely.union_all(regions.to_crs(crs).values)
                inside = np.asarray(centroids.within(area))
                result.loc[group.index[inside]] = name
                held_out |= np.asarray(boxes.intersects(area))
            if self.drop_straddling:
                straddling = held_out & (result.loc[group.index] == "train").to_numpy()
                result.loc[group.index[straddling]] = ""
        return result
