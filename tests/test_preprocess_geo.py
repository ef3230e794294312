"""Preprocessing geo rules, re-runs and bad input, on the generated synthetic dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, open_dict
from scene_files import slice_window, tree_checksums

from glacier.data.contract import load_contract
from glacier.data.spec import SyntheticDataset, ensure_synthetic_dataset
from glacier.data.store import SceneStore, training_area
from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.models import Normalizer
from glacier.tasks.preprocess import run_preprocess

Compose = Callable[[str, list[str] | None], DictConfig]


def synthetic(root: Path) -> SyntheticDataset:
    """The dataset ``data=synthetic`` generates (seed 42 = the configs' default seed)."""
    return ensure_synthetic_dataset(root / "data" / "raw" / "synthetic", seed=42)


def near(mask: np.ndarray, row_col: tuple[int, int], channel: int) -> set[int]:
    """Label values of the valid pixels within 2 px (SLC-off stripes may cross a point)."""
    row, col = row_col
    window = mask[row - 2 : row + 3, col - 2 : col + 3, channel]
    return set(window[window != 255].tolist())


def pixel(dataset: SyntheticDataset, name: str) -> tuple[int, int]:
    col, row = ~dataset.transform * dataset.points[name]
    return int(row), int(col)


@pytest.fixture
def processed(compose_in: Compose, tmp_path: Path) -> tuple[DictConfig, Path]:
    cfg = compose_in("preprocess", ["data=synthetic"])
    run_preprocess(cfg)
    return cfg, Path(cfg.paths.processed_dir)


def test_holes_stay_unburned_and_other_crs_polygons_burn_in_place(
    processed: tuple[DictConfig, Path], tmp_path: Path
) -> None:
    _, out = processed
    data = synthetic(tmp_path)
    mask = np.load(out / "masks" / "mask_synthetic.npy")
    assert mask.shape == (data.height, data.width, 2)
    assert near(mask, pixel(data, "hole"), 0) == {0}  # the nunatak inside the ring
    assert near(mask, pixel(data, "ring"), 0) == {1}
    assert near(mask, pixel(data, "debris"), 1) == {1}  # stored in EPSG:4326
    assert (
        near(mask, pixel(data, "background"), 0) == near(mask, pixel(data, "background"), 1) == {0}
    )
    debris = gpd.read_file(data.debris).to_crs(data.crs).geometry.iloc[0]
    burned_km2 = (mask[..., 1] == 1).sum() * 900 / 1e6
    assert burned_km2 == pytest.approx(debris.area / 1e6, rel=0.05)
    table = pd.read_csv(out / "mask_metadata.csv")
    # six clean-ice polygons: one lies outside the scene; the bow-tie is repaired and burned
    assert table.loc[0, "polygons_clean_ice"] == 5 and table.loc[0, "polygons_debris"] == 1


def test_nodata_is_255_in_masks_and_slices(
    processed: tuple[DictConfig, Path], tmp_path: Path
) -> None:
    _, out = processed
    data = synthetic(tmp_path)
    mask = np.load(out / "masks" / "mask_synthetic.npy")
    with rasterio.open(data.scene) as src:
        image = src.read()
    nodata = (image == 0).all(axis=0) | np.isnan(image).any(axis=0)
    assert nodata.any()
    assert (mask[nodata] == 255).all() and (mask[~nodata] != 255).all()


def test_slice_footprint_reads_back_the_same_pixels(
    processed: tuple[DictConfig, Path], tmp_path: Path
) -> None:
    _, out = processed
    data = synthetic(tmp_path)
    slices = gpd.read_file(out / "slices" / "slices.geojson")
    assert slices.crs == "EPSG:4326" and len(slices) > 10
    row = slices.iloc[7]
    image = slice_window(out, row)[0]
    with rasterio.open(data.scene) as src:
        window = rasterio.windows.from_bounds(
            row["x_min"], row["y_min"], row["x_max"], row["y_max"], src.transform
        )
        expected = src.read(window=window.round_offsets().round_lengths()).astype(np.float32)
    expected[:, (expected == 0).all(axis=0)] = np.nan
    np.testing.assert_array_equal(image[..., :6], np.moveaxis(expected, 0, -1))
    footprint = gpd.GeoSeries([slices.geometry.iloc[7]], crs=4326).to_crs(data.crs).iloc[0]
    box = shapely.box(row["x_min"], row["y_min"], row["x_max"], row["y_max"])
    assert footprint.symmetric_difference(box).area < 1e-3 * box.area


def test_edge_slices_are_padded_with_nodata(
    processed: tuple[DictConfig, Path], tmp_path: Path
) -> None:
    _, out = processed
    data = synthetic(tmp_path)
    slices = gpd.read_file(out / "slices" / "slices.geojson")
    edge = slices[slices["col_off"] + slices["size"] > data.width].iloc[0]
    image, label = slice_window(out, edge)
    inside = data.width - int(edge["col_off"])
    assert (label[:, inside:] == 255).all() and np.isnan(image[:, inside:]).all()


def test_date_filter_counts(compose_in: Compose) -> None:
    cfg = compose_in(
        "preprocess",
        ["data=synthetic", "data.date_filter={column: year, year: 2000, tolerance: 0}"],
    )
    run_preprocess(cfg)
    table = pd.read_csv(Path(cfg.paths.processed_dir) / "mask_metadata.csv")
    # 2001 and 1990 polygons dropped, the outside one is not burned: 3 of 6 remain
    assert table.loc[0, "polygons_clean_ice"] == 3


def test_region_polygon_masks_outside(compose_in: Compose, tmp_path: Path) -> None:
    data = synthetic(tmp_path)
    cfg = compose_in("preprocess", ["data=synthetic", f"data.region={data.region}"])
    run_preprocess(cfg)
    mask = np.load(Path(cfg.paths.processed_dir) / "masks" / "mask_synthetic.npy")
    assert (mask[pixel(data, "outside_region")] == 255).all()
    assert near(mask, pixel(data, "ring"), 0) == {1}


def test_icimod_single_file_with_class_column(compose_in: Compose, tmp_path: Path) -> None:
    data = synthetic(tmp_path)
    cfg = compose_in("preprocess", explicit_data(data))
    with open_dict(cfg):  # quoted dict keys cannot be given as command-line overrides
        cfg.data.labels = [
            {
                "path": str(data.glaciers),
                "class_column": "Glaciers",
                "class_values": {"Clean Ice": "clean_ice", "Debris covered": "debris"},
            }
        ]
    run_preprocess(cfg)
    mask = np.load(Path(cfg.paths.processed_dir) / "masks" / "mask_synthetic.npy")
    assert near(mask, pixel(data, "ring"), 0) == {1}
    assert near(mask, pixel(data, "debris"), 1) == {1}


def test_normalized_train_pixels_have_zero_mean_unit_std(
    processed: tuple[DictConfig, Path],
) -> None:
    _, out = processed
    contract, _ = load_contract(out)
    assert contract.stats is not None
    assert contract.channel_names == [
        "blue",
        "green",
        "red",
        "nir",
        "swir1",
        "swir2",
        "ndvi",
        "ndsi",
    ]
    index = pd.read_csv(out / "splits.csv")
    train = index[index["split"] == "train"]
    store = SceneStore(out, contract.channels)
    scene = store.slice_image("synthetic", 0, 0, 1)  # opens the arrays
    assert scene[0].shape == (1, 1, 8)
    (floats, halves), labels = store.arrays("synthetic")
    pixels = np.concatenate([floats, halves], axis=-1).astype(np.float64)
    area = training_area(labels.shape[:2], train) & (labels[..., 0] != 255)
    normalizer = Normalizer(*contract.stats.of(contract.channel_names))
    values = torch.from_numpy(pixels[area].T[None, :, :, None]).float()
    normalized = normalizer(values)[0, :, :, 0].double()
    # each training pixel once, overlapping windows or not: mean 0, std 1 per channel
    np.testing.assert_allclose(normalized.mean(dim=1).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(dim=1, correction=0).numpy(), 1.0, atol=1e-4)
    assert contract.stats.pixels == int(area.sum())


def test_second_run_changes_no_file(processed: tuple[DictConfig, Path]) -> None:
    cfg, out = processed
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    sums = tree_checksums(out, skip=())
    run_preprocess(cfg)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert tree_checksums(out, skip=()) == sums


def explicit_data(
    data: SyntheticDataset, scene: Path | None = None, labels: list[tuple[Path, str]] | None = None
) -> list[str]:
    """Overrides describing the synthetic files as an ordinary scenes + labels data config."""
    bands = "[blue, green, red, nir, swir1, swir2]"
    scene_path = scene or data.scene
    pairs = labels or [(data.clean_ice, "clean_ice"), (data.debris, "debris")]
    label_list = ", ".join(f"{{path: '{p}', class_name: {c}}}" for p, c in pairs)
    return [
        "data=everest",
        "data.name=explicit",
        "data.classes=[clean_ice, debris]",
        f"data.scenes=[{{id: synthetic, sources: [{{path: '{scene_path}', bands: {bands}}}]}}]",
        f"data.labels=[{label_list}]",
        "data.derived=[ndvi, ndsi]",
        "data.slice_size=64",
        "data.overlap=16",
        "~data.channel_sets",
    ]


def far_away_outlines(tmp_path: Path) -> Path:
    data = synthetic(tmp_path)
    frame = gpd.read_file(data.clean_ice)
    frame["geometry"] = frame.geometry.translate(5e5, 0)
    path = tmp_path / "far.gpkg"
    frame.to_file(path)
    return path


def three_band_scene(tmp_path: Path) -> Path:
    data = synthetic(tmp_path)
    with rasterio.open(data.scene) as src:
        profile = src.profile | {"count": 3}
        bands = src.read([1, 2, 3])
    path = tmp_path / "three.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def bad_overrides(case: str, data: SyntheticDataset, tmp_path: Path) -> list[str]:
    """The overrides of one bad-input case."""
    if case == "missing_scene":
        return explicit_data(data, scene=tmp_path / "missing.tif")
    if case == "no_overlap":
        far = far_away_outlines(tmp_path)
        return explicit_data(data, labels=[(far, "clean_ice"), (far, "debris")])
    if case == "no_polygons":
        return [*explicit_data(data), "data.date_filter={column: year, year: 1800, tolerance: 1}"]
    if case == "band_count":
        return explicit_data(data, scene=three_band_scene(tmp_path))
    if case == "unknown_class":
        return explicit_data(data, labels=[(data.clean_ice, "icecream")])
    return [*explicit_data(data), "data.derived=[ndvi, ndxx]"]


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("missing_scene", GlacierFileNotFoundError, r"missing\.tif"),
        ("no_overlap", GlacierInputError, r"far\.gpkg"),
        ("no_polygons", GlacierInputError, "clean_ice"),
        ("band_count", GlacierInputError, r"three\.tif"),
        ("unknown_class", GlacierInputError, "icecream"),
        ("unknown_derived", GlacierInputError, "ndxx"),
    ],
)
def test_bad_input_fails_clearly_and_keeps_earlier_outputs(
    compose_in: Compose, tmp_path: Path, case: str, error: type[Exception], message: str
) -> None:
    data = synthetic(tmp_path)
    good = compose_in("preprocess", explicit_data(data))
    run_preprocess(good)
    out = Path(good.paths.processed_dir)
    before = tree_checksums(out, skip=())
    assert "splits.csv" in {p.name for p in out.iterdir()}
    cfg = compose_in("preprocess", bad_overrides(case, data, tmp_path))
    with pytest.raises(error, match=message):
        run_preprocess(cfg)
    assert tree_checksums(out, skip=()) == before


def test_config_typo_is_rejected(compose_in: Compose) -> None:
    with pytest.raises(ConfigCompositionException, match="n_jbos"):
        compose_in("preprocess", ["n_jbos=2"])
    with pytest.raises(ConfigCompositionException, match="slice_szie"):
        compose_in("preprocess", ["data.slice_szie=64"])


def test_interrupted_scene_files_are_not_trusted(processed: tuple[DictConfig, Path]) -> None:
    cfg, out = processed
    victim = out / "scenes" / "synthetic" / "image_float32.npy"
    intact = victim.read_bytes()
    victim.write_bytes(intact[:1000])  # as if a crash or a full disk hit mid-write
    run_preprocess(cfg)  # the stage record says done, but the file is short: redone
    assert victim.read_bytes() == intact
    victim.unlink()
    run_preprocess(cfg)
    assert victim.read_bytes() == intact
