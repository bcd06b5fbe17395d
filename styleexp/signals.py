"""How a styleexp process answers Ctrl-C, SIGTERM and a cluster's warning of preemption.

While a run works, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does; once its outcome is being
recorded both are ignored, so the record is whole and the exit code agrees with it. The warning
(SIGUSR2, submitit's ``SUBMITIT_PREEMPT_SIGNAL``) ends the batch at the end of its step, its state
saved (``checkpoints.py``); then the handler that was there before runs: submitit's, which
requeues the job.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_warned: list[int] = []  # the preemption signals received since the batch began


class Preempted(Exception):
    """The batch ended at a step's end because the process was warned of preemption; its state is saved."""


def preemption_signal() -> signal.Signals:
    """The signal that warns of preemption: submitit's choice (``SUBMITIT_PREEMPT_SIGNAL``), SIGUSR2 by default."""
    return signal.Signals[f"SIG{os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}"]


def preempted() -> bool:
    """Whether the process has been warned of preemption while the batch works."""
    return bool(_warned)


@contextmanager
def preemption() -> Iterator[None]:
    """Note the preemption signal while a batch works; then, if it came, pass it to the handler there before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signum = preemption_signal()
    _warned.clear()
    previous = signal.signal(signum, lambda received, frame: _warned.append(received))
    try:
        yield
    finally:
        signal.signal(signum, previous or signal.SIG_DFL)
        if _warned and callable(previous):
            _warned.clear()
            previous(signum, None)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise ``KeyboardInterrupt`` if either came: an interrupt
    in the middle of an import leaves modules half made (numpy's lazy attributes then recurse without end)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda received, frame: came.append(received)) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if came:
        raise KeyboardInterrupt


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
