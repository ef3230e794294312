"""What the predictor overlaps: normalizing tiles into the batch, products beside the COGs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import rasterio
import torch
from scene_files import write_scene
from torch import Tensor, nn

import glacier.inference.engine.writer as writer_module
from glacier.data.raster import SceneReader
from glacier.data.spec import BandSource, SceneSpec
from glacier.inference.engine import PredictionOutputs, PredictSettings, SceneJob, predict_scenes
from glacier.inference.engine.tile_predictor import TilePredictor, shared_normalizer
from glacier.inference.products import (
    ProductSettings,
    make_products,
    products_from_maps,
)
from glacier.models import Normalizer, split_normalizer

BANDS = ("blue", "green", "red", "nir")
CLASSES = ["clean_ice", "debris"]
WAIT_S = 60.0  # a deadlock guard only


class Opaque(nn.Module):
    """The same network, hidden: the predictor cannot split its normalizer off."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, image: Tensor) -> Tensor:
        result: Tensor = self.inner(image)
        return result


def dropout_model(mean: float = 0.3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        Normalizer([mean] * 4, [0.2] * 4),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.Dropout2d(0.3),
        nn.Conv2d(8, 3, 1),
    )


def raw_tiles() -> list[Tensor]:
    generator = torch.Generator().manual_seed(1)
    row = torch.rand(4, 64, 160, generator=generator)
    row[:, 5:9, 20:30] = float("nan")  # nodata inside a tile
    return [row[:, :, c : c + 64] for c in (0, 48, 96)]


@pytest.mark.parametrize(
    "passes", [{}, {"mc_samples": 3}, {"tta": 8}, {"mc_samples": 2, "tta": 2}], ids=str
)
def test_tiles_normalized_into_the_batch_give_the_models_own_statistics(
    passes: dict[str, int],
) -> None:
    settings = PredictSettings(tile_size=64, overlap=16, device="cpu", **passes)  # type: ignore[arg-type]
    fused = TilePredictor(dropout_model(), settings)
    plain = TilePredictor(Opaque(dropout_model()), settings)
    assert fused.normalizer is not None and plain.normalizer is None
    tiles, seeds = raw_tiles(), [11, 12, 13]
    ours, theirs = fused(tiles, seeds), plain(tiles, seeds)
    assert torch.equal(ours.probs, theirs.probs)  # bit for bit, MC masks and views included


def test_members_with_other_statistics_normalize_themselves() -> None:
    same = shared_normalizer([dropout_model(), dropout_model()])
    other = shared_normalizer([dropout_model(), dropout_model(mean=0.4)])
    assert same[0] is not None and len(same[1]) == 2
    assert other[0] is None and isinstance(other[1][0], nn.Sequential)


def test_a_segmenter_splits_into_its_normalizer_and_classify(tmp_path: Path) -> None:
    class Segmenter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.normalizer = Normalizer([0.3] * 4, [0.2] * 4)
            self.net = nn.Conv2d(4, 2, 1)

        def classify(self, image: Tensor) -> Tensor:
            result: Tensor = self.net(image)
            return result

        def forward(self, image: Tensor) -> Tensor:
            return self.classify(self.normalizer(image))

    model = Segmenter()
    split = split_normalizer(model)
    assert split is not None and split[0] is model.normalizer
    image = torch.rand(2, 4, 8, 8)
    assert torch.equal(split[1](split[0](image)), model(image))
    assert any(m is model.net for m in split[1].modules())  # dropout hooks find its layers
    assert split_normalizer(nn.Conv2d(4, 2, 1)) is None


def scene_job(path: Path, out: Path) -> SceneJob:
    scene = SceneSpec(id="s", sources=(BandSource(path=path, bands=BANDS),))
    return SceneJob("s", lambda: SceneReader(scene), list(BANDS), CLASSES, out / "s")


def products() -> ProductSettings:
    return ProductSettings(CLASSES, 0.0, 0.0, None, {})


def test_products_read_the_streamed_maps_while_the_cogs_are_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``on_maps`` starts before the first COG is finished and reads the streamed files.

    The COG conversion waits (up to a guard) until ``on_maps`` has started, which only
    happens if both run at the same time; the products made from the streamed files are
    those made afterwards from the published COGs.
    """
    path = write_scene(tmp_path / "scene.tif", 300, 280, bands=4)
    started, seen = threading.Event(), {}
    to_cog = writer_module.to_cog

    def slow_cog(*args: Any, **kwargs: Any) -> Path:
        seen["overlapped"] = started.wait(WAIT_S)
        result: Path = to_cog(*args, **kwargs)
        return result

    monkeypatch.setattr(writer_module, "to_cog", slow_cog)
    early: dict[str, Any] = {}

    def on_maps(job: SceneJob, reader: SceneReader, final: Any, maps: PredictionOutputs) -> None:
        started.set()
        seen["streamed"] = [Path(maps.classes).exists(), Path(final.classes).exists()]
        early[job.key] = products_from_maps(job.key, reader, final, products(), maps)

    def made_files(record: Any) -> list[Any]:
        frame = gpd.read_file(record.polygons)
        return [record, frame.to_json(), Path(record.overlay).read_bytes()]

    def on_done(job: SceneJob, reader: SceneReader, outputs: PredictionOutputs) -> None:
        made = make_products(job.key, reader, outputs, products(), early.pop(job.key))
        seen["early"] = made_files(made)
        seen["late"] = made_files(make_products(job.key, reader, outputs, products()))

    settings = PredictSettings(tile_size=128, overlap=32)
    out = tmp_path / "out"
    predict_scenes(dropout_model(), [scene_job(path, out)], settings, on_done, on_maps=on_maps)
    assert seen["overlapped"] and seen["streamed"] == [True, False]
    assert seen["early"] == seen["late"]  # the record, the polygons, the overlay's bytes
    assert len(gpd.read_file(seen["early"][0].polygons)) > 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    with rasterio.open(seen["early"][0].classes) as src:
        assert src.overviews(1) or min(src.shape) <= 256  # published as a COG


def test_a_failure_while_reading_the_maps_publishes_nothing(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "scene.tif", 200, 150, bands=4)

    def on_maps(*args: Any) -> None:
        raise RuntimeError("polygons failed")

    out = tmp_path / "out"
    settings = PredictSettings(tile_size=128, overlap=32)
    with pytest.raises(RuntimeError, match="polygons failed"):
        predict_scenes(dropout_model(), [scene_job(path, out)], settings, on_maps=on_maps)
    assert not out.exists() or list(out.iterdir()) == []
