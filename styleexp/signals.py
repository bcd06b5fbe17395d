"""How a styleexp process answers Ctrl-C and SIGTERM: the same way, as an interruption, never a traceback.

While a run works, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does; once its outcome is being
recorded both are ignored, so the record is whole and the exit code agrees with it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def interrupt(signum: int, frame: object) -> None:
    """A signal handler that turns the signal into ``KeyboardInterrupt``."""
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C for a while, where Python allows a handler (the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)


@contextmanager
def held() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM for a while (in the main thread; elsewhere Python delivers none)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignore() -> None:
    """Ignore Ctrl-C and SIGTERM from now on: the process has its outcome and only closes down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
