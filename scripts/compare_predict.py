"""Check that prediction maps what another revision maps, and time the predict path of both.

Exports ``src`` of a git revision (``--baseline``, with ``git archive``) and runs it and this
working tree, each in its own process with its own ``src`` first on the path, on generated
scenes (two scenes in one call; a small network with a 3×3 convolution, dropout for MC) under
five settings: deterministic, 3 MC passes with per-pass maps, scored measures and a temperature,
4 TTA views with two measures, float32 probabilities with another tile layout, and plain
GeoTIFFs (``cog=false``). Every map is compared by its pixels, its overviews' pixels and its
metadata (CRS, transform, nodata, band names, tags); polygons by count and area; the overlay
PNGs byte for byte. Exit status 1 when anything differs.

    python scripts/compare_predict.py --baseline 4a2e4de
    python scripts/compare_predict.py --baseline 4a2e4de --time 3 --size 4096

``--time N`` then times both revisions' predict path (``benchmarks.path_workloads``: a 1×1
model, the whole path, one scene and ``--scenes`` scenes per call) interleaved with the floor
(this tree's ``path_limit``), N rounds, and prints the medians and ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from revisions import export_revision

ROOT = Path(__file__).resolve().parents[1]
BANDS = ("red", "green", "blue", "nir")
CASES: dict[str, dict[str, Any]] = {
    "deterministic": {},
    "mc": {"mc_samples": 3, "pass_maps": True, "score_measures": True, "temperatures": (1.5,)},
    "tta": {"tta": 4, "uncertainty": ("entropy", "spread")},
    "float32": {"probabilities": "float32", "batch_size": 3, "tile_size": 256, "overlap": 32},
    "plain": {"cog": False},
}


def in_child(src: Path, *args: str) -> str:
    """Run this script's child mode (or a module, ``-m``) with ``src`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(src))
    argv = [sys.executable, *(args if args[0] == "-m" else (__file__, "--child", *args))]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def revision_names(chosen: dict[str, Any]) -> dict[str, Any]:
    """The settings under the names of the revision running.

    Before ensembles (4a2e4de) one ``temperature``; since then ``temperatures`` (one per member).
    """
    from dataclasses import fields

    from glacier.inference.engine import PredictSettings

    names = {f.name for f in fields(PredictSettings)}
    if "temperatures" in chosen and "temperatures" not in names:
        chosen = dict(chosen)
        chosen["temperature"] = chosen.pop("temperatures")[0]
    return chosen


def map_digest(folder: Path) -> dict[str, Any]:
    """Map every case in ``folder`` (child mode) and digest what was written."""
    import geopandas as gpd
    import rasterio
    import torch
    from torch import nn

    sys.path.insert(0, str(ROOT / "tests"))
    from scene_files import write_scene

    folder.mkdir(parents=True)  # a fresh folder: no earlier outputs to find
    from glacier.data.raster import SceneReader
    from glacier.data.spec import BandSource, SceneSpec
    from glacier.inference.engine import PredictSettings, SceneJob, predict_scenes
    from glacier.inference.products import ProductSettings, make_products
    from glacier.models import Normalizer

    paths = [
        write_scene(folder / f"s{i}.tif", w, h, 4, i)
        for i, (w, h) in enumerate([(700, 500), (300, 900)])
    ]
    digest: dict[str, Any] = {}
    products = ProductSettings(["clean_ice", "debris"], 0.0, 0.0, None, {})

    # since the products read the streamed maps beside the COGs (on_maps), this way
    two_phase = "on_maps" in inspect.signature(predict_scenes).parameters
    early: dict[str, Any] = {}

    def on_maps(job: Any, reader: Any, outputs: Any, maps: Any) -> None:
        from glacier.inference.products import products_from_maps

        early[job.key] = products_from_maps(job.key, reader, outputs, products, maps)

    def on_done(job: Any, reader: Any, outputs: Any) -> None:
        extra = [early.pop(job.key)] if two_phase else []
        made = make_products(job.key, reader, outputs, products, *extra)
        # a PredictionRecord since 9197504; a dict in the revisions before it
        polygons, overlay = (
            (made["polygons"], made["overlay"])
            if isinstance(made, dict)
            else (made.polygons, made.overlay)
        )
        frame = gpd.read_file(polygons)
        png = hashlib.sha256(Path(overlay).read_bytes()).hexdigest()
        digest[f"{job.out_prefix.parent.name}/{job.key} polygons"] = [
            len(frame),
            round(float(frame.area_km2.sum()), 6),
            png,
        ]

    for case, chosen in CASES.items():
        torch.manual_seed(0)
        layers: list[nn.Module] = [
            Normalizer([0.3] * 4, [0.2] * 4),
            nn.Conv2d(4, 8, 3, padding=1),
            nn.ReLU(),
        ]
        layers += [nn.Dropout2d(0.3)] if chosen.get("mc_samples") else []
        model = nn.Sequential(*layers, nn.Conv2d(8, 3, 1))
        jobs = [
            SceneJob(
                f"s{i}",
                (
                    lambda p=p, i=i: SceneReader(
                        SceneSpec(id=f"s{i}", sources=(BandSource(path=p, bands=BANDS),))
                    )
                ),
                list(BANDS),
                ["clean_ice", "debris"],
                folder / case / f"s{i}",
            )
            for i, p in enumerate(paths)
        ]
        settings = PredictSettings(**{"tile_size": 256, "overlap": 64, **revision_names(chosen)})
        phases = {"on_maps": on_maps} if two_phase else {}
        for outputs in predict_scenes(model, jobs, settings, on_done=on_done, **phases):
            for path in (p for p in vars(outputs).values() if isinstance(p, Path)):
                with rasterio.open(path) as src:
                    levels = src.overviews(1)
                    shrunk = [
                        src.read(out_shape=(src.count, src.height // f, src.width // f))
                        for f in levels
                    ]
                    meta = [
                        str(src.crs),
                        list(src.transform)[:6],
                        src.nodata,
                        src.descriptions,
                        levels,
                        src.tags(),
                    ]
                    digest[f"{case}/{path.name}"] = [
                        hashlib.sha256(src.read().tobytes()).hexdigest(),
                        hashlib.sha256(b"".join(a.tobytes() for a in shrunk)).hexdigest(),
                        json.dumps(meta, default=str),
                    ]
    return digest


def compare_maps(work: Path, baseline_src: Path) -> bool:
    """Both revisions' digests; prints each difference; True when they are the same."""
    ours = json.loads(in_child(ROOT / "src", "maps", str(work / "ours")))
    theirs = json.loads(in_child(baseline_src, "maps", str(work / "theirs")))
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    for key in differ:
        mine, other = ours.get(key) or [None] * 3, theirs.get(key) or [None] * 3
        names = ("pixels", "overviews", "metadata")
        parts = [n for n, a, b in zip(names, mine, other, strict=True) if a != b]
        print(f"differs: {key} ({', '.join(parts)})")
    print(f"maps: {len(ours)} outputs compared, {len(differ)} differ")
    return not differ


def time_path(work: Path, baseline_src: Path, size: int, rounds: int, scenes: int) -> None:
    """Both revisions' predict path and the floor, interleaved; medians and ratios."""
    folder = work / "scene"
    folder.mkdir()
    layout = {"dir": str(folder), "bands": 10, "tile": 512, "overlap": 64, "device": "cpu"}
    in_child(
        ROOT / "src",
        "-m",
        "benchmarks.workloads",
        "make_scene",
        json.dumps({"dir": str(folder), "size": size, "bands": 10}),
    )
    seconds: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, src in (("before", baseline_src), ("after", ROOT / "src")):
            for many in (1, scenes):
                args = json.dumps({**layout, "scenes": many})
                result = json.loads(
                    in_child(src, "-m", "benchmarks.workloads", "predict_path", args)
                )
                seconds.setdefault(f"{name} {many}", []).append(result["seconds"])
        floor = json.loads(
            in_child(ROOT / "src", "-m", "benchmarks.workloads", "path_limit", json.dumps(layout))
        )
        seconds.setdefault("floor", []).append(floor["seconds"])
    median = {key: statistics.median(values) for key, values in seconds.items()}
    print("medians (s):", json.dumps({k: round(v, 3) for k, v in median.items()}))
    for name in ("before", "after"):
        path, many = median[f"{name} 1"], median[f"{name} {scenes}"]
        ratios = f"path / floor {median['floor'] / path:.3f}"
        print(f"{name}: {ratios}; {scenes} scenes vs one {scenes * path / many:.3f}")


def main() -> int:
    """Compare the maps, then time when asked; exit status 1 when maps differ."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", help="git revision to compare with")
    parser.add_argument("--time", type=int, default=0, help="rounds of timing (0: none)")
    parser.add_argument("--size", type=int, default=4096, help="scene edge of the timing")
    parser.add_argument("--scenes", type=int, default=3, help="scenes per call of the timing")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(map_digest(Path(args.child[1]))))
        return 0
    if not args.baseline:
        parser.error("--baseline is required")
    with tempfile.TemporaryDirectory(prefix="glacier-compare-") as tmp:
        work = Path(tmp)
        baseline_src = export_revision(args.baseline, work / "baseline")
        same = compare_maps(work, baseline_src)
        if args.time:
            time_path(work, baseline_src, args.size, args.time, args.scenes)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
