"""Preprocessing of the synthetic dataset: burned geometry, padding, derived channels, bad input.

Complements tests/test_preprocess_geo.py (hole/ring, EPSG:4326 debris area, slice footprints,
right-edge padding, date filter, standardization, idempotent re-runs, region, ICIMOD labels and
the first set of bad inputs) with pixel-exact mask checks against an independent
rasterization, the bow-tie repair, bottom/corner padding, imputation after normalization,
derived and DEM channels on another grid, undeclared nodata, and more bad inputs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from conftest import compose_config
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, open_dict
from rasterio.features import rasterize
from scene_files import slice_window, tree_checksums
from scipy.ndimage import map_coordinates

from glacier.data.contract import DatasetLayout, load_contract, storage_groups
from glacier.data.raster.derived import slope_degrees
from glacier.data.spec import SyntheticDataset, ensure_synthetic_dataset
from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.models import Normalizer
from glacier.tasks.preprocess import run_preprocess

Compose = Callable[[str, list[str] | None], DictConfig]
Edit = Callable[[DictConfig], None]
BANDS = "[blue, green, red, nir, swir1, swir2]"


def synthetic(root: Path) -> SyntheticDataset:
    """The files ``data=synthetic`` generates under ``root`` (seed 42 = the configs' seed)."""
    return ensure_synthetic_dataset(root / "data" / "raw" / "synthetic", seed=42)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticDataset, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    derived = "data.derived=[ndvi, ndsi, elevation, slope]"
    # 48 px tiles with 8 px overlap leave remainders at the right and bottom edges
    overrides = ["data=synthetic", derived, "data.slice_size=48", "data.overlap=8"]
    cfg = compose_config("preprocess", [*overrides, "~data.channel_sets"], root)
    run_preprocess(cfg)
    return synthetic(root), Path(cfg.paths.processed_dir)


def load(out: Path, relative: str) -> np.ndarray:
    return np.asarray(np.load(out / relative))


def slices_of(out: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(out / "slices" / "slices.geojson")


def burn(data: SyntheticDataset, path: Path) -> np.ndarray:
    """Independent reference: every polygon of ``path`` repaired, in the scene CRS, burned."""
    geometries = gpd.read_file(path).to_crs(data.crs).geometry.make_valid()
    shapes = [(g, 1) for g in geometries if not g.is_empty]
    return rasterize(shapes, out_shape=(data.height, data.width), transform=data.transform)


def near(mask: np.ndarray, row: float, col: float, channel: int = 0) -> set[int]:
    window = mask[int(row) - 2 : int(row) + 3, int(col) - 2 : int(col) + 3, channel]
    return set(window[window != 255].tolist())


def test_the_layout_names_every_file_preprocessing_publishes(
    run: tuple[SyntheticDataset, Path],
) -> None:
    _, out = run
    layout = DatasetLayout(out)
    names = {path.relative_to(out).as_posix() for path in layout.index_files()}
    assert names == {"splits.csv", "dataset.json", "slices/slices.geojson", "mask_metadata.csv"}
    assert all(path.is_file() for path in layout.index_files())
    scenes = pd.read_csv(layout.index)["scene"].astype(str).unique()
    contract, _ = load_contract(out)
    for scene in scenes:
        assert layout.mask(scene).is_file()
        for group in storage_groups(contract.channels):
            assert layout.image(scene, group).is_file()


def test_dataset_info_reads_and_writes_dataset_json_as_it_is(
    run: tuple[SyntheticDataset, Path],
) -> None:
    _, out = run
    contract, info = load_contract(out)
    raw = json.loads(DatasetLayout(out).info.read_text())
    rest = {key: value for key, value in raw.items() if key not in contract.to_dict()}
    assert info.to_dict() == rest  # the same keys and values (the file sorts its keys)
    assert info.storage == "scenes" and not info.in_release and info.release_root is None
    assert info.overlap == 8 and info.folds is None and info.generation == 1
    assert sum(info.counts.values()) == len(pd.read_csv(DatasetLayout(out).index))
    assert info.scene_generations == {scene: 1 for scene in raw["scene_generations"]}


def test_masks_equal_an_independent_rasterization(run: tuple[SyntheticDataset, Path]) -> None:
    data, out = run
    mask = load(out, "masks/mask_synthetic.npy")
    valid = mask[..., 0] != 255
    clean, debris = burn(data, data.clean_ice), burn(data, data.debris)
    # scene-CRS polygons: pixel-exact, including the hole, the MultiPolygon and the bow-tie
    assert (mask[..., 0][valid] != clean[valid]).sum() == 0
    # EPSG:4326 polygon: only boundary pixels may differ after the round trip
    assert (mask[..., 1][valid] != debris[valid]).sum() <= 0.01 * debris.sum()
    # the edge-crossing polygon is burned up to the last column; the outside one adds nothing
    edge_rows = np.flatnonzero(clean[:, -1])
    assert len(edge_rows) > 20
    assert set(mask[edge_rows, -1, 0].tolist()) <= {1, 255} and 1 in mask[edge_rows, -1, 0]
    assert (mask[..., 0][valid] == 1).sum() == (clean[valid] == 1).sum()


def test_bow_tie_is_repaired_burned_in_both_lobes_and_logged(
    compose_in: Compose, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = compose_in("preprocess", ["data=synthetic"])
    with caplog.at_level(logging.WARNING, logger="glacier"):
        run_preprocess(cfg)
    data = synthetic(tmp_path)
    mask = load(Path(cfg.paths.processed_dir), "masks/mask_synthetic.npy")
    w, h = data.width, data.height
    assert near(mask, 0.835 * h, 0.115 * w) == {1}  # left lobe
    assert near(mask, 0.835 * h, 0.245 * w) == {1}  # right lobe
    assert near(mask, 0.76 * h, 0.18 * w) == {0}  # above the crossing, between the lobes
    assert any(
        "clean_ice.gpkg" in r.getMessage() and "repaired 1 invalid" in r.getMessage()
        for r in caplog.records
    )


def test_bottom_and_corner_tiles_are_padded_with_nodata(run: tuple[SyntheticDataset, Path]) -> None:
    data, out = run
    slices = slices_of(out)
    bottom = slices[slices["row_off"] + slices["size"] > data.height]
    corner = bottom[bottom["col_off"] + bottom["size"] > data.width]
    assert len(bottom) >= 4 and len(corner) == 1
    for _, tile in bottom.iterrows():
        rows_inside = data.height - int(tile["row_off"])
        image, label = slice_window(out, tile)
        assert (label[rows_inside:] == 255).all() and np.isnan(image[rows_inside:]).all()
        cols_inside = min(int(tile["size"]), data.width - int(tile["col_off"]))
        assert (label[:rows_inside, :cols_inside] != 255).mean() > 0.8
    tile = corner.iloc[0]
    cols_inside = data.width - int(tile["col_off"])
    assert (slice_window(out, tile)[1][:, cols_inside:] == 255).all()


def test_nodata_is_imputed_with_zero_after_normalization(
    run: tuple[SyntheticDataset, Path],
) -> None:
    _, out = run
    slices = slices_of(out)
    first = slices[(slices["row_off"] == 0) & (slices["col_off"] == 0)].iloc[0]
    raw, label = slice_window(out, first)
    assert np.isnan(raw[4:12, 4:14]).all() and (label[4:12, 4:14] == 255).all()  # NaN patch
    contract, _ = load_contract(out)
    assert contract.stats is not None
    normalizer = Normalizer(*contract.stats.of(contract.channel_names))
    image = normalizer(torch.from_numpy(raw).permute(2, 0, 1)[None])[0]
    assert torch.isfinite(image).all()
    assert (image[:, torch.from_numpy(label[..., 0] == 255)] == 0).all()


def test_derived_channels_follow_the_raw_bands(run: tuple[SyntheticDataset, Path]) -> None:
    _, out = run
    tile = slices_of(out).iloc[5]
    image = slice_window(out, tile)[0].astype(np.float64)
    blue, green, red, nir, swir1 = (image[..., i] for i in range(5))
    valid = np.isfinite(blue)
    # indices are stored as float16: within its rounding (< 5e-4 in [-1, 1])
    ndvi, ndsi = (nir - red) / (nir + red), (green - swir1) / (green + swir1)
    np.testing.assert_allclose(image[..., 6][valid], ndvi[valid], atol=5e-4)
    np.testing.assert_allclose(image[..., 7][valid], ndsi[valid], atol=5e-4)
    assert np.isnan(image[~valid]).all()


def test_dem_on_another_grid_gives_bilinear_elevation_and_slope(
    run: tuple[SyntheticDataset, Path],
) -> None:
    data, out = run
    assert data.dem is not None
    with rasterio.open(data.dem) as dem:
        heights, to_dem = dem.read(1).astype(np.float64), ~dem.transform
    slices = slices_of(out)
    # an inner tile: its one-pixel halo lies inside the scene (at the scene border the slope
    # is computed from replicated edge elevations)
    tile = slices[(slices["row_off"] == 80) & (slices["col_off"] == 120)].iloc[0]
    size = int(tile["size"])
    row0, col0 = int(tile["row_off"]) - 1, int(tile["col_off"]) - 1
    rows, cols = np.mgrid[0 : size + 2, 0 : size + 2]
    xs, ys = data.transform @ (cols + col0 + 0.5, rows + row0 + 0.5)
    dem_cols, dem_rows = to_dem @ (xs, ys)
    expected = map_coordinates(heights, [dem_rows - 0.5, dem_cols - 0.5], order=1)
    image = slice_window(out, tile)[0]
    valid = np.isfinite(image[..., 0])
    np.testing.assert_allclose(image[..., 8][valid], expected[1:-1, 1:-1][valid], atol=0.5)
    slope = slope_degrees(expected, 30.0, 30.0)[1:-1, 1:-1]
    # slope is stored as float16: 0.03° steps below 64°
    np.testing.assert_allclose(image[..., 9][valid], slope[valid], atol=0.05)
    assert 1.0 < np.nanmean(image[..., 9]) < 45.0


def explicit(data: SyntheticDataset, scene: Path | None = None, *extra: str) -> list[str]:
    """Overrides describing the synthetic files as an ordinary scenes + labels data config."""
    labels = [(data.clean_ice, "clean_ice"), (data.debris, "debris")]
    listed = ", ".join(f"{{path: '{p}', class_name: {c}}}" for p, c in labels)
    return [
        "data=everest",
        "data.name=explicit",
        "data.classes=[clean_ice, debris]",
        f"data.scenes=[{{id: synthetic, sources: [{{path: '{scene or data.scene}', "
        f"bands: {BANDS}}}]}}]",
        f"data.labels=[{listed}]",
        "data.derived=[ndvi, ndsi]",
        "data.slice_size=64",
        "data.overlap=16",
        "~data.channel_sets",
        *extra,
    ]


def copy_scene(
    data: SyntheticDataset, path: Path, fill: float | None = None, **profile: object
) -> Path:
    with rasterio.open(data.scene) as src:
        pixels, meta = src.read(), src.profile | profile
    with rasterio.open(path, "w", **meta) as dst:
        dst.write(pixels if fill is None else np.full_like(pixels, fill))
    return path


def test_undeclared_nodata_comes_from_the_data_config(compose_in: Compose, tmp_path: Path) -> None:
    data = synthetic(tmp_path)
    bare = copy_scene(data, tmp_path / "bare.tif", nodata=None)
    masks = {}
    for name, extra in (("declared", []), ("configured", ["+data.nodata=0"]), ("none", [])):
        scene = data.scene if name == "declared" else bare
        cfg = compose_in("preprocess", explicit(data, scene, f"data.name={name}", *extra))
        run_preprocess(cfg)
        masks[name] = load(Path(cfg.paths.processed_dir), "masks/mask_synthetic.npy")
    np.testing.assert_array_equal(masks["configured"], masks["declared"])
    stripes = (masks["declared"] == 255).all(axis=-1) & ~(masks["none"] == 255).all(axis=-1)
    assert stripes.mean() > 0.02  # without a nodata value the SLC-off zeros count as data


def with_labels(labels: list[dict[str, object]], classes: list[str] | None = None) -> Edit:
    def edit(cfg: DictConfig) -> None:
        cfg.data.labels = labels
        if classes is not None:
            cfg.data.classes = classes

    return edit


def bad_case(case: str, data: SyntheticDataset, tmp_path: Path) -> tuple[list[str], Edit | None]:
    """Overrides (and a config edit for values Hydra overrides cannot spell) of one bad input."""
    glaciers = {"path": str(data.glaciers), "class_column": "Glaciers"}
    if case == "empty_labels":
        empty = tmp_path / "empty_debris.gpkg"
        gpd.read_file(data.debris).iloc[:0].to_file(empty)
        labels = [
            {"path": str(data.clean_ice), "class_name": "clean_ice"},
            {"path": str(empty), "class_name": "debris"},
        ]
        return explicit(data), with_labels(labels)
    if case == "missing_region":
        return explicit(data, None, f"+data.region={tmp_path / 'no_region.gpkg'}"), None
    if case == "missing_dem":
        missing = tmp_path / "no_dem.tif"
        return explicit(data, None, "data.derived=[elevation]", f"+data.dem={missing}"), None
    if case == "unknown_class_value":
        mapping = {"Clean Ice": "clean_ice", "Debris covered": "debirs"}
        return explicit(data), with_labels([glaciers | {"class_values": mapping}])
    if case == "class_column_typo":
        labels = [{**glaciers, "class_column": "Glacier", "class_values": {"Clean Ice": "debris"}}]
        return explicit(data), with_labels(labels)
    if case == "band_role":
        return explicit(data, None, "+data.band_roles={nir: B4}"), None
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("empty_labels", GlacierInputError, r"'debris'.*empty_debris\.gpkg"),
        ("missing_region", GlacierFileNotFoundError, r"data\.region.*no_region\.gpkg"),
        ("missing_dem", GlacierFileNotFoundError, r"data\.dem.*no_dem\.tif"),
        ("unknown_class_value", GlacierInputError, r"glaciers\.gpkg.*'debirs'"),
        ("class_column_typo", GlacierInputError, r"glaciers\.gpkg.*'Glacier'"),
        ("band_role", GlacierInputError, r"'ndvi'.*\['nir'\]"),
    ],
)
def test_more_bad_input_fails_clearly_and_keeps_earlier_outputs(
    compose_in: Compose, tmp_path: Path, case: str, error: type[Exception], message: str
) -> None:
    data = synthetic(tmp_path)
    good = compose_in("preprocess", explicit(data))
    run_preprocess(good)
    out = Path(good.paths.processed_dir)
    before = tree_checksums(out, skip=())
    overrides, edit = bad_case(case, data, tmp_path)
    cfg = compose_in("preprocess", overrides)
    if edit is not None:
        with open_dict(cfg):
            edit(cfg)
    with pytest.raises(error, match=message):
        run_preprocess(cfg)
    assert tree_checksums(out, skip=()) == before


def test_typo_in_a_preprocessor_key_is_a_hydra_error(compose_in: Compose) -> None:
    with pytest.raises(ConfigCompositionException, match="n_jbos"):
        compose_in("preprocess", ["data=synthetic", "preprocessor.n_jbos=2"])


def test_two_class_values_can_map_to_one_class(compose_in: Compose, tmp_path: Path) -> None:
    data = synthetic(tmp_path)
    cfg = compose_in("preprocess", explicit(data, None, "data.name=merged"))
    mapping = {"Clean Ice": "glacier", "Debris covered": "glacier"}
    labels = [{"path": str(data.glaciers), "class_column": "Glaciers", "class_values": mapping}]
    with open_dict(cfg):
        with_labels(labels, ["glacier"])(cfg)
    run_preprocess(cfg)
    mask = load(Path(cfg.paths.processed_dir), "masks/mask_synthetic.npy")
    expected = burn(data, data.glaciers)
    valid = mask[..., 0] != 255
    assert (mask[..., 0][valid] != expected[valid]).sum() == 0


def test_unknown_channel_in_a_channel_set_is_rejected(compose_in: Compose, tmp_path: Path) -> None:
    data = synthetic(tmp_path)
    cfg = compose_in("preprocess", explicit(data))
    with open_dict(cfg):
        cfg.data.channel_sets = {"typo": ["blue", "bleu"]}
    with pytest.raises(GlacierInputError, match=r"channel_sets.*'bleu'"):
        run_preprocess(cfg)


def test_scene_without_valid_pixels_fails_naming_it(compose_in: Compose, tmp_path: Path) -> None:
    data = synthetic(tmp_path)
    good = compose_in("preprocess", explicit(data))
    run_preprocess(good)
    out = Path(good.paths.processed_dir)
    before = tree_checksums(out, skip=())
    empty = copy_scene(data, tmp_path / "all_nan.tif", fill=float("nan"))
    with pytest.raises(GlacierInputError, match=r"all_nan\.tif"):
        run_preprocess(compose_in("preprocess", explicit(data, empty)))
    assert tree_checksums(out, skip=()) == before
