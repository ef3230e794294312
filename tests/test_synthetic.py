"""The generated synthetic dataset: files, CRSs, signatures, nodata, reuse and regeneration."""

from __future__ import annotations

import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import rasterize

from glacier.data.spec import SyntheticDataset, ensure_synthetic_dataset, generate_synthetic_dataset
from glacier.data.spec.synthetic import MANIFEST

BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def image(data: SyntheticDataset) -> np.ndarray:
    with rasterio.open(data.scene) as src:
        return src.read()


def scene_box(data: SyntheticDataset) -> shapely.Polygon:
    left, top = data.transform.c, data.transform.f
    right, bottom = data.transform @ (data.width, data.height)
    return shapely.box(left, bottom, right, top)


def pixel(data: SyntheticDataset, name: str) -> tuple[int, int]:
    col, row = ~data.transform @ data.points[name]
    return int(row), int(col)


def class_pixels(data: SyntheticDataset, path: Path, image: np.ndarray) -> np.ndarray:
    """(N, 6) valid pixels inside the (repaired) polygons of a file, eroded by one pixel."""
    frame = gpd.read_file(path).to_crs(data.crs)
    shapes = [(shapely.make_valid(g).buffer(-45.0), 1) for g in frame.geometry]
    inside = rasterize(shapes, out_shape=(data.height, data.width), transform=data.transform)
    valid = (image != 0).any(axis=0) & np.isfinite(image).all(axis=0)
    return image[:, (inside == 1) & valid].T


def test_scene_file_bands_grid_and_nodata(data: SyntheticDataset, image: np.ndarray) -> None:
    with rasterio.open(data.scene) as src:
        assert src.crs.to_string() == "EPSG:32645" == data.crs
        assert (src.width, src.height, src.count) == (320, 256, 6)
        assert src.dtypes == ("float32",) * 6
        assert src.descriptions == BANDS == data.band_names
        assert src.nodata == 0.0
        assert src.transform == data.transform
        assert src.transform.a == 30.0 and (src.transform.c, src.transform.f) == (
            478000.0,
            3108140.0,
        )
    finite = image[np.isfinite(image)]
    assert finite.min() >= 0.0 and finite.max() <= 1.0


def test_slc_off_stripes_are_diagonal_and_nan_patch_present(image: np.ndarray) -> None:
    stripes = (image == 0).all(axis=0)
    assert 0.02 < stripes.mean() < 0.1
    # no pixel is zero in only some bands: the stripes are nodata in every band
    assert ((image == 0).any(axis=0) == stripes).all()
    # diagonal: the stripe columns move from row to row, yet every row has some
    first_cols = [int(np.flatnonzero(stripes[r])[0]) for r in (0, 100, 200)]
    assert all(stripes[r].any() for r in range(image.shape[1]))
    assert len(set(first_cols)) == 3
    nan = np.isnan(image).all(axis=0)
    assert nan.sum() >= 50 and not nan[stripes].any()
    assert (np.isnan(image).any(axis=0) == nan).all()


def test_class_signatures_follow_the_polygons(data: SyntheticDataset, image: np.ndarray) -> None:
    ice = class_pixels(data, data.clean_ice, image)
    debris = class_pixels(data, data.debris, image)
    frames = [gpd.read_file(path).to_crs(data.crs) for path in (data.clean_ice, data.debris)]
    outside = rasterize(
        [(shapely.make_valid(g).buffer(60.0), 1) for f in frames for g in f.geometry],
        out_shape=(data.height, data.width),
        transform=data.transform,
    )
    valid = (image != 0).any(axis=0) & np.isfinite(image).all(axis=0)
    rock = image[:, (outside == 0) & valid].T

    def ndsi(pixels: np.ndarray) -> np.ndarray:
        return (pixels[:, 1] - pixels[:, 4]) / (pixels[:, 1] + pixels[:, 4])

    assert ndsi(ice).min() > 0.6
    assert ndsi(debris).max() < 0.0 and ndsi(rock).max() < 0.0
    assert ice[:, :3].mean() > 3 * debris[:, :3].mean()
    assert debris[:, :3].mean() > 1.2 * rock[:, :3].mean()
    assert debris[:, 4].mean() > rock[:, 4].mean() > ice[:, 4].mean()
    # smooth texture, not constant: a small model has something to learn but no trivial rule
    assert ice[:, 0].std() > 0.02 and rock[:, 3].std() > 0.005


def test_clean_ice_outlines_cover_every_geometry_case(data: SyntheticDataset) -> None:
    frame = gpd.read_file(data.clean_ice)
    assert frame.crs == data.crs
    assert frame["year"].dtype.kind == "i"
    assert all(len(d) == 10 and d[4] == d[7] == "-" for d in frame["date"])
    assert {1990, 2000} <= set(frame["year"])
    box = scene_box(data)
    hole = shapely.Point(data.points["hole"])
    holed = [g for g in frame.geometry if g.geom_type == "Polygon" and len(g.interiors)]
    assert len(holed) == 1 and not holed[0].contains(hole)
    assert shapely.Polygon(holed[0].interiors[0]).contains(hole)
    assert holed[0].contains(shapely.Point(data.points["ring"]))
    assert (frame.geom_type == "MultiPolygon").sum() == 1
    assert sum(g.intersects(box) and not box.contains(g) for g in frame.geometry) == 1
    assert sum(not g.intersects(box) for g in frame.geometry) == 1
    assert (~frame.is_valid).sum() == 1
    bowtie = frame.geometry[~frame.is_valid].iloc[0]
    assert shapely.make_valid(bowtie).area > 0.2 * bowtie.envelope.area


def test_debris_glaciers_region_and_dem_files(data: SyntheticDataset) -> None:
    debris = gpd.read_file(data.debris)
    assert debris.crs == "EPSG:4326"
    assert debris.to_crs(data.crs).geometry.iloc[0].contains(shapely.Point(data.points["debris"]))

    glaciers = gpd.read_file(data.glaciers)
    assert glaciers.crs == data.crs
    assert set(glaciers["Glaciers"]) == {"Clean Ice", "Debris covered"}
    covered = glaciers[glaciers["Glaciers"] == "Debris covered"].geometry.iloc[0]
    assert covered.contains(shapely.Point(data.points["debris"]))

    region = gpd.read_file(data.region).to_crs(data.crs).geometry.union_all()
    box = scene_box(data)
    assert 0.8 < region.intersection(box).area / box.area < 0.95
    assert not region.contains(shapely.Point(data.points["outside_region"]))
    assert region.contains(shapely.Point(data.points["ring"]))

    assert data.dem is not None
    with rasterio.open(data.dem) as dem:
        assert dem.crs == data.crs and dem.res == (60.0, 60.0)
        assert (dem.transform.c - data.transform.c) % 60 != 0  # not aligned with the scene
        left, bottom, right, top = dem.bounds
        assert shapely.box(left, bottom, right, top).contains(box)
        elevation = dem.read(1)
    assert 3000 < elevation.min() < elevation.max() < 6000
    assert np.abs(np.diff(elevation, axis=1)).max() < 60  # smooth terrain


def test_points_fall_where_they_claim(data: SyntheticDataset, image: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        ndsi = (image[1] - image[4]) / (image[1] + image[4])

    def near(name: str) -> np.ndarray:
        row, col = pixel(data, name)
        window = ndsi[row - 2 : row + 3, col - 2 : col + 3]
        return window[np.isfinite(window) & (image[1, row - 2 : row + 3, col - 2 : col + 3] > 0)]

    assert (near("ring") > 0.6).all() and (near("debris") < 0).all()
    assert (near("hole") < 0).all() and (near("background") < 0).all()


def test_same_seed_gives_same_scene(tmp_path: Path, image: np.ndarray) -> None:
    started = time.perf_counter()
    again = generate_synthetic_dataset(tmp_path / "again")
    assert time.perf_counter() - started < 5.0
    with rasterio.open(again.scene) as src:
        np.testing.assert_array_equal(src.read(), image)
    other = generate_synthetic_dataset(tmp_path / "other", seed=1)
    with rasterio.open(other.scene) as src:
        assert not np.array_equal(src.read(), image, equal_nan=True)


def all_mtimes(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_ensure_reuses_existing_files(tmp_path: Path) -> None:
    first = ensure_synthetic_dataset(tmp_path, width=96, height=80)
    before = all_mtimes(tmp_path)
    assert json.loads((tmp_path / MANIFEST).read_text())["parameters"]["width"] == 96
    time.sleep(0.01)
    second = ensure_synthetic_dataset(tmp_path, width=96, height=80)
    assert all_mtimes(tmp_path) == before
    assert second == first
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name or p.suffix == ".tmp"]


@pytest.mark.parametrize(("width", "height", "seed"), [(112, 80, 0), (96, 80, 3)])
def test_ensure_regenerates_on_parameter_change(
    tmp_path: Path, width: int, height: int, seed: int
) -> None:
    ensure_synthetic_dataset(tmp_path, width=96, height=80)
    with rasterio.open(tmp_path / "scene.tif") as src:
        old = src.read()
    changed = ensure_synthetic_dataset(tmp_path, width=width, height=height, seed=seed)
    with rasterio.open(changed.scene) as src:
        assert (src.width, src.height) == (width, height)
        assert not np.array_equal(src.read(), old, equal_nan=True)
    stored = json.loads((tmp_path / MANIFEST).read_text())["parameters"]
    assert (stored["width"], stored["height"], stored["seed"]) == (width, height, seed)


def test_interrupted_or_damaged_generation_is_redone(tmp_path: Path) -> None:
    ensure_synthetic_dataset(tmp_path, width=96, height=80)
    (tmp_path / "debris.gpkg").unlink()  # a file lost: regenerate everything
    ensure_synthetic_dataset(tmp_path, width=96, height=80)
    assert (tmp_path / "debris.gpkg").is_file()
    (tmp_path / MANIFEST).write_text('{"parameters": {"wid')  # a torn manifest
    before = (tmp_path / "scene.tif").stat().st_mtime_ns
    time.sleep(0.01)
    again = ensure_synthetic_dataset(tmp_path, width=96, height=80)
    assert (tmp_path / "scene.tif").stat().st_mtime_ns != before
    assert json.loads((tmp_path / MANIFEST).read_text())["parameters"]["width"] == 96
    assert again.width == 96


def test_manifest_of_other_parameters_is_dropped_before_rewriting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_synthetic_dataset(tmp_path, width=96, height=80)

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("glacier.data.spec.synthetic._write_vector", crash)
    with pytest.raises(KeyboardInterrupt):  # scene.tif rewritten, outlines not
        ensure_synthetic_dataset(tmp_path, width=96, height=80, seed=5)
    assert not (tmp_path / MANIFEST).exists()
    monkeypatch.undo()
    redone = ensure_synthetic_dataset(tmp_path, width=96, height=80)
    with (
        rasterio.open(redone.scene) as src,
        rasterio.open(
            generate_synthetic_dataset(tmp_path / "fresh", width=96, height=80).scene
        ) as fresh,
    ):
        np.testing.assert_array_equal(src.read(), fresh.read())
