"""What the COG conversion of prediction outputs costs, beside writing them.

Writes a class map (1 band) and percent probabilities (2 bands, uint8) of ``size``² pixels as
``OutputWriter`` does (256-row strips, tiled, ZSTD level 1, predictor 2; with ``--uncertainty``
also a float32 MC-dropout uncertainty, predictor 3), then converts each to a
COG with GDAL's COG driver (:func:`glacier.inference.engine.cog.to_cog`, what predict uses) and, for
comparison, with ``rio_cogeo.cog_translate``. Each conversion runs in a fresh process, so its
peak RSS is its own.

    python -m benchmarks.cog --size 8000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
STRIP = 256


def _profile(size: int, count: int, dtype: str = "uint8") -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": count,
        "dtype": dtype,
        "nodata": 255 if dtype == "uint8" else float("nan"),
        "crs": "EPSG:32645",
        "transform": from_origin(478000, 3108140, 30, 30),
        "compress": "zstd",
        "zstd_level": 1,
        "predictor": 2 if dtype == "uint8" else 3,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }


def _strips(size: int, seed: int = 0) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Class, percent and spread strips of a smooth field (glacier blobs) with pixel noise."""
    rng = np.random.default_rng(seed)
    cell = 64
    coarse = rng.random((size // cell + 2, size // cell + 2)).astype(np.float32)
    cols = np.arange(size) / cell
    x0 = cols.astype(int)
    fx = (cols - x0)[None, :]
    strips = []
    for top in range(0, size, STRIP):
        rows = np.arange(top, min(top + STRIP, size)) / cell
        y0 = rows.astype(int)
        fy = (rows - y0)[:, None]
        field = (
            coarse[y0][:, x0] * (1 - fy) * (1 - fx)
            + coarse[y0 + 1][:, x0] * fy * (1 - fx)
            + coarse[y0][:, x0 + 1] * (1 - fy) * fx
            + coarse[y0 + 1][:, x0 + 1] * fy * fx
        )
        field = np.clip(field + rng.normal(0, 0.03, field.shape), 0, 1)
        glacier = (field * 100 + 0.5).astype(np.uint8)
        classes = (glacier > 50).astype(np.uint8)
        probs = np.stack([100 - glacier, glacier])
        spread = (0.5 - np.abs(field - 0.5)).astype(np.float32) * 0.2
        if top < 512:  # a nodata corner
            classes[:, :300] = 255
            probs[:, :, :300] = 255
            spread[:, :300] = np.nan
        strips.append((top, classes, probs, spread))
    return strips


def write_outputs(folder: Path, size: int, uncertainty: bool) -> dict[str, float]:
    """Write the files strip by strip; return the write times (data made beforehand)."""
    strips = _strips(size)
    start = time.perf_counter()
    with (
        rasterio.open(folder / "classes.tif", "w", **_profile(size, 1)) as classes_file,
        rasterio.open(folder / "probs.tif", "w", **_profile(size, 2)) as probs_file,
    ):
        probs_file.descriptions = ("background", "glacier")
        probs_file.units = ("%", "%")
        for top, classes, probs, _ in strips:
            window = Window(0, top, size, classes.shape[0])
            classes_file.write(classes, 1, window=window)
            probs_file.write(probs, window=window)
    times = {"write_s": time.perf_counter() - start}
    if uncertainty:
        start = time.perf_counter()
        profile = _profile(size, 1, "float32")
        with rasterio.open(folder / "uncertainty.tif", "w", **profile) as spread_file:
            for top, _, _, spread in strips:
                spread_file.write(spread, 1, window=Window(0, top, size, spread.shape[0]))
        times["write_uncertainty_s"] = time.perf_counter() - start
    return times


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def convert(args: dict[str, Any]) -> dict[str, Any]:
    """One conversion, in this (fresh) process: seconds and peak RSS."""
    from glacier.inference.engine.cog import to_cog

    src, dst, method = Path(args["src"]), Path(args["dst"]), args["method"]
    before = _peak_rss_mb()
    start = time.perf_counter()
    if method == "gdal":
        to_cog(src, dst, args["resampling"])
    else:
        from rio_cogeo.cogeo import cog_translate

        profile = {
            "driver": "GTiff",
            "interleave": "pixel",
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "ZSTD",
            "zstd_level": 1,
            "predictor": 2,
            "BIGTIFF": "IF_SAFER",
        }
        cog_translate(
            src,
            dst,
            profile,
            overview_resampling=args["resampling"],
            config={"GDAL_NUM_THREADS": "ALL_CPUS"},
            in_memory=False,
            quiet=True,
        )
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_growth_mb": peak - before,
        "mb": dst.stat().st_size / 1e6,
    }


def _convert_in_child(**args: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cog", "--convert", json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(size: int, repeats: int, methods: list[str], uncertainty: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        writes = [write_outputs(folder, size, uncertainty) for _ in range(repeats)]
        names = ["classes", "probs", *(["uncertainty"] if uncertainty else [])]
        result: dict[str, Any] = {
            "size": size,
            **{key: min(w[key] for w in writes) for key in writes[0]},
            "streamed_mb": {name: (folder / f"{name}.tif").stat().st_size / 1e6 for name in names},
        }
        jobs = [("classes", "mode"), ("classes", "nearest"), ("probs", "average")]
        if uncertainty:
            jobs.append(("uncertainty", "average"))
        for method in methods:
            for name, resampling in jobs:
                runs = [
                    _convert_in_child(
                        src=str(folder / f"{name}.tif"),
                        dst=str(folder / f"{name}_{method}.tif"),
                        method=method,
                        resampling=resampling,
                    )
                    for _ in range(repeats)
                ]
                best = min(runs, key=lambda r: r["seconds"])
                for key in ("peak_rss_mb", "rss_growth_mb"):
                    best[key] = max(r[key] for r in runs)
                result[f"{method}/{name}/{resampling}"] = best
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="gdal,rio_cogeo")
    parser.add_argument("--uncertainty", action="store_true", help="also a float32 map")
    parser.add_argument("--convert", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert:
        print(json.dumps(convert(json.loads(args.convert))))
        return
    result = run(args.size, args.repeats, args.methods.split(","), args.uncertainty)
    print(json.dumps(result, indent=2))
    used = result["write_s"]
    cost = result["gdal/classes/mode"]["seconds"] + result["gdal/probs/average"]["seconds"]
    print(
        f"{args.size}²: writing {used:.2f} s, COG conversion (classes mode + probs average) "
        f"{cost:.2f} s = {cost / used:.0%} of writing"
    )


if __name__ == "__main__":
    main()
