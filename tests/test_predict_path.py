"""The predict path around the model: one read per scene, scenes overlapping in one call."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scene_files import write_scene
from torch import nn

from glacier.data.raster import RgbSample, SceneReader
from glacier.data.spec import BandSource, SceneSpec
from glacier.inference.engine import PredictionOutputs, PredictSettings, SceneJob, predict_scenes
from glacier.inference.products.preview import read_rgb_sample, scene_preview
from glacier.models import Normalizer

BANDS = ("blue", "green", "red", "nir")
WAIT_S = 60.0  # a deadlock guard only: the events below come in milliseconds


def pointwise_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Normalizer([0.3] * 4, [0.2] * 4), nn.Conv2d(4, 2, 1))


def spec(path: Path, key: str = "s") -> SceneSpec:
    return SceneSpec(id=key, sources=(BandSource(path=path, bands=BANDS),))


class CountingReader(SceneReader):
    """A scene reader that counts its reads and reports the first one."""

    def __init__(self, scene: SceneSpec, first_read: threading.Event | None = None) -> None:
        super().__init__(scene)
        self.reads = 0
        self.first_read = first_read

    def read_raw(self, *args: object, **kwargs: object) -> np.ndarray:
        self.reads += 1
        if self.first_read is not None:
            self.first_read.set()
        return super().read_raw(*args, **kwargs)  # type: ignore[arg-type]


def test_the_overlay_samples_are_taken_while_the_scene_is_read(tmp_path: Path) -> None:
    # 2100 px wide: every 2nd pixel is sampled; tiles of 256 with 64 shared rows
    path = write_scene(tmp_path / "scene.tif", 2100, 300, bands=4)
    readers: list[CountingReader] = []

    def open_reader() -> CountingReader:
        readers.append(CountingReader(spec(path)))
        return readers[-1]

    job = SceneJob("s", open_reader, list(BANDS), ["glacier"], tmp_path / "out" / "s")
    settings = PredictSettings(tile_size=256, overlap=64, cog=False)
    outputs = predict_scenes(pointwise_model(), [job], settings)[0]
    rows_of_tiles = readers[0].reads
    assert rows_of_tiles == 2  # one read per row of tiles, none for the preview
    assert outputs.preview is not None and outputs.preview.step == 2
    with SceneReader(spec(path)) as reader:
        read_again = read_rgb_sample(reader)
        np.testing.assert_array_equal(outputs.preview.rgb, read_again.rgb)
        assert not np.isnan(read_again.rgb).any()
        assert outputs.preview.bands == [2, 1, 0]  # red, green, blue by name
        image, transform = scene_preview(reader, outputs.preview)
        assert image.shape == (150, 1050, 3) and image.dtype == np.uint8
        assert transform.a == 2 * reader.transform.a


def test_samples_of_overlapping_reads_in_any_order_are_the_scene_s() -> None:
    rng = np.random.default_rng(0)
    scene = rng.random((4, 23, 17)).astype(np.float32)
    sample = RgbSample([0, 1, 2], 3, 17, 23, np.full((3, 8, 6), np.nan, np.float32))
    reads = [(10, 5, 13, 20), (0, 0, 12, 9), (4, 0, 9, 17), (9, 0, 4, 5), (12, 0, 11, 6)]
    reads.append((0, 8, 4, 9))  # (top, left, height, width): together they cover the scene
    for top, left, height, width in reads:
        window = np.full((4, height, width), np.nan, np.float32)  # padding past the edge: NaN
        inside = scene[:, top : top + height, left : left + width]
        window[:, : inside.shape[1], : inside.shape[2]] = inside
        sample.add(top, left, window)
    np.testing.assert_array_equal(sample.rgb, scene[:3, ::3, ::3])


def test_the_next_scene_is_read_while_the_current_one_is_finished(tmp_path: Path) -> None:
    """Scene 1's products wait until scene 2 has been read: a pipeline that read a scene only
    after the previous one was written would never get there (the wait would time out)."""
    paths = [write_scene(tmp_path / f"s{i}.tif", 300, 260, bands=4, seed=i) for i in range(3)]
    first_reads = [threading.Event() for _ in paths]
    order: list[str] = []

    def opener(index: int) -> CountingReader:
        return CountingReader(spec(paths[index], f"s{index}"), first_reads[index])

    def on_done(job: SceneJob, reader: SceneReader, outputs: PredictionOutputs) -> None:
        index = int(job.key[1:])
        if index + 1 < len(paths):
            order.append(f"{job.key} waits" if first_reads[index + 1].wait(WAIT_S) else "stuck")
        order.append(f"{job.key} done")

    jobs = [
        SceneJob(f"s{i}", partial(opener, i), list(BANDS), ["glacier"], tmp_path / "out" / f"s{i}")
        for i in range(len(paths))
    ]
    settings = PredictSettings(tile_size=128, overlap=32, batch_size=2, cog=True)
    outputs = predict_scenes(pointwise_model(), jobs, settings, on_done=on_done)
    assert order == ["s0 waits", "s0 done", "s1 waits", "s1 done", "s2 done"]
    assert [o.classes.name for o in outputs] == [f"s{i}_classes.tif" for i in range(3)]
