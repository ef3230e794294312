"""glibc tuning: with one heap, threads allocate from the main arena (no second copy)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, ctypes.util, sys, threading
import numpy as np
from glacier.utils.runtime import tune_malloc
assert tune_malloc(one_heap=sys.argv[1] == "one")
def work():
    for _ in range(50):
        np.ones(1 << 16).sum()  # freed and allocated again, from this thread's arena
thread = threading.Thread(target=work)
thread.start()
thread.join()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_stats")
def test_one_heap_keeps_every_thread_in_the_main_arena() -> None:
    def arenas(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
        )
        return done.stderr.count("Arena ")

    assert arenas("one") == 1
    assert arenas("default") >= 2  # the thread got an arena of its own
