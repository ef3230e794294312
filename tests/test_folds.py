"""Spatial k-fold cross-validation: folds checked geometrically, chosen at load time."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import torch
from conftest import compose_config

from glacier.data.contract import load_contract
from glacier.data.loading import GlacierDataModule, RandomWindowDataset
from glacier.data.loading.sampling import allowed_area, dilate
from glacier.data.preprocess import FOLD, SpatialFolds, assign_splits, resolve_fold
from glacier.data.store import training_area
from glacier.errors import GlacierInputError
from glacier.tasks.config import build
from glacier.tasks.preprocess import run_preprocess

UTM = "EPSG:32645"
TEST_BOX = [86.7, 27.8, 86.835, 28.2]  # split/regions/everest_test.yaml


def footprints(index: pd.DataFrame) -> gpd.GeoSeries:
    boxes = shapely.box(index.x_min, index.y_min, index.x_max, index.y_max)
    return gpd.GeoSeries(boxes, index=index.index, crs=UTM)


def held_out_region(crs: str = UTM) -> shapely.Geometry:
    return gpd.GeoSeries([shapely.box(*TEST_BOX)], crs="EPSG:4326").to_crs(crs).iloc[0]


def check_folds(index: pd.DataFrame, folds: int) -> None:
    """Every fold geometrically: dev and training footprints share no pixel, nothing trains or
    validates in the test region, the folds' dev slices cover the non-test area exactly once."""
    region = held_out_region()
    rest = index[index["split"] != "test"]
    assert sorted(rest[FOLD].unique()) == list(range(folds))
    assert (index.loc[index["split"] == "test", FOLD] == -1).all()
    covered = []
    for fold in range(folds):
        resolved = resolve_fold(index, fold, folds)
        train, dev = (resolved[resolved["split"] == s] for s in ("train", "dev"))
        assert len(train) and len(dev)
        dev_area = shapely.union_all(footprints(dev).values)
        shared = footprints(train).intersection(dev_area).area
        assert shared.max() == 0.0, f"fold {fold}: a training window shares pixels with dev"
        assert not footprints(pd.concat([train, dev])).intersects(region).any()
        covered.append(dev.index)
        # only slices overlapping the dev slices were left out
        left_out = rest.index.difference(resolved.index)
        assert (footprints(rest.loc[left_out]).intersection(dev_area).area > 0).all()
    every = np.concatenate([np.asarray(c) for c in covered])
    assert sorted(every) == sorted(rest.index)  # each non-test slice is one fold's dev, once
    non_test = shapely.union_all(footprints(rest).values)
    assert shapely.union_all(footprints(rest.loc[every]).values).equals(non_test)


def grid_slices(scene: str, x0: float, rows: int, cols: int, size: float = 3840.0) -> pd.DataFrame:
    """A scene's slice footprints: ``size`` m windows at half-window steps (as 128 px / 64 px)."""
    step = size / 2
    records = [
        {
            "scene": scene,
            "crs": UTM,
            "x_min": x0 + c * step,
            "x_max": x0 + c * step + size,
            "y_max": 3.108e6 - r * step,
            "y_min": 3.108e6 - r * step - size,
        }
        for r in range(rows)
        for c in range(cols)
    ]
    return pd.DataFrame(records)


def test_strips_are_contiguous_and_no_training_window_touches_dev_or_test() -> None:
    # two scenes side by side, the second overlapping the first by a column of slices
    slices = pd.concat(
        [grid_slices("a", 478_000.0, 10, 12), grid_slices("b", 478_000.0 + 11 * 1920.0, 10, 6)],
        ignore_index=True,
    )
    split = SpatialFolds([TEST_BOX], folds=5)
    index, counts = assign_splits(slices, np.ones(len(slices), bool), split, len(slices))
    assert counts["test"] > 0 and counts["dev"] == 0  # dev is chosen at load time
    check_folds(index, 5)
    for scene, group in index[index["split"] != "test"].groupby("scene"):
        # rows (taller than wide): fold numbers never decrease from north to south
        order = group.sort_values("y_max", ascending=False)[FOLD].to_numpy()
        assert (np.diff(order) >= 0).all() and len(set(order)) == 5, scene
    # the scenes overlap: a slice of b overlapping fold-0 slices of a is left out of fold 0
    a0 = index[(index.scene == "a") & (index[FOLD] == 0)]
    b = index[(index.scene == "b") & (index[FOLD] != 0)]
    overlapping = b[footprints(b).intersection(shapely.union_all(footprints(a0).values)).area > 0]
    assert len(overlapping) and not overlapping.index.isin(resolve_fold(index, 0, 5).index).any()
    wide = SpatialFolds([TEST_BOX], folds=3, axis="columns").fold_columns(index)
    west_east = index.assign(fold=wide[FOLD]).query("scene == 'a' and split != 'test'")
    assert (np.diff(west_east.sort_values("x_min")[FOLD].to_numpy()) >= 0).all()


def test_fold_settings_are_checked_and_the_fold_is_not_in_the_fingerprint() -> None:
    assert (
        SpatialFolds([TEST_BOX], fold=0).describe() == SpatialFolds([TEST_BOX], fold=4).describe()
    )
    for bad in ({"folds": 1}, {"folds": 5, "fold": 5}, {"axis": "diagonal"}):
        with pytest.raises(GlacierInputError, match="split\\."):
            SpatialFolds([TEST_BOX], **bad)  # type: ignore[arg-type]
    slices = grid_slices("a", 478_000.0, 3, 12)
    with pytest.raises(GlacierInputError, match=r"has 3 slice rows .* fewer than split\.folds=5"):
        split = SpatialFolds([TEST_BOX], axis="rows")
        assign_splits(slices, np.ones(len(slices), bool), split, len(slices))


def test_resolving_a_fold_needs_an_index_with_folds() -> None:
    plain = pd.DataFrame({"split": ["train", "dev", "test"]})
    assert resolve_fold(plain, None).equals(plain)
    with pytest.raises(GlacierInputError, match=r"split\.fold=1: idx\.csv has no folds"):
        resolve_fold(plain, 1, where="idx.csv")
    folded = plain.assign(split=["train", "train", "test"], fold=[0, 1, -1], fold_touch=[3, 3, 0])
    with pytest.raises(GlacierInputError, match="has 2 folds, 0 to 1"):
        resolve_fold(folded, 2, 2)
    assert resolve_fold(folded, 1, 2)["split"].tolist() == ["dev", "test"]  # slice 0 touches it
    assert resolve_fold(folded, None, 2)["split"].tolist() == ["train", "train", "test"]


@pytest.fixture(scope="module")
def everest_folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("everest_folds")
    run_preprocess(compose_config("preprocess", ["split=everest_folds"], root))
    return root


def test_everest_folds_are_geometrically_sound(everest_folds: Path) -> None:
    processed = everest_folds / "data" / "processed" / "everest"
    index = pd.read_csv(processed / "splits.csv")
    records = gpd.read_file(processed / "slices" / "slices.geojson")
    located = index.merge(records[["slice", "x_min", "x_max", "y_min", "y_max"]], on="slice")
    assert len(located) == len(index) == 110  # 30 test + 80 in folds (9 touching test dropped)
    check_folds(located, 5)
    _, info = load_contract(processed)
    assert info.folds == 5 and len(info.fold_counts) == 5 and sum(info.fold_counts) == 80
    assert info.to_dict()["fold_counts"] == list(info.fold_counts)
    # choosing another fold changes no preprocessing: the dataset stays up to date
    cfg = compose_config("preprocess", ["split=everest_folds", "split.fold=3"], everest_folds)
    assert build(cfg.preprocessor, _convert_="all").is_complete()


def test_random_windows_keep_the_margin_from_the_folds_dev_region(everest_folds: Path) -> None:
    cfg = compose_config(
        "train",
        ["split=everest_folds", "split.fold=2", "datamodule.sampler=random_windows"],
        everest_folds,
    )
    datamodule: GlacierDataModule = build(cfg.datamodule, _convert_="all")
    datamodule.setup("fit")
    assert datamodule.fold == 2 and len(datamodule.datasets["dev"]) == 16
    windows = datamodule.random_windows
    assert isinstance(windows, RandomWindowDataset)
    index = resolve_fold(
        pd.read_csv(everest_folds / "data" / "processed" / "everest" / "splits.csv"), 2, 5
    )
    shape = (655, 800)
    held = index[index["split"] != "train"]
    area = allowed_area(shape, index[index["split"] == "train"], held, windows.margin)
    forbidden = dilate(training_area(shape, index[index["split"] == "dev"]), windows.margin)
    assert area.any() and not (area & forbidden).any()
    for i in range(64):
        _, row, col = windows.position(0, i)
        assert not forbidden[row : row + windows.size, col : col + windows.size].any()
    batch = datamodule.prepare_batch(next(iter(datamodule.train_dataloader())), train=False)
    assert (
        batch["image"].shape[0] == cfg.datamodule.batch_size
        and torch.isfinite(batch["image"]).any()
    )
