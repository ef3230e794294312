"""SIGTERM stops a run the way Ctrl-C does, and neither splits a step that must happen whole.

Python turns SIGINT into :class:`KeyboardInterrupt`; SIGTERM kills the process without running
any clean-up, which left hidden partial files behind. :func:`raise_on_sigterm` makes SIGTERM
raise :class:`~glacier.errors.RunInterrupted` instead, so staging folders and partial files are
removed on the way out and the task ends with one line saying what was kept.
:func:`signals_deferred` holds both signals while a publish step renames files into place.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from glacier.errors import RunInterrupted

HELD = (signal.SIGINT, signal.SIGTERM)
EXIT_SIGNAL_BASE = 128  # a process ended by signal N exits with 128 + N (130 SIGINT, 143 SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise RunInterrupted(signum)


def raise_on_sigterm() -> None:
    """Make SIGTERM raise :class:`RunInterrupted` in the main thread (a no-op elsewhere)."""
    if _in_main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def _act_on(signum: int, handler: object) -> None:
    """Do what ``handler`` (a signal's handler before it was held) would have done."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL or handler is None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise RunInterrupted(signum)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs, then act on the first one received.

    Only the main thread receives signals, so elsewhere this does nothing (a signal then
    raises in the main thread, which waits for this block's thread before it cleans up).

    Yields:
        Nothing; the block runs with the signals held.
    """
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    previous: dict[int, object] = {signum: signal.getsignal(signum) for signum in HELD}

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    for signum in HELD:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum in HELD:  # a handler installed from C reads as None: restore the default
            handler = previous[signum]
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # type: ignore[arg-type]
        if received:
            _act_on(received[0], previous[received[0]])
