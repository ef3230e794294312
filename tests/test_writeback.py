"""Rows of memory-mapped arrays are handed to the kernel for writeback as they are stored."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config

import glacier.utils.writeback as writeback
from glacier.tasks.preprocess import run_preprocess
from glacier.utils.writeback import RowWriteback

Ranges = dict[str, list[tuple[int, int]]]


def last_parts(path: Path) -> str:
    """``scene/file.npy``: the same in a staging folder and where it is published."""
    return f"{path.parent.name}/{path.name}"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Ranges:
    """Byte ranges handed to ``sync_file_range``, per file (what the kernel is asked)."""
    ranges: Ranges = {}

    def record(fd: int, offset: int, length: int, flags: int) -> int:
        assert flags == writeback.SYNC_FILE_RANGE_WRITE  # start, never wait
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        ranges.setdefault(last_parts(path), []).append((offset, length))
        return 0

    monkeypatch.setattr(writeback, "SYNC_FILE_RANGE", record)
    return ranges


def covered_once(ranges: list[tuple[int, int]], start: int, stop: int) -> bool:
    """Whether ``ranges`` tile ``[start, stop)`` exactly: no gap, no byte twice."""
    at = start
    for offset, length in sorted(ranges):
        if offset != at:
            return False
        at += length
    return at == stop


@pytest.mark.skipif(sys.platform != "linux", reason="file names read from /proc/self/fd")
def test_row_blocks_tile_the_arrays_data_after_its_header(tmp_path: Path, recorded: Ranges) -> None:
    path = tmp_path / "image.npy"
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(37, 11, 2))
    rows = RowWriteback(array)
    for start in range(0, 37, 8):
        array[start : start + 8] = start
        rows.rows(start, min(start + 8, 37))
    rows.rows(5, 5)  # nothing to write: not asked
    rows.close()
    array.flush()
    size = path.stat().st_size
    assert covered_once(recorded[last_parts(path)], array.offset, size)  # data all, no header
    assert array.offset > 0 and size - array.offset == array.nbytes
    assert np.load(path)[36, 10, 1] == 32  # written as it was


@pytest.mark.skipif(writeback.SYNC_FILE_RANGE is None, reason="no sync_file_range here")
def test_the_real_call_leaves_the_bytes_as_written(tmp_path: Path) -> None:
    path = tmp_path / "image.npy"
    values = np.random.default_rng(0).integers(0, 255, (300, 257, 4), dtype=np.uint8)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=values.shape)
    rows = RowWriteback(array)
    for start in range(0, 300, 64):
        array[start : start + 64] = values[start : start + 64]
        rows.rows(start, min(start + 64, 300))
    array[299, 256] = 7  # a page already handed over is written again: still kept
    rows.close()
    array.flush()
    del array
    expected = values.copy()
    expected[299, 256] = 7
    np.testing.assert_array_equal(np.load(path), expected)


def test_where_the_call_is_missing_nothing_is_opened_or_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writeback, "SYNC_FILE_RANGE", None)
    array = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.uint8, shape=(4, 4))
    rows = RowWriteback(array)
    assert rows.fd == -1
    rows.rows(0, 4)  # a no-op, no error
    rows.close()


@pytest.mark.skipif(sys.platform != "linux", reason="file names read from /proc/self/fd")
def test_preprocessing_hands_every_stored_row_over_once(tmp_path: Path, recorded: Ranges) -> None:
    # 48 px windows overlapping by 8: strips share rows, each row is stored (and handed) once
    overrides = ["data=synthetic", "data.slice_size=48", "data.overlap=8", "~data.channel_sets"]
    cfg = compose_config("preprocess", overrides, tmp_path)
    run_preprocess(cfg)
    images = sorted(Path(cfg.paths.processed_dir).glob("scenes/*/image*.npy"))
    assert len(images) >= 2  # one array per storage group
    for path in images:
        array = np.load(path, mmap_mode="r")
        size = path.stat().st_size
        assert covered_once(recorded[last_parts(path)], array.offset, size), path.name
