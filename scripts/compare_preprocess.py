"""Check that preprocessing writes the same files as another revision, on the same inputs.

Runs the pipeline of a git revision (``--baseline``, exported with ``git archive``) and of this
working tree, each in its own process with its own ``src`` first on the path, on generated
inputs that cover the pipeline's branches: the tiled Everest sample (uint8 bands in two files,
thousands of outlines), the synthetic scene (float32 bands, nodata stripes and a NaN patch, a
region, a DEM on another grid, outlines with holes, MultiPolygons, an invalid bow-tie, debris in
EPSG:4326) and a miniature of the HKH release's raw tiles (15 bands stored in five dtypes, the
all-zero nodata rule). Every file of the processed folders is compared byte for byte, except
``dataset.json``'s statistics, compared to a relative 1e-11 (their float64 accumulation changed
on purpose, see ``glacier.data.preprocess.moments``: exact for 8/16-bit channels, where the
older sums were off by up to 1e-12), and the private stage records.

    python scripts/compare_preprocess.py --baseline 68b7653          # prints one line per case
    python scripts/compare_preprocess.py --baseline 68b7653 --tiles 6 --keep /tmp/compare
    python scripts/compare_preprocess.py --baseline 68b7653 --cases everest_tiled --tiles 6 --time 3

Every run writes into a folder that was emptied first (``--keep`` folders too). ``--time N`` then
also times both revisions' fresh runs on the tiled Everest, interleaved with its I/O limit
(``benchmarks.preprocess_workloads.everest_io``), N rounds, and prints the medians and ratios.
Exit status 1 when any file differs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from revisions import export_revision

ROOT = Path(__file__).resolve().parents[1]
CASES = ("everest_tiled", "synthetic", "hkh_tiles")
PRIVATE = (".stages", ".staging")  # stage records and staging: internal, not outputs
# the starting point's statistics summed a million pixels at a time in sequence: on the tiled
# Everest 6×6 (13.5 M training pixels) its std is off by up to 1.04e-12 relative to the exact
# value, which the cell moments give for 8-bit channels
STATS_RTOL = 1e-11


def make_inputs(case: str, folder: Path, tiles: int) -> None:
    """Write the inputs of one case into ``folder`` (runs in this tree's environment)."""
    folder.mkdir(parents=True, exist_ok=True)
    if case == "everest_tiled":
        from benchmarks.preprocess_workloads import make_everest_tiled

        make_everest_tiled({"dir": str(folder), "tiles": tiles})
    elif case == "synthetic":
        from glacier.data.spec.synthetic import generate_synthetic_dataset

        generate_synthetic_dataset(folder, width=700, height=520, seed=3)
    else:
        from data.hkh_release import write_hkh_release

        write_hkh_release(folder / "release")


def case_spec(case: str, folder: Path, tiles: int) -> tuple[Any, Any, Any]:
    """The data config, filter and split of a case (built by the revision under test)."""
    from glacier.data.preprocess import RandomSplit, SliceFilter
    from glacier.data.spec import DataSpec

    if case == "everest_tiled":
        from benchmarks.preprocess_workloads import everest_spec

        keep = SliceFilter(min_total_fraction=0.0, max_nodata_fraction=1.0)
        return everest_spec(folder), keep, RandomSplit(seed=0)
    if case == "synthetic":
        spec = DataSpec(
            name="synthetic",
            classes=["clean_ice", "debris"],
            scenes=[
                {
                    "id": "synthetic",
                    "sources": [
                        {
                            "path": str(folder / "scene.tif"),
                            "bands": ["blue", "green", "red", "nir", "swir1", "swir2"],
                        }
                    ],
                }
            ],
            labels=[
                {"path": str(folder / "clean_ice.gpkg"), "class_name": "clean_ice"},
                {"path": str(folder / "debris.gpkg"), "class_name": "debris"},
            ],
            derived=["ndvi", "ndsi", "elevation", "slope"],
            dem=str(folder / "dem.tif"),
            region=str(folder / "region.gpkg"),
            slice_size=64,
            overlap=16,
        )
        return spec, SliceFilter(max_nodata_fraction=0.6), RandomSplit(seed=1)
    from glacier.data.hkh import release_tiles_spec

    root = folder / "release" / "glacier_data"
    labels = [
        {"path": str(root / "vector_data" / "clean.shp"), "class_name": "clean_ice"},
        {"path": str(root / "vector_data" / "debris.shp"), "class_name": "debris"},
    ]
    spec = release_tiles_spec(
        str(root), classes=["clean_ice", "debris"], labels=labels, slice_size=256, overlap=16
    )
    return spec, SliceFilter(max_nodata_fraction=1.0), RandomSplit(seed=2)


def run_case(case: str, folder: Path, out: Path, tiles: int) -> None:
    """Preprocess one case into ``out`` with whatever ``glacier`` is first on the path."""
    from glacier.data.preprocess import Preprocessor

    spec, keep, split = case_spec(case, folder, tiles)
    Preprocessor(spec, keep, split, out, progress=False).run()


def in_child(src: Path, *args: str) -> str:
    """Run this script with ``src`` first on the path (and this tree's benchmarks/tests).

    Returns:
        What the child printed.
    """
    path = os.pathsep.join([str(src), str(ROOT), str(ROOT / "tests")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:2])} with {src} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def outputs(folder: Path) -> dict[str, Path]:
    """Every output file of a processed folder by relative path (stage records left out)."""
    return {
        str(p.relative_to(folder)): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] not in PRIVATE
    }


def same_dataset_json(ours: Path, theirs: Path) -> bool:
    """``dataset.json`` equal but for the statistics' last digits (relative ``STATS_RTOL``)."""
    a, b = json.loads(ours.read_text()), json.loads(theirs.read_text())
    stats_a, stats_b = a.pop("stats"), b.pop("stats")
    if a != b or stats_a["pixels"] != stats_b["pixels"]:
        return False
    return all(
        stats_a[key].keys() == stats_b[key].keys()
        and all(
            math.isclose(stats_a[key][c], stats_b[key][c], rel_tol=STATS_RTOL, abs_tol=1e-300)
            for c in stats_a[key]
        )
        for key in ("mean", "std")
    )


def compare(ours: Path, theirs: Path) -> list[str]:
    """Files that differ between two processed folders (or exist in one only)."""
    mine, base = outputs(ours), outputs(theirs)
    problems = [f"only in one: {name}" for name in sorted(mine.keys() ^ base.keys())]
    for name in sorted(mine.keys() & base.keys()):
        if name == "dataset.json":
            if not same_dataset_json(mine[name], base[name]):
                problems.append(f"differs beyond the statistics' rounding: {name}")
        elif mine[name].read_bytes() != base[name].read_bytes():
            problems.append(f"differs: {name}")
    return problems


def compare_case(case: str, work: Path, baseline_src: Path, tiles: int) -> bool:
    """Preprocess one case with both revisions into fresh folders; print and return sameness."""
    shutil.rmtree(work / case, ignore_errors=True)  # every run starts from nothing
    inputs = work / case / "inputs"
    in_child(ROOT / "src", "--inputs", case, str(inputs), "--tiles", str(tiles))
    for name, src in (("baseline", baseline_src), ("ours", ROOT / "src")):
        out = work / case / name
        in_child(src, "--run", case, str(inputs), str(out), "--tiles", str(tiles))
    problems = compare(work / case / "ours", work / case / "baseline")
    count = len(outputs(work / case / "ours"))
    print(f"{case}: {'SAME' if not problems else 'DIFFERENT'} ({count} files)")
    for problem in problems:
        print(f"  {problem}")
    return not problems


def time_everest(work: Path, baseline_src: Path, tiles: int, rounds: int) -> None:
    """Fresh runs of both revisions on the tiled Everest, interleaved with its I/O limit.

    Each run is the pipeline in a fresh process (in-process time, no start-up) into a new
    folder, with glibc tuned as the command tunes it; medians of ``rounds`` of the wall time
    and of the CPU time (user + system of the process and its forked label child: less
    sensitive to other processes on a shared machine); ratio = I/O limit / run
    (higher is better, 1 = at the limit).
    """
    folder = work / "timing"
    shutil.rmtree(folder, ignore_errors=True)
    in_child(ROOT / "src", "--inputs", "everest_tiled", str(folder), "--tiles", str(tiles))
    times: dict[str, list[tuple[float, float]]] = {"I/O limit": [], "baseline": [], "ours": []}
    for round_ in range(rounds):
        times["I/O limit"].append(child_seconds(ROOT / "src", "--io", str(folder)))
        for name, src in (("baseline", baseline_src), ("ours", ROOT / "src")):
            out = str(folder / f"{name}-{round_}")
            times[name].append(child_seconds(src, "--timed-run", str(folder), out))
    limit = [statistics.median(t[k] for t in times["I/O limit"]) for k in (0, 1)]
    for name, values in times.items():
        wall, cpu = (statistics.median(t[k] for t in values) for k in (0, 1))
        print(
            f"tiled Everest {tiles}×{tiles} {name}: wall {wall:.2f} s, CPU {cpu:.2f} s (medians "
            f"of {rounds}); I/O limit / it: wall {limit[0] / wall:.2f}, CPU {limit[1] / cpu:.2f}"
        )


def child_seconds(src: Path, *args: str) -> tuple[float, float]:
    """The wall and CPU seconds a child prints last (earlier runs' writes flushed first)."""
    os.sync()
    wall, cpu = in_child(src, *args).strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def child(args: argparse.Namespace) -> None:
    """What a child process was asked to do."""
    if args.inputs:
        make_inputs(args.inputs[0], Path(args.inputs[1]), args.tiles)
    elif args.run:
        run_case(args.run[0], Path(args.run[1]), Path(args.run[2]), args.tiles)
    elif args.io:
        from benchmarks.preprocess_workloads import everest_io

        limit = everest_io({"dir": args.io})
        print(limit["seconds"], limit["cpu_seconds"])
    else:
        tune_as_the_command()
        wall, cpu = time.perf_counter(), process_cpu()
        run_case("everest_tiled", Path(args.timed_run[0]), Path(args.timed_run[1]), args.tiles)
        print(time.perf_counter() - wall, process_cpu() - cpu)


def tune_as_the_command() -> None:
    """Tune the process as ``glacier preprocess`` does (in revisions that do)."""
    try:
        from glacier.utils.runtime import long_lived_objects_frozen
    except ImportError:  # revisions before it: the allocator only
        pass
    else:
        long_lived_objects_frozen().__enter__()  # for the rest of this one-run process
    try:
        from glacier.utils.runtime import tune_malloc
    except ImportError:
        return
    try:
        tune_malloc(one_heap=True)
    except TypeError:  # revisions before one_heap
        tune_malloc()


def process_cpu() -> float:
    """User + system seconds of this process and of its waited-for children (a forked one)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    """Compare every case (and time the tiled Everest with ``--time``); 1 when outputs differ."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--tiles", type=int, default=2, help="tiled Everest: n × n copies")
    parser.add_argument("--keep", type=Path, help="work here (emptied first, then kept)")
    parser.add_argument("--time", type=int, default=0, help="also time N rounds (see above)")
    parser.add_argument("--inputs", nargs=2, help=argparse.SUPPRESS)  # child: CASE FOLDER
    parser.add_argument("--run", nargs=3, help=argparse.SUPPRESS)  # child: CASE FOLDER OUT
    parser.add_argument("--io", help=argparse.SUPPRESS)  # child: FOLDER
    parser.add_argument("--timed-run", nargs=2, help=argparse.SUPPRESS)  # child: FOLDER OUT
    args = parser.parse_args()
    if args.inputs or args.run or args.io or args.timed_run:
        child(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="glacier-compare-") as tmp:
        work = args.keep or Path(tmp)
        shutil.rmtree(work / "baseline", ignore_errors=True)
        baseline_src = export_revision(args.baseline, work / "baseline")
        same = [
            compare_case(case, work, baseline_src, args.tiles) for case in args.cases.split(",")
        ]
        if args.time:
            time_everest(work, baseline_src, args.tiles, args.time)
    return 0 if all(same) else 1


if __name__ == "__main__":
    raise SystemExit(main())
