"""The forked worker that burns labels beside the pixel pass: results, errors, stops, signals."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from glacier.errors import GlacierInputError
from glacier.utils.forked import Forked


def child_pid_and(value: int) -> tuple[int, int]:
    return os.getpid(), value * 2


def refuse(path: str) -> None:
    raise GlacierInputError(f"{path}: no outline polygon overlaps the scene")


def unpicklable() -> Any:
    return threading.Lock()


def killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_then_write(path: Path) -> None:
    time.sleep(30)
    path.write_text("finished")


@pytest.mark.parametrize("fork", [True, False])
def test_the_result_comes_back_from_a_child_or_inline(fork: bool) -> None:
    with closing(Forked(child_pid_and, 21, fork=fork)) as worker:
        pid, value = worker.result()
    assert value == 42
    assert (pid != os.getpid()) is fork


@pytest.mark.parametrize("fork", [True, False])
def test_the_childs_input_error_is_raised_again_as_it_was(fork: bool) -> None:
    refused = pytest.raises(GlacierInputError, match=r"^outlines.gpkg: no outline polygon")
    with closing(Forked(refuse, "outlines.gpkg", fork=fork)) as worker, refused:
        worker.result()


def test_an_unpicklable_result_is_an_error_naming_it() -> None:
    with closing(Forked(unpicklable)) as worker, pytest.raises(RuntimeError, match="pickle"):
        worker.result()


def test_a_child_killed_without_a_result_is_an_error_with_its_exit_code() -> None:
    with closing(Forked(killed)) as worker, pytest.raises(RuntimeError, match=r"exit code -9"):
        worker.result()


def test_leaving_early_stops_the_child_quietly_and_the_parents_handler_stays_its_own(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An error in the parent's own work: the child is stopped, prints nothing, runs no handler.

    The parent's SIGTERM handler (a graceful stop in ``glacier``'s tasks) is not the child's:
    stopping the child must neither run it there nor print a traceback.
    """
    calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        marker = tmp_path / "marker"
        start = time.perf_counter()
        failed = pytest.raises(ValueError, match="parent failed")
        with failed, closing(Forked(sleep_then_write, marker)) as worker:
            raise ValueError("parent failed")
        assert time.perf_counter() - start < 10
        assert not worker._process.is_alive()
        assert worker._process.exitcode == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not marker.exists()
    assert calls == []
    assert capfd.readouterr().err == ""


def warn_then_return(value: int) -> int:
    logging.getLogger("glacier.data.labels").warning("repaired %d invalid polygon(s)", value)
    return value


def test_what_the_child_logs_is_logged_by_the_parent_once(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The child's records reach the caller's handlers (Hydra's log file, pytest's caplog)."""
    with (
        caplog.at_level(logging.WARNING, logger="glacier"),
        closing(Forked(warn_then_return, 3)) as worker,
    ):
        assert worker.result() == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "glacier.data.labels"]
    assert messages == ["repaired 3 invalid polygon(s)"]
    assert "repaired" not in capfd.readouterr().err  # not also printed by the child's copy


def forked_in_a_pool_worker(value: int) -> tuple[int, int]:
    with closing(Forked(child_pid_and, value)) as worker:
        return worker.result()


def test_a_daemonic_pool_worker_runs_the_function_itself() -> None:
    """Pool workers are daemonic and may not fork children: the work runs in the worker."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        worker_pid = pool.apply(os.getpid)
        pid, value = pool.apply(forked_in_a_pool_worker, (5,))
    assert value == 10 and pid == worker_pid


def test_done_says_whether_the_result_would_wait() -> None:
    gate = threading.Event()
    with closing(Forked(time.sleep, 0.3)) as slow:
        assert not slow.done()  # the child is still sleeping
        deadline = time.monotonic() + 10
        while not slow.done() and time.monotonic() < deadline:
            gate.wait(0.01)
        assert slow.done()
        slow.result()
        assert slow.done()
    assert Forked(abs, -2, fork=False).done()  # inline: done at once


def test_strips_are_read_ahead_by_a_thread_only_once_the_other_core_is_free() -> None:
    from contextlib import ExitStack

    from glacier.data.preprocess.slicing import ReadAhead

    readers: list[tuple[int, str]] = []

    def read(index: int) -> Any:
        readers.append((index, threading.current_thread().name))
        return index, None

    polls = iter([False, False, True])
    with ExitStack() as stack:
        ahead = ReadAhead(read, 6, lambda: next(polls, True), stack)
        assert [ahead.strip(i)[0] for i in range(6)] == list(range(6))
    by_caller = [i for i, name in readers if not name.startswith("strip-reader")]
    assert by_caller == [0, 1, 2]  # the caller reads until the other core is free
    assert sorted(i for i, _ in readers) == list(range(6))  # each strip read once
