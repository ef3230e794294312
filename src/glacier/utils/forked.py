"""Run one function in a forked child process while the caller goes on (the second core).

Threads do not help where the work holds the GIL for long stretches (GDAL's rasterizer, building
geometries in Python); a forked child shares the parent's memory as it was at the fork, so the
function's arguments are not pickled, only its result (or its exception) comes back through a
pipe, with what it logged (handled by the caller's loggers when the result is taken). Where
``fork`` is not available (Windows) or no child may be forked (a daemonic pool worker) the
function runs in the caller, at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def can_fork() -> bool:
    """Whether a child can be forked here: ``fork`` exists, and this is no daemonic process.

    A daemonic process (a ``multiprocessing.Pool`` worker) may not have children; there the
    work runs in the caller.
    """
    daemonic = multiprocessing.current_process().daemon
    return "fork" in multiprocessing.get_all_start_methods() and not daemonic


def _child(send: Connection, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The child's body: call ``function`` and send ``("ok", value)`` or ``("error", exc)``.

    The parent's signal handlers (a graceful stop on SIGTERM, Ctrl-C) are not the child's: it
    ignores SIGINT (the parent, interrupted, stops it) and dies quietly on SIGTERM. Both are
    blocked across the fork (:data:`STOP_SIGNALS`), so none reaches the parent's handlers here.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    records = _collect_logs()
    try:
        outcome: tuple[str, Any] = ("ok", function(*args))
    except Exception as error:  # an interrupt ends the child; the parent sees no result
        outcome = ("error", error)
    try:
        send.send((*outcome, records.records))
    except Exception as error:  # an unpicklable value or exception: its text, as an error
        send.send(("error", RuntimeError(f"{type(error).__name__}: {error}"), records.records))
    finally:
        send.close()


class _Collector(logging.Handler):
    """Keeps the child's log records (formatted, so that they pickle) for the parent."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.append(record)


def _collect_logs() -> _Collector:
    """Route the child's logging to a collector instead of the parent's inherited handlers."""
    collector = _Collector()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(collector)
    return collector


class Forked(Generic[T]):
    """``function(*args)`` running in a forked child; :meth:`result` waits for its value.

    Use it with ``contextlib.closing``: leaving stops a child whose result was not taken (an
    error in the parent's own work), so no child outlives the caller.

    Args:
        function: What to run (its exceptions are raised again by :meth:`result`).
        *args: Its arguments (inherited by the fork, not pickled).
        fork: False runs it in the caller instead (the fallback without ``fork``).
    """

    def __init__(self, function: Callable[..., T], *args: Any, fork: bool = True) -> None:
        self._value: tuple[str, Any] | None = None
        self._process: Any = None
        if not fork or not can_fork():
            try:
                self._value = ("ok", function(*args))
            except Exception as error:
                self._value = ("error", error)
            return
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(send, function, args), daemon=True)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            send.close()

    def done(self) -> bool:
        """Whether the value is ready (or the child ended): :meth:`result` would not wait."""
        return self._value is not None or self._receive.poll()

    def result(self) -> T:
        """Wait for the child; its return value.

        Raises:
            Exception: The child's own exception, as it raised it.
            RuntimeError: If the child ended without a result (killed, crashed).
        """
        if self._value is None:
            try:
                *outcome, records = self._receive.recv()
                self._value = (outcome[0], outcome[1])
                for record in records:  # logged by the child: logged here, as if by the caller
                    logging.getLogger(record.name).handle(record)
            except EOFError:
                ended = RuntimeError(self._ended_without_result())
                self._value = ("error", ended)
            finally:
                self._receive.close()
                self._process.join()
        kind, value = self._value
        if kind == "error":
            raise value
        return cast(T, value)

    def _ended_without_result(self) -> str:
        self._process.join()
        return f"a forked worker ended without a result (exit code {self._process.exitcode})"

    def close(self) -> None:
        """Stop the child if it is still running (its result is not wanted)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()
        if self._process is not None:
            self._receive.close()
