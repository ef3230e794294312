"""Full-scene prediction: blending, grid, nodata, MC dropout, memory bound, vectorizing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window
from scene_files import write_scene
from torch import nn

from glacier.data.raster import SceneReader, finite_everywhere
from glacier.data.spec import BandSource, SceneSpec
from glacier.inference.engine import PredictionOutputs
from glacier.inference.engine.blending import BlendStrip
from glacier.inference.engine.encode import winning_class
from glacier.inference.engine.mapper import predict_scene
from glacier.inference.engine.tiling import blend_weights, tile_starts
from glacier.inference.engine.writer import BLOCK
from glacier.inference.products.vectorize import (
    class_areas_km2,
    vectorize_class_map,
    write_polygons,
)
from glacier.models import Normalizer
from glacier.models.uncertainty import pick

BANDS = ("red", "green", "blue", "nir")
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]


def open_reader(path: Path) -> SceneReader:
    return SceneReader(SceneSpec(id="t", sources=(BandSource(path=path, bands=BANDS),)))


def pointwise_model(dropout: float = 0.0) -> nn.Module:
    """A 1×1-conv model: its output at a pixel does not depend on the tile around it."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [Normalizer([0.3] * 4, [0.2] * 4), nn.Conv2d(4, 8, 1), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout2d(dropout))
    layers.append(nn.Conv2d(8, 3, 1))
    return nn.Sequential(*layers)


def run(path: Path, out: Path, model: nn.Module, **kwargs: object) -> PredictionOutputs:
    with open_reader(path) as reader:
        return predict_scene(
            model,
            reader,
            channel_indices=[0, 1, 2, 3],
            class_names=["clean_ice", "debris"],
            out_prefix=out,
            **kwargs,  # type: ignore[arg-type]
        )


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_tiles_cover_the_scene_and_weights_are_positive() -> None:
    assert tile_starts(100, 64, 16) == [0, 36]
    assert tile_starts(50, 64, 16) == [0]
    starts = tile_starts(1000, 128, 32)
    assert starts[-1] + 128 == 1000 and (np.diff(starts) <= 96).all()
    weights = blend_weights(64, 16)
    assert weights.min() > 0 and weights.max() == 1.0 and weights[32, 32] == 1.0


@pytest.mark.parametrize(("tile", "overlap"), [(32, 0), (48, 16), (64, 40), (256, 8)])
def test_blending_is_seamless_for_any_tile_layout(tmp_path: Path, tile: int, overlap: int) -> None:
    scene = write_scene(tmp_path / "scene.tif", 150, 110)
    model = pointwise_model()
    reference = run(
        scene,
        tmp_path / "ref",
        model,
        tile_size=200,
        overlap=0,
        channels_last=False,
        probabilities="float32",
    )
    result = run(
        scene,
        tmp_path / f"t{tile}",
        model,
        tile_size=tile,
        overlap=overlap,
        probabilities="float32",
    )
    np.testing.assert_allclose(read(result.probs), read(reference.probs), atol=1e-5)
    np.testing.assert_array_equal(read(result.classes), read(reference.classes))


def test_percent_probabilities_round_the_float_ones(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", 300, 280)
    with rasterio.open(scene, "r+") as dst:
        data = dst.read()
        data[:, 5:9, 250:] = np.nan
        dst.write(data)
    model = pointwise_model()
    exact = run(scene, tmp_path / "f", model, tile_size=64, overlap=16, probabilities="float32")
    percent = run(scene, tmp_path / "p", model, tile_size=64, overlap=16)
    floats, coded = read(exact.probs), read(percent.probs)
    with rasterio.open(percent.probs) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255 and src.units[0] == "%"
    with rasterio.open(exact.probs) as src:
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
    missing = np.isnan(floats)
    assert missing[:, 5:9, 250:].all() and missing.sum() == 3 * 4 * 50
    np.testing.assert_array_equal(coded == 255, missing)
    assert np.abs(coded[~missing] - floats[~missing] * 100).max() <= 0.5 + 1e-3
    np.testing.assert_array_equal(read(percent.classes), read(exact.classes))
    with pytest.raises(ValueError, match="probabilities must be one of"):
        run(scene, tmp_path / "x", model, probabilities="float16")
    assert not (tmp_path / "x_classes.tif").exists()


def test_outputs_share_the_input_grid_and_keep_nodata(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", 90, 70)
    with rasterio.open(scene, "r+") as dst:
        data = dst.read()
        data[:, 10:20, 30:40] = np.nan
        dst.write(data)
    outputs = run(
        scene,
        tmp_path / "out" / "s",
        pointwise_model(0.3),
        tile_size=32,
        overlap=8,
        mc_samples=3,
        probabilities="float32",
    )
    with rasterio.open(scene) as src:
        crs, transform, shape = src.crs, src.transform, (src.height, src.width)
    for path in (outputs.classes, outputs.probs, outputs.uncertainty):
        assert path is not None
        with rasterio.open(path) as out:
            assert out.crs == crs and out.transform == transform
            assert (out.height, out.width) == shape
    classes = read(outputs.classes)[0]
    probs = read(outputs.probs)
    assert (classes[10:20, 30:40] == 255).all() and (classes[:10] != 255).all()
    assert np.isnan(probs[:, 10:20, 30:40]).all() and np.isfinite(probs[:, :10]).all()
    np.testing.assert_allclose(probs[:, :10].sum(axis=0), 1.0, atol=1e-5)
    with rasterio.open(outputs.probs) as src:
        assert src.descriptions == ("background", "clean_ice", "debris")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("classes", [2, 3, 5])
def test_winning_class_and_pick_match_argmax_and_take(classes: int, device: str) -> None:
    rng = np.random.default_rng(classes)
    sums = rng.random((classes, 20, 30), dtype=np.float32)
    sums[:, :4] = 0.5  # ties go to the lowest index, as with argmax
    sums[-1, 4:6] = 2.0
    winner = winning_class(torch.from_numpy(sums).to(device))
    assert winner.dtype == torch.uint8 and winner.device.type == device
    np.testing.assert_array_equal(winner.cpu().numpy(), sums.argmax(axis=0))
    assert (winner[:4] == 0).all() and (winner[4:6] == classes - 1).all()
    values = rng.random((classes, 20, 30), dtype=np.float32)
    expected = np.take_along_axis(values, winner.cpu().numpy()[None].astype(np.intp), axis=0)[0]
    picked = pick(torch.from_numpy(values).to(device), winner)
    np.testing.assert_array_equal(picked.cpu().numpy(), expected)


def test_finite_mask_matches_the_exact_check() -> None:
    stack = np.random.default_rng(0).normal(size=(4, 30, 40)).astype(np.float32)
    np.testing.assert_array_equal(finite_everywhere(stack), np.ones((30, 40), bool))
    stack[1, 2, 3] = np.nan
    stack[0, 5, 6] = np.inf
    stack[2, 7, 8], stack[3, 7, 8] = np.inf, -np.inf  # sums to NaN
    stack[:, 9, 9] = 3e38  # finite values whose sum overflows: still valid
    expected = np.isfinite(stack).all(axis=0)
    assert expected.sum() == 30 * 40 - 3 and expected[9, 9]
    np.testing.assert_array_equal(finite_everywhere(stack), expected)


def test_infinite_pixels_are_nodata_in_every_channel(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", 40, 30)
    with rasterio.open(scene, "r+") as dst:
        data = dst.read()
        data[2, 4, 5] = np.inf
        dst.write(data)
    with open_reader(scene) as reader:
        band, valid = reader.read_with_mask(Window(0, 0, 40, 30))
    assert np.isnan(band[:, 4, 5]).all() and not valid[4, 5]
    assert valid.sum() == 40 * 30 - 1 and np.isfinite(band[:, valid]).all()
    outputs = run(scene, tmp_path / "s", pointwise_model(0.3), tile_size=16, overlap=4)
    assert read(outputs.classes)[0, 4, 5] == 255 and (read(outputs.probs)[:, 4, 5] == 255).all()


def test_mc_dropout_spread_is_nonzero_and_seeded(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", 64, 48)
    model = pointwise_model(0.5)
    spread = {"uncertainty": ("spread",), "tile_size": 32, "overlap": 8, "mc_samples": 4}
    first = run(scene, tmp_path / "a", model, seed=1, **spread)
    again = run(scene, tmp_path / "b", model, seed=1, **spread)
    other = run(scene, tmp_path / "c", model, seed=2, **spread)
    assert first.uncertainty and again.uncertainty and other.uncertainty
    spread = read(first.uncertainty)
    assert spread.mean() > 1e-4
    np.testing.assert_array_equal(spread, read(again.uncertainty))
    assert not np.array_equal(spread, read(other.uncertainty))
    assert model.training is False or all(not m.training for m in model.modules())


def test_memory_is_bounded_by_a_strip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = write_scene(tmp_path / "scene.tif", 40, 1400, bands=4)
    held: list[int] = []
    original = BlendStrip.add

    def spy(self: BlendStrip, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        held.append(self.rows_held)

    monkeypatch.setattr(BlendStrip, "add", spy)
    outputs = run(scene, tmp_path / "tall", pointwise_model(), tile_size=64, overlap=16)
    assert 64 <= max(held) <= 2 * BLOCK < 1400  # the blocks a tile row spans, not the scene
    classes = read(outputs.classes)
    assert classes.shape == (1, 1400, 40) and (classes != 255).all()  # every row was written


def write_class_map(path: Path, classes: np.ndarray) -> Path:
    profile = {
        "driver": "GTiff",
        "width": classes.shape[1],
        "height": classes.shape[0],
        "count": 1,
        "dtype": "uint8",
        "nodata": 255,
        "crs": "EPSG:32645",
        "transform": from_origin(478000, 3108140, 30, 30),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes, 1)
    return path


def test_polygons_keep_holes_and_match_raster_areas(tmp_path: Path) -> None:
    rows, cols = np.mgrid[0:120, 0:160]
    distance = np.hypot(rows - 60, cols - 60)
    classes = np.zeros((120, 160), dtype=np.uint8)
    classes[(distance < 40) & (distance >= 15)] = 1  # a ring: glacier with a nunatak
    classes[10:30, 120:150] = 2
    classes[100:, 140:] = 255
    path = write_class_map(tmp_path / "classes.tif", classes)
    polygons = vectorize_class_map(path, ["clean_ice", "debris"])
    areas = class_areas_km2(path, ["clean_ice", "debris"])
    by_class = polygons.groupby("class")["area_km2"].sum()
    for name in ("clean_ice", "debris"):
        assert by_class[name] == pytest.approx(areas[name], rel=0.01)
    assert areas["clean_ice"] == pytest.approx(((distance < 40) & (distance >= 15)).sum() * 9e-4)
    ring = polygons[polygons["class"] == "clean_ice"].geometry.iloc[0]
    assert len(ring.interiors) == 1
    assert polygons.crs == "EPSG:32645"
    small = vectorize_class_map(path, ["clean_ice", "debris"], min_area_km2=1.0)
    assert set(small["class"]) == {"clean_ice"}  # the 0.54 km² debris box is dropped
    gpkg = write_polygons(polygons, tmp_path / "out.gpkg")
    import geopandas as gpd

    assert len(gpd.read_file(gpkg)) == len(polygons)
