"""The cost around the model: the whole predict path with a 1×1 model against its I/O floor.

``predict_path`` runs what ``glacier predict`` runs for each scene (the pipelined predictor, COGs
with overviews, polygons in a GeoPackage, the overlay PNG and the STAC item) with a 1×1
convolution of the scene's channel count in place of the U-Net, so the model costs next to
nothing and everything around it is what is timed. ``path_limit`` is the floor of the same
scene: reading it once, then writing the same outputs (same files, same code) from maps held
in memory. Both run in fresh processes (:func:`benchmarks.rows.workload`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.predict_workloads import predict_settings
from benchmarks.workloads import peak_rss_mb

CLASSES = ["glacier"]


def pointwise_model(bands: int) -> Any:
    """A 1×1 convolution behind the normalizer: glacier where the band mean exceeds 0.5.

    On :func:`scene_files.write_scene` scenes (background 0.05-0.3, a disc brighter by > 0.5)
    it maps the disc, so the polygons are those of a real map, not of noise.
    """
    import torch
    from torch import nn

    from glacier.models import Normalizer

    conv = nn.Conv2d(bands, 1 + len(CLASSES), 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[1] = 8.0 / bands
        conv.bias[1] = -4.0
    return nn.Sequential(Normalizer([0.0] * bands, [1.0] * bands), conv).eval()


def _scene(path: Path, bands: int, key: str) -> Any:
    from glacier.data.spec import BandSource, SceneSpec

    names = tuple(f"b{i}" for i in range(bands))
    return SceneSpec(id=key, sources=(BandSource(path=path, bands=names),))


def _reader(path: Path, bands: int, key: str) -> Any:
    from glacier.data.raster import SceneReader

    return SceneReader(_scene(path, bands, key))


def _products() -> Any:
    from glacier.inference.products import ProductSettings

    return ProductSettings(CLASSES, min_area_km2=0.01, simplify_m=0.0, reference=None, **_stac())


def _stac() -> dict[str, Any]:
    return {"stac_properties": {"glacier:checkpoint": "pointwise.ckpt"}}


def _run_path(args: dict[str, Any], out: Path, keys: list[str], maps_only: bool = False) -> Any:
    """``predict_scenes`` over ``keys`` (each the bench scene), products made as scenes finish.

    With ``maps_only``: the streamed maps alone (no COGs, no products).
    """
    from glacier.inference.engine import SceneJob, predict_scenes
    from glacier.inference.products import make_products, products_from_maps

    bands = args["bands"]
    path = Path(args["dir"]) / "scene.tif"
    channels = [f"b{i}" for i in range(bands)]
    jobs = [SceneJob(k, partial(_reader, path, bands, k), channels, CLASSES, out / k) for k in keys]
    products = _products()

    early: dict[str, Any] = {}  # as glacier predict: products read the maps beside the COGs

    def on_maps(job: Any, reader: Any, outputs: Any, maps: Any) -> None:
        early[job.key] = products_from_maps(job.key, reader, outputs, products, maps)

    def on_done(job: Any, reader: Any, outputs: Any) -> None:
        make_products(job.key, reader, outputs, products, early.pop(job.key))

    settings = predict_settings({**args, "cog": not maps_only})
    if maps_only:
        return predict_scenes(pointwise_model(bands), jobs, settings)
    return predict_scenes(pointwise_model(bands), jobs, settings, on_done, on_maps=on_maps)


def predict_path(args: dict[str, Any]) -> dict[str, Any]:
    """The whole predict path on ``scenes`` copies of the scene in one call: wall time."""
    from glacier.utils.runtime import tune_malloc

    tune_malloc()  # as glacier predict does
    _import_path()  # a command imports before it maps: not part of the time
    keys = [f"scene{i}" for i in range(args.get("scenes", 1))]
    out = Path(tempfile.mkdtemp(dir=args["dir"]))
    start, cpu = time.perf_counter(), time.process_time()
    _run_path(args, out, keys)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(out)
    mpx = len(keys) * _pixels(args) / 1e6
    return {"seconds": seconds, "cpu_seconds": cpu, "mpx": mpx, "peak_rss_mb": peak_rss_mb()}


def _import_path() -> None:
    """Import what the path uses (PyTorch, GDAL, GeoPandas, Matplotlib...) before timing."""
    import glacier.inference.engine
    import glacier.inference.products
    import glacier.viz  # noqa: F401


def _pixels(args: dict[str, Any]) -> int:
    import rasterio

    with rasterio.open(Path(args["dir"]) / "scene.tif") as src:
        return int(src.width * src.height)


def _maps_in_memory(args: dict[str, Any], folder: Path) -> tuple[Any, Any]:
    """The scene's class map and percent probabilities, as the predictor encodes them."""
    import rasterio

    outputs = _run_path(args, folder, ["scene"], maps_only=True)[0]  # products stay cold
    with rasterio.open(outputs.classes) as classes, rasterio.open(outputs.probs) as probs:
        return classes.read(1), probs.read()


def path_limit(args: dict[str, Any]) -> dict[str, Any]:
    """Reading the scene once plus writing the same outputs from maps in memory: wall time.

    The maps are made first (untimed); then, timed: every row of the scene read once (strips
    of the output's block height, the overlay's samples taken on the way), the maps written
    through the predictor's own writer (COGs with overviews) and the same products made
    (polygons, GeoPackage, overlay, STAC).
    """
    from glacier.data.raster import RgbSample, SceneReader
    from glacier.inference.engine.encode import EncodedRows
    from glacier.inference.engine.outputs import PredictionOutputs
    from glacier.inference.engine.writer import BLOCK, OutputWriter
    from glacier.inference.products import make_products
    from glacier.utils.runtime import tune_malloc

    tune_malloc()
    _import_path()
    folder = Path(tempfile.mkdtemp(dir=args["dir"]))
    classes, probs = _maps_in_memory(args, folder / "maps")
    spec = _scene(Path(args["dir"]) / "scene.tif", args["bands"], "scene")
    outputs = PredictionOutputs.at(folder / "out" / "scene", False)
    start, cpu = time.perf_counter(), time.process_time()
    with SceneReader(spec) as reader:
        # the overlay's samples taken from the one read, as the predictor takes them
        outputs.preview = RgbSample.of(reader.scene.band_names, reader.width, reader.height)
        for top in range(0, reader.height, BLOCK):
            reader.read_with_mask(_window(reader, top), None, partial(outputs.preview.add, top, 0))
        with OutputWriter(outputs, reader, CLASSES) as writer:
            for top in range(0, reader.height, BLOCK):
                rows = slice(top, top + BLOCK)
                writer.write_rows(EncodedRows(top, classes[rows], probs[:, rows], None))
        make_products("scene", reader, outputs, _products())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(folder)
    mpx = classes.size / 1e6
    return {"seconds": seconds, "cpu_seconds": cpu, "mpx": mpx, "peak_rss_mb": peak_rss_mb()}


def _window(reader: Any, top: int) -> Any:
    from rasterio.windows import Window

    from glacier.inference.engine.writer import BLOCK

    return Window(0, top, reader.width, min(BLOCK, reader.height - top))


PATH_WORKLOADS = {f.__name__: f for f in (predict_path, path_limit)}
