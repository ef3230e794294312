"""Benchmark workloads, each run in a fresh process: ``python -m benchmarks.workloads NAME JSON``.

Each prints one JSON line with its timings and the process's peak RSS, so memory is measured per
workload and process-level settings (the allocator fix) can be switched per run. Prediction
workloads live in :mod:`benchmarks.predict_workloads`.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_anon_mb() -> float:
    """Anonymous resident memory of this process now, in MB (0 where /proc is missing)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("RssAnon:"):
            return float(line.split()[1]) / 1024
    return 0.0


class AnonPeak:
    """Peak anonymous RSS over a block, sampled every 5 ms by a thread.

    ``ru_maxrss`` also counts file-backed pages: the pages of a memory-mapped output file,
    written once and left to the kernel's writeback, are page cache, not memory the process
    holds. Anonymous memory (heap, buffers, arrays) is what a bigger scene would need more of.
    """

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_anon_mb())
            self._stop.wait(0.005)

    def __enter__(self) -> AnonPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_anon_mb())


def make_scene(args: dict[str, Any]) -> dict[str, Any]:
    """Write a float32 scene (size × size × bands) and a glacier outline file."""
    from scene_files import write_disc_outline, write_scene

    out = Path(args["dir"])
    start = time.perf_counter()
    write_scene(out / "scene.tif", args["size"], args["size"], bands=args["bands"])
    write_disc_outline(out / "outline.gpkg", args["size"], args["size"])
    return {"seconds": time.perf_counter() - start}


def store_io(args: dict[str, Any]) -> dict[str, Any]:
    """The I/O limit of preprocessing: read the scene in strips, write its bytes once.

    The bytes written are what the processed dataset stores: the scene's bands in their own
    dtype, in one array (what ``scenes/{id}/image_*.npy`` hold).
    """
    import rasterio
    from rasterio.windows import Window

    with tempfile.TemporaryDirectory(dir=args["dir"]) as tmp:
        start = time.perf_counter()
        with rasterio.open(Path(args["dir"]) / args.get("scene", "scene.tif")) as src:
            out = np.lib.format.open_memmap(
                Path(tmp) / "scene.npy",
                mode="w+",
                dtype=src.dtypes[0],
                shape=(*src.shape, src.count),
            )
            for row in range(0, src.height, 512):
                rows = min(512, src.height - row)
                out[row : row + rows] = src.read(window=Window(0, row, src.width, rows)).transpose(
                    1, 2, 0
                )
            out.flush()
            del out
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def _run_pipeline(folder: Path, spec: Any, split: Any) -> dict[str, Any]:
    from glacier.data.preprocess import Preprocessor, SliceFilter

    keep = SliceFilter(min_total_fraction=0.0, max_nodata_fraction=1.0)
    start = time.perf_counter()
    with AnonPeak() as anon:
        Preprocessor(spec, keep, split, folder / "processed", progress=False).run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "peak_anon_mb": anon.peak_mb}


def preprocess(args: dict[str, Any]) -> dict[str, Any]:
    """The whole preprocessing pipeline on the scene (labels, stored pixels, split, stats)."""
    from glacier.data.preprocess import RandomSplit
    from glacier.data.spec import DataSpec

    folder = Path(args["dir"])
    bands = [f"b{i}" for i in range(args["bands"])]
    spec = DataSpec(
        name="bench",
        classes=["glacier"],
        labels=[{"path": str(folder / "outline.gpkg"), "class_name": "glacier"}],
        scenes=[{"id": "bench", "sources": [{"path": str(folder / "scene.tif"), "bands": bands}]}],
        slice_size=args["tile"],
        overlap=args.get("overlap", 0),
    )
    return _run_pipeline(folder, spec, RandomSplit(seed=0))


def make_everest_tiled(args: dict[str, Any]) -> dict[str, Any]:
    """The Everest sample tiled n × n (RGB + band 4 files, outlines copied per tile)."""
    import geopandas as gpd
    import pandas as pd
    import rasterio

    from glacier.data.spec import sample_path

    out, n = Path(args["dir"]), args["tiles"]
    for name in ("LE71400412000304SGS00_RGB.TIF", "LE71400412000304SGS00_B4_crop.TIF"):
        with rasterio.open(sample_path(name)) as src:
            data, profile = src.read(), src.profile
        tiled = np.tile(data, (1, n, n))
        profile |= {"width": tiled.shape[2], "height": tiled.shape[1]}
        with rasterio.open(out / name, "w", **profile) as dst:
            dst.write(tiled)
    with rasterio.open(sample_path("LE71400412000304SGS00_RGB.TIF")) as src:
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


def everest_spec(folder: Path) -> Any:
    """The tiled Everest sample as the data config ``everest`` describes it (128-px slices)."""
    from glacier.data.spec import DataSpec

    return DataSpec(
        name="everest_tiled",
        classes=["glacier"],
        labels=[{"path": str(folder / "outlines.gpkg"), "class_name": "glacier"}],
        scenes=[
            {
                "id": "tiled",
                "sources": [
                    {
                        "path": str(folder / "LE71400412000304SGS00_RGB.TIF"),
                        "bands": ["red", "green", "blue"],
                    },
                    {"path": str(folder / "LE71400412000304SGS00_B4_crop.TIF"), "bands": ["nir"]},
                ],
            }
        ],
        derived=["ndvi", "ndwi"],
        slice_size=128,
        overlap=6,
    )


def everest_io(args: dict[str, Any]) -> dict[str, Any]:
    """The limit for the tiled Everest: read both files, write the bytes the dataset stores.

    Stored: the four uint8 bands and the two float16 indices of every pixel (8 bytes a pixel),
    read and written strip by strip into memory-mapped arrays, as fast as it gets.
    """
    import rasterio
    from rasterio.windows import Window

    folder = Path(args["dir"])
    with (
        tempfile.TemporaryDirectory(dir=folder) as tmp,
        rasterio.open(folder / "LE71400412000304SGS00_RGB.TIF") as rgb,
        rasterio.open(folder / "LE71400412000304SGS00_B4_crop.TIF") as nir,
    ):
        start = time.perf_counter()
        shape = (rgb.height, rgb.width)
        bands = np.lib.format.open_memmap(Path(tmp) / "b.npy", "w+", np.uint8, (*shape, 4))
        indices = np.lib.format.open_memmap(Path(tmp) / "i.npy", "w+", np.float16, (*shape, 2))
        for row in range(0, rgb.height, 512):
            window = Window(0, row, rgb.width, min(512, rgb.height - row))
            rows = slice(row, row + int(window.height))
            bands[rows, :, :3] = rgb.read(window=window).transpose(1, 2, 0)
            bands[rows, :, 3] = nir.read(1, window=window)
            indices[rows] = 0
        bands.flush()
        indices.flush()
        seconds = time.perf_counter() - start
        del bands, indices
    return {"seconds": seconds}


def preprocess_everest(args: dict[str, Any]) -> dict[str, Any]:
    """The pipeline on the tiled Everest: labels, stored pixels, 128-px slices, split, stats."""
    from glacier.data.preprocess import RandomSplit

    folder = Path(args["dir"])
    result = _run_pipeline(folder, everest_spec(folder), RandomSplit(seed=0))
    return result | storage(folder / "processed")


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


WORKLOADS = {
    f.__name__: f
    for f in (make_scene, store_io, preprocess, make_everest_tiled, everest_io, preprocess_everest)
}


def main() -> None:
    """Run the workload named on the command line."""
    from benchmarks.cache_workloads import CACHE_WORKLOADS
    from benchmarks.predict_workloads import PREDICT_WORKLOADS
    from benchmarks.train_workloads import TRAIN_WORKLOADS

    registry = WORKLOADS | PREDICT_WORKLOADS | TRAIN_WORKLOADS | CACHE_WORKLOADS
    print(json.dumps(registry[sys.argv[1]](json.loads(sys.argv[2]))))


if __name__ == "__main__":
    main()
