"""Benchmark workloads, each run in a fresh process: ``python -m benchmarks.workloads NAME JSON``.

Each prints one JSON line with its timings and the process's peak RSS, so memory is measured per
workload and process-level settings (the allocator fix) can be switched per run. Preprocessing,
training and prediction workloads live in :mod:`benchmarks.preprocess_workloads`,
:mod:`benchmarks.train_workloads` and :mod:`benchmarks.predict_workloads`.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

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


WORKLOADS = {f.__name__: f for f in (make_scene,)}


def main() -> None:
    """Run the workload named on the command line."""
    import glacier  # noqa: F401  (its process settings, e.g. OpenMP's wait policy, before torch)
    from benchmarks.cache_workloads import CACHE_WORKLOADS
    from benchmarks.path_workloads import PATH_WORKLOADS
    from benchmarks.predict_workloads import PREDICT_WORKLOADS
    from benchmarks.preprocess_workloads import PREPROCESS_WORKLOADS
    from benchmarks.train_workloads import TRAIN_WORKLOADS

    registry = (
        WORKLOADS
        | PREPROCESS_WORKLOADS
        | PREDICT_WORKLOADS
        | PATH_WORKLOADS
        | TRAIN_WORKLOADS
        | CACHE_WORKLOADS
    )
    print(json.dumps(registry[sys.argv[1]](json.loads(sys.argv[2]))))


if __name__ == "__main__":
    main()
