"""The console commands. Each imports its entry point only when called, so that a Ctrl-C (or SIGTERM) at
any moment, even while Python is still importing torch, ends it with one line and exit 130."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable

from styleexp import signals


def _command(module: str, function: str) -> Callable[[], None]:
    def command() -> None:
        signal.signal(signal.SIGTERM, signals.interrupt)
        try:
            with signals.deferred():
                entry = getattr(importlib.import_module(module), function)
            entry()
        except KeyboardInterrupt:
            print("styleexp: interrupted", file=sys.stderr, flush=True)
            sys.stdout.flush()
            # Not sys.exit: an interrupt that landed in code run through PyRun_* (pybind11 does, importing
            # torch) marks the interpreter to die by SIGINT at exit, whatever exit code it was given.
            os._exit(130)

    command.__name__ = function
    return command


styleexp = _command("styleexp.cli", "app")
reproduce = _command("styleexp.reproduce", "reproduce_main")
resume = _command("styleexp.reproduce", "resume_main")
report = _command("styleexp.report.cli", "main")
bench = _command("styleexp.bench", "main")
gpu_check = _command("styleexp.bench.gpu", "main")
validate_measures = _command("styleexp.measures.cli", "main")
