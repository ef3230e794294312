"""Preprocessing workloads: the pipeline into fresh output folders, its I/O limits, a rerun.

Every timed preprocessing run writes into an output folder (``out``) that must be empty or
absent: a folder holding an earlier run would let the pipeline skip its unchanged stages and the
figure would be the cost of a no-op (:func:`fresh_output` refuses it). The one workload that
times a rerun (:func:`rerun_everest`) says so in its name and checks that it skipped.
Inputs and the I/O limits read from the warm page cache, as the runs do.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workloads import AnonPeak, peak_rss_mb

EVEREST_FILES = ("LE71400412000304SGS00_RGB.TIF", "LE71400412000304SGS00_B4_crop.TIF")
# The predecessor (krisrs1128/glacier_mapping e6864c4) on the tiled Everest 6×6, median of three
# fresh runs interleaved with `glacier preprocess` on the same 2-core machine (issue #30)
PREDECESSOR_SECONDS = 10.05


def fresh_output(path: str | Path) -> Path:
    """``path`` as the output folder of a timed run: it must be absent or empty.

    Raises:
        ValueError: If it holds anything (an earlier run's files would be reused, not redone).
    """
    out = Path(path)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: a timed preprocessing run needs a fresh folder")
    return out


def _run_pipeline(out: Path, spec: Any, split: Any) -> dict[str, Any]:
    from glacier.data.preprocess import Preprocessor, SliceFilter
    from glacier.utils.runtime import long_lived_objects_frozen, tune_malloc

    tune_malloc(one_heap=True)  # as `glacier preprocess` does
    keep = SliceFilter(min_total_fraction=0.0, max_nodata_fraction=1.0)
    start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    with AnonPeak() as anon, long_lived_objects_frozen():  # as `glacier preprocess` does
        Preprocessor(spec, keep, split, out, progress=False).run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    cpu += _children_cpu() - children  # the forked label burning's own time
    return {
        "seconds": seconds,
        # user + system, every thread (the AnonPeak sampler's included) and child process
        "cpu_seconds": cpu,
        "peak_rss_mb": peak_rss_mb(),
        "peak_anon_mb": anon.peak_mb,
    }


def _children_cpu() -> float:
    """User + system seconds of this process's finished (waited-for) child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def store_io(args: dict[str, Any]) -> dict[str, Any]:
    """The I/O limit of preprocessing: read the scene in strips, write its bytes once.

    The bytes written are what the processed dataset stores: the scene's bands in their own
    dtype, in one array (what ``scenes/{id}/image_*.npy`` hold), written as preprocessing
    writes them (:func:`glacier.utils.writeback.open_written_array`).
    """
    import rasterio
    from rasterio.windows import Window

    from glacier.utils.writeback import open_written_array

    with tempfile.TemporaryDirectory(dir=args["dir"]) as tmp:
        start = time.perf_counter()
        with (
            rasterio.open(Path(args["dir"]) / args.get("scene", "scene.tif")) as src,
            ExitStack() as stack,
        ):
            shape = (*src.shape, src.count)
            out, writeback = open_written_array(
                Path(tmp) / "scene.npy", src.dtypes[0], shape, stack
            )
            for row in range(0, src.height, 512):
                rows = min(512, src.height - row)
                window = Window(0, row, src.width, rows)
                out[row : row + rows] = src.read(window=window).transpose(1, 2, 0)
                writeback.rows(row, row + rows)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def preprocess(args: dict[str, Any]) -> dict[str, Any]:
    """The whole pipeline on ``scene.tif`` (labels, stored pixels, split, stats) into ``out``."""
    from glacier.data.preprocess import RandomSplit
    from glacier.data.spec import DataSpec

    folder, out = Path(args["dir"]), fresh_output(args["out"])
    bands = [f"b{i}" for i in range(args["bands"])]
    spec = DataSpec(
        name="bench",
        classes=["glacier"],
        labels=[{"path": str(folder / "outline.gpkg"), "class_name": "glacier"}],
        scenes=[{"id": "bench", "sources": [{"path": str(folder / "scene.tif"), "bands": bands}]}],
        slice_size=args["tile"],
        overlap=args.get("overlap", 0),
    )
    return _run_pipeline(out, spec, RandomSplit(seed=0))


def make_everest_tiled(args: dict[str, Any]) -> dict[str, Any]:
    """The Everest sample tiled n × n (RGB + band 4 files, outlines copied per tile)."""
    import geopandas as gpd
    import pandas as pd
    import rasterio

    from glacier.data.spec import sample_path

    out, n = Path(args["dir"]), args["tiles"]
    for name in EVEREST_FILES:
        with rasterio.open(sample_path(name)) as src:
            data, profile = src.read(), src.profile
        tiled = np.tile(data, (1, n, n))
        profile |= {"width": tiled.shape[2], "height": tiled.shape[1]}
        with rasterio.open(out / name, "w", **profile) as dst:
            dst.write(tiled)
    with rasterio.open(sample_path(EVEREST_FILES[0])) as src:
        width, height, crs = src.width * src.transform.a, src.height * src.transform.e, src.crs
    outlines = gpd.read_file(sample_path("glacier_outlines.gpkg")).to_crs(crs)
    # the copy in tile row j, column i lies j scene heights down, i scene widths east
    copies = [
        outlines.set_geometry(outlines.geometry.translate(xoff=i * width, yoff=j * height))
        for i in range(n)
        for j in range(n)
    ]
    pd.concat(copies).to_file(out / "outlines.gpkg")
    return {"outlines": sum(len(c) for c in copies)}


def everest_config(folder: Path) -> dict[str, Any]:
    """The tiled Everest as a data config (``data=everest``'s bands, 128-px slices, overlap 6)."""
    rgb, nir = (str(folder / name) for name in EVEREST_FILES)
    return {
        "_target_": "glacier.data.spec.DataSpec",
        "name": "everest_tiled",
        "classes": ["glacier"],
        "labels": [{"path": str(folder / "outlines.gpkg"), "class_name": "glacier"}],
        "scenes": [
            {
                "id": "tiled",
                "sources": [
                    {"path": rgb, "bands": ["red", "green", "blue"]},
                    {"path": nir, "bands": ["nir"]},
                ],
            }
        ],
        "derived": ["ndvi", "ndwi"],
        "slice_size": 128,
        "overlap": 6,
    }


def everest_spec(folder: Path) -> Any:
    """The tiled Everest's :class:`DataSpec` (see :func:`everest_config`)."""
    from glacier.data.spec import DataSpec

    config = everest_config(folder)
    del config["_target_"]
    return DataSpec(**config)


def everest_io(args: dict[str, Any]) -> dict[str, Any]:
    """The limit for the tiled Everest: read both files, write the bytes the dataset stores.

    Stored: the four uint8 bands and the two float16 indices of every pixel (8 bytes a pixel),
    read and written strip by strip into memory-mapped arrays as preprocessing writes them
    (:func:`glacier.utils.writeback.open_written_array`), as fast as it gets.
    """
    import rasterio
    from rasterio.windows import Window

    from glacier.utils.writeback import open_written_array

    folder = Path(args["dir"])
    with (
        tempfile.TemporaryDirectory(dir=folder) as tmp,
        rasterio.open(folder / EVEREST_FILES[0]) as rgb,
        rasterio.open(folder / EVEREST_FILES[1]) as nir,
    ):
        start, cpu = time.perf_counter(), time.process_time()
        shape = (rgb.height, rgb.width)
        with ExitStack() as stack:  # flushed when it closes
            bands, band_rows = open_written_array(Path(tmp) / "b.npy", np.uint8, (*shape, 4), stack)
            indices, index_rows = open_written_array(
                Path(tmp) / "i.npy", np.float16, (*shape, 2), stack
            )
            for row in range(0, rgb.height, 512):
                window = Window(0, row, rgb.width, min(512, rgb.height - row))
                rows = slice(row, row + int(window.height))
                bands[rows, :, :3] = rgb.read(window=window).transpose(1, 2, 0)
                bands[rows, :, 3] = nir.read(1, window=window)
                indices[rows] = 0
                band_rows.rows(rows.start, rows.stop)
                index_rows.rows(rows.start, rows.stop)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu}


def preprocess_everest(args: dict[str, Any]) -> dict[str, Any]:
    """The pipeline on the tiled Everest into a fresh ``out``: labels, pixels, slices, stats."""
    from glacier.data.preprocess import RandomSplit

    folder, out = Path(args["dir"]), fresh_output(args["out"])
    result = _run_pipeline(out, everest_spec(folder), RandomSplit(seed=0))
    return result | storage(out)


def rerun_everest(args: dict[str, Any]) -> dict[str, Any]:
    """An unchanged rerun into ``out``, which holds a complete run of the same inputs.

    Raises:
        ValueError: If ``out`` does not hold that run (the rerun would not be a skip).
    """
    from glacier.data.preprocess import Preprocessor, RandomSplit, SliceFilter

    keep = SliceFilter(min_total_fraction=0.0, max_nodata_fraction=1.0)
    spec, out = everest_spec(Path(args["dir"])), Path(args["out"])
    preprocessor = Preprocessor(spec, keep, RandomSplit(seed=0), out, progress=False)
    if not preprocessor.is_complete():
        raise ValueError(f"{out} holds no complete run of these inputs: a rerun would redo it")
    start = time.perf_counter()
    preprocessor.run()
    return {"seconds": time.perf_counter() - start}


def preprocess_everest_command(args: dict[str, Any]) -> dict[str, Any]:
    """``glacier preprocess`` on the tiled Everest into a fresh ``out``, as a user runs it.

    The data config is written as a YAML file into a config folder that ``hydra.searchpath``
    adds. Returns the command's wall and CPU time and its start-up: the same command with
    ``--cfg job`` (the interpreter, the imports of the preprocessing task, Hydra composing the
    config; no run).
    """
    import yaml

    folder, out = Path(args["dir"]), fresh_output(args["out"])
    configs = Path(tempfile.mkdtemp(dir=folder, prefix="configs-"))
    (configs / "data").mkdir()
    (configs / "data" / "everest_tiled.yaml").write_text(yaml.safe_dump(everest_config(folder)))
    command = [sys.executable, "-m", "glacier.cli", "preprocess"]
    overrides = [
        f"hydra.searchpath=[file://{configs}]",
        "data=everest_tiled",
        "filter.max_nodata_fraction=1.0",
        "seed=0",
        f"paths.processed_dir={out}",
        f"hydra.run.dir={out.parent / (out.name + '-hydra')}",
        "preprocessor.progress=false",
    ]
    startup, startup_cpu = _timed_child([*command, *overrides, "--cfg", "job"])
    seconds, cpu = _timed_child([*command, *overrides])
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "startup_seconds": startup,
        "startup_cpu_seconds": startup_cpu,
    }


def _timed_child(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of a command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def storage(processed: Path) -> dict[str, Any]:
    """Bytes of the stored pixels, of everything else but labels and metadata, of the windows."""
    import pandas as pd

    from glacier.data.contract import load_contract
    from glacier.data.store import training_area

    arrays = list((processed / "scenes").rglob("*.npy"))
    stored = sum(p.stat().st_size for p in arrays)
    everything = sum(p.stat().st_size for p in processed.rglob("*") if p.is_file())
    labels = sum(p.stat().st_size for p in (processed / "masks").glob("*.npy"))
    metadata = sum(
        p.stat().st_size for p in processed.rglob("*") if p.is_file() and p.suffix != ".npy"
    )
    contract, _ = load_contract(processed)
    bytes_per_pixel = sum(np.dtype(c.dtype).itemsize for c in contract.channels)
    slices = pd.read_json(processed / "slices" / "slices.geojson")
    index = pd.json_normalize(slices["features"].map(lambda f: f["properties"]))
    covered = 0
    for scene, windows in index.groupby("scene"):
        shape = np.load(processed / "masks" / f"mask_{scene}.npy", mmap_mode="r").shape[:2]
        covered += int(training_area(shape, windows).sum())
    return {
        "stored_bytes": stored,
        "other_bytes": everything - labels - metadata,
        "window_bytes": covered * bytes_per_pixel,
        "slices": len(index),
    }


PREPROCESS_WORKLOADS = {
    f.__name__: f
    for f in (
        store_io,
        preprocess,
        make_everest_tiled,
        everest_io,
        preprocess_everest,
        rerun_everest,
        preprocess_everest_command,
    )
}
