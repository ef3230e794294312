"""GPU speed options, proven on the CPU: batch size from free memory, ``compile: true``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from scene_files import write_scene
from torch import Tensor, nn

from glacier.data.raster import SceneReader
from glacier.data.spec import BandSource, SceneSpec
from glacier.inference.engine import PredictSettings, SceneJob, batch_for_memory, predict_scenes
from glacier.inference.engine.compiled import CompiledNetwork
from glacier.models import Normalizer

BANDS = ("blue", "green", "red", "nir")
GiB = 2**30


def small_unet_like() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        Normalizer([0.3] * 4, [0.2] * 4),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3, 1),
    ).eval()


def test_the_batch_is_what_fits_in_half_the_free_memory() -> None:
    assert batch_for_memory(free_bytes=8 * GiB, tile_bytes=256 * 2**20) == 16
    assert batch_for_memory(8 * GiB, 256 * 2**20, share=0.25) == 8
    assert batch_for_memory(140 * GiB, 100 * 2**20) == 64  # capped: no faster beyond
    assert batch_for_memory(140 * GiB, 100 * 2**20, most=128) == 128
    assert batch_for_memory(GiB // 4, GiB) == 1  # never below one tile
    assert batch_for_memory(GiB, 0) == 64


def test_a_network_that_cannot_compile_warns_once_and_runs_uncompiled() -> None:
    model = small_unet_like()
    calls = []

    def broken_compile(network: nn.Module) -> object:
        def compiled(batch: Tensor) -> Tensor:
            calls.append(batch.shape[0])
            raise RuntimeError("no C++ compiler here\nmore detail")

        return compiled

    network = CompiledNetwork(model, broken_compile)
    batch = torch.rand(2, 4, 32, 32)
    with pytest.warns(RuntimeWarning, match=r"cannot compile.*RuntimeError: no C\+\+ compiler"):
        first = network(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        second = network(batch)
    assert calls == [2]  # the compiled network is not tried again
    with torch.no_grad():
        torch.testing.assert_close(first, model(batch), rtol=0, atol=0)
        torch.testing.assert_close(second, model(batch), rtol=0, atol=0)


def test_a_compile_that_fails_up_front_also_falls_back() -> None:
    def refused(network: nn.Module) -> object:
        raise RuntimeError("torch.compile is not supported on this Python")

    with pytest.warns(RuntimeWarning, match="not supported on this Python"):
        network = CompiledNetwork(small_unet_like(), refused)
    assert network.compiled is None and network(torch.rand(1, 4, 8, 8)).shape == (1, 3, 8, 8)


def test_compile_with_mc_passes_warns_that_they_run_uncompiled() -> None:
    from glacier.inference.engine.tile_predictor import TilePredictor

    with pytest.warns(RuntimeWarning, match="MC-dropout passes run uncompiled"):
        predictor = TilePredictor(small_unet_like(), PredictSettings(mc_samples=2, compile=True))
    assert predictor.networks == predictor.models


def predict_map(path: Path, out: Path, compile_network: bool) -> tuple[np.ndarray, np.ndarray]:
    scene = SceneSpec(id="s", sources=(BandSource(path=path, bands=BANDS),))
    job = SceneJob("s", lambda: SceneReader(scene), list(BANDS), ["a", "b"], out / "s")
    settings = PredictSettings(tile_size=64, overlap=16, cog=False, compile=compile_network)
    outputs = predict_scenes(small_unet_like(), [job], settings)[0]
    with rasterio.open(outputs.classes) as classes, rasterio.open(outputs.probs) as probs:
        return classes.read(), probs.read()


@pytest.mark.slow
def test_a_cpu_run_with_compile_works_or_warns_once_and_gives_the_same_map(
    tmp_path: Path,
) -> None:
    path = write_scene(tmp_path / "scene.tif", 150, 120, bands=4)
    plain_classes, plain_probs = predict_map(path, tmp_path / "plain", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classes, probs = predict_map(path, tmp_path / "compiled", True)
    fallbacks = [w for w in caught if "cannot compile" in str(w.message)]
    assert len(fallbacks) <= 1
    np.testing.assert_array_equal(classes, plain_classes)
    # compiled kernels may round the last bit differently: percent probabilities within 1
    assert np.abs(probs.astype(int) - plain_probs.astype(int)).max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_batch_on_cuda_fits_a_measured_tile_in_the_free_memory() -> None:
    from glacier.inference.engine import memory_batch_size
    from glacier.inference.engine.device import tile_memory

    device = torch.device("cuda")
    model = small_unet_like()
    per_tile = tile_memory(model, 4, 256, device, None)
    assert per_tile > 4 * 256 * 256 * 4  # at least its input and logits
    free, _ = torch.cuda.mem_get_info(device)
    batch = memory_batch_size(model, 4, 256, device, None)  # measures again: allow a step
    assert 1 <= batch <= 64 and abs(batch - batch_for_memory(free, per_tile)) <= 1
    assert next(model.parameters()).device.type == "cuda"
