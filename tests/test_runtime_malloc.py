"""Process tuning: one malloc heap for every thread; long-lived objects frozen for the GC."""

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


FREEZE = """
import gc, weakref
import pandas  # a library's objects: alive as long as the process
from glacier.utils.runtime import long_lived_objects_frozen
tracked = len(gc.get_objects())
class Node:
    pass
with long_lived_objects_frozen():
    assert gc.get_freeze_count() >= tracked, (gc.get_freeze_count(), tracked)
    assert len(gc.get_objects()) < tracked // 100  # a full pass no longer scans them
    made_inside = Node()
    made_inside.itself = made_inside  # a cycle: only the collector frees it
    gone = weakref.ref(made_inside)
    del made_inside
    gc.collect()
    assert gone() is None  # what the block makes is still collected
assert gc.get_freeze_count() == 0 and len(gc.get_objects()) >= tracked  # unfrozen again
gc.freeze()  # someone else's freeze: left as it was
with long_lived_objects_frozen():
    pass
assert gc.get_freeze_count() >= tracked
"""


def test_frozen_long_lived_objects_are_skipped_what_comes_is_collected_and_all_thawed() -> None:
    subprocess.run([sys.executable, "-c", FREEZE], check=True)
