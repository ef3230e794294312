"""Slice filters and train/dev/test splits on hand-made slice tables."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from glacier.data.preprocess import GeographicSplit, RandomSplit, SliceFilter
from glacier.errors import GlacierInputError


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mask_mean_clean_ice": [0.00, 0.10, 0.02, 0.00, 0.30],
            "mask_mean_debris": [0.00, 0.00, 0.06, 0.01, 0.00],
            "nodata_frac": [0.0, 0.1, 0.2, 0.0, 0.9],
        }
    )


def test_filter_by_class_fraction_and_nodata() -> None:
    keep = SliceFilter({"clean_ice": 0.05, "debris": 0.05}, max_nodata_fraction=0.5)
    assert keep.select(table(), ["clean_ice", "debris"]).tolist() == [
        False,
        True,
        True,
        False,
        False,  # the last has 30 % ice but 90 % nodata
    ]
    total = SliceFilter(min_total_fraction=0.05)
    assert total.select(table(), ["clean_ice", "debris"]).tolist() == [
        False,
        True,
        True,
        False,
        True,
    ]


def test_filter_keeps_a_seeded_share_of_unlabelled_slices() -> None:
    slices = pd.DataFrame({"mask_mean_glacier": np.zeros(1000), "nodata_frac": np.zeros(1000)})
    keep = SliceFilter(min_total_fraction=0.1, keep_unlabelled_fraction=0.2, seed=3)
    chosen = keep.select(slices, ["glacier"])
    assert 150 < chosen.sum() < 250
    assert (
        chosen
        == SliceFilter(min_total_fraction=0.1, keep_unlabelled_fraction=0.2, seed=3).select(
            slices, ["glacier"]
        )
    ).all()


def test_filter_rejects_unknown_class() -> None:
    with pytest.raises(GlacierInputError, match="debirs"):
        SliceFilter({"debirs": 0.1}).select(table(), ["clean_ice", "debris"])


def test_random_split_fractions_and_seed() -> None:
    slices = pd.DataFrame({"scene": ["a"] * 500 + ["b"] * 500})
    names = RandomSplit(0.7, 0.1, 0.2, seed=1).assign(slices)
    assert names.value_counts().to_dict() == {"train": 700, "test": 200, "dev": 100}
    assert names.equals(RandomSplit(0.7, 0.1, 0.2, seed=1).assign(slices))
    by_scene = RandomSplit(0.5, 0.0, 0.5, seed=0, by="scene").assign(slices)
    assert by_scene.groupby(slices["scene"]).nunique().tolist() == [1, 1]
    with pytest.raises(GlacierInputError, match="sum to 1"):
        RandomSplit(0.7, 0.2, 0.2)


def test_geographic_split_by_centroid_with_straddlers_dropped(tmp_path: Path) -> None:
    # five 10 km slices in a row (UTM 45N); the test region covers x >= 520 km
    xs = np.arange(5) * 10_000 + 480_000.0
    slices = pd.DataFrame(
        {"crs": "EPSG:32645", "x_min": xs, "x_max": xs + 10_000, "y_min": 3.09e6, "y_max": 3.1e6}
    )
    region = gpd.GeoDataFrame(
        geometry=[shapely.box(518_000, 3.0e6, 600_000, 3.2e6)], crs="EPSG:32645"
    ).to_crs(4326)
    region.to_file(tmp_path / "test_region.gpkg")
    names = GeographicSplit([str(tmp_path / "test_region.gpkg")]).assign(slices)
    # slice 3 (510-520 km) touches the region but its centroid is outside: dropped ("")
    assert names.tolist() == ["train", "train", "train", "", "test"]
    keep = GeographicSplit([str(tmp_path / "test_region.gpkg")], drop_straddling=False)
    assert keep.assign(slices).tolist() == ["train", "train", "train", "train", "test"]
    lon_lat_box = GeographicSplit(
        [[86.0, 27.0, 87.0, 29.0]], dev_regions=[[87.0, 27.0, 88.0, 29.0]]
    )
    assert set(lon_lat_box.assign(slices)) <= {"test", "dev", ""}
