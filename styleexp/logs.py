"""What the console shows and what a run folder's ``styleexp.log`` keeps.

styleexp speaks on the console through its own lines (``styleexp: ...``); the libraries' loggers
show only their warnings there unless ``verbose=true`` (``ConsoleFilter``, in ``conf/hydra/*_logging``).
``styleexp.log`` gets every console line of its run (``recorded``), the libraries' INFO lines and
styleexp's own debug detail. A warning is said once per sweep, whichever process its jobs run in (``warn_once``).
Nothing heavy here: Hydra imports this module to configure logging, before anything else of a run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

LOG_FILE = "styleexp.log"
FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
CONSOLE = "styleexp.console"  # the logger name the console's lines carry in styleexp.log
_console = logging.getLogger(CONSOLE)


class ConsoleFilter(logging.Filter):
    """A console handler's filter: the libraries' warnings and errors, their INFO lines only when ``verbose``, and no
    record of styleexp's own loggers, whose console lines styleexp prints itself."""

    def __init__(self, verbose: bool = False) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "styleexp" or record.name.startswith("styleexp."):
            return False
        return self.verbose or record.levelno >= logging.WARNING


class QuietOptuna(HydraCallback):
    """Hydra callback: Optuna's own console handler off, so that its lines go through the console filter (Optuna
    adds that handler on import, after Hydra has configured logging; a config cannot reach it)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "optuna" not in str(config.hydra.sweeper.get("_target_", "")).lower():
            return
        import optuna

        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()


class _Copy:
    """A console stream that also hands each line written to it to the log files: what a line redrawn in place (a
    progress bar) last showed, once it ends."""

    def __init__(self, stream: TextIO, level: int, files: Sequence[logging.Handler]) -> None:
        self.stream, self.level, self.files, self.line, self.busy = stream, level, files, "", False

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        if not self.busy:  # a handler that writes to the console must not be copied into itself
            self.busy = True
            try:
                *ended, rest = (self.line + text).split("\n")
                self.line = rest.rsplit("\r", 1)[-1]
                for line in ended:
                    if shown := line.rsplit("\r", 1)[-1].rstrip():
                        _write(self.files, self.level, shown)
            finally:
                self.busy = False
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _write(files: Sequence[logging.Handler], level: int, text: str) -> None:
    record = _console.makeRecord(CONSOLE, level, "", 0, text, None, None)
    for handler in files:
        handler.handle(record)


@contextmanager
def recorded(run_dirs: Sequence[Path] | None = None) -> Iterator[None]:
    """Copy the console's lines (stdout as INFO, stderr as WARNING) to the log files of the root logger, as Hydra's
    job logging set them up (``styleexp.log`` in the run folder), for a while.

    ``run_dirs``: log into each of these folders' ``styleexp.log`` instead (a batch's jobs, which Hydra
    prepared one after the other: its file handler is the last job's).
    """
    root = logging.getLogger()
    before = [handler for handler in root.handlers if isinstance(handler, logging.FileHandler)]
    files: list[logging.Handler] = before
    if run_dirs is not None:
        files = [logging.FileHandler(Path(run_dir) / LOG_FILE) for run_dir in run_dirs]
        for handler in files:
            handler.setFormatter(before[0].formatter if before else logging.Formatter(FORMAT))
        for handler in before:
            root.removeHandler(handler)
        for handler in files:
            root.addHandler(handler)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Copy(out, logging.INFO, files), _Copy(err, logging.WARNING, files)
    try:
        yield
    except Exception:  # a bug's traceback, which the console shows once this has returned
        _write(files, logging.ERROR, traceback.format_exc().rstrip())
        raise
    finally:
        sys.stdout, sys.stderr = out, err
        if run_dirs is not None:
            for handler in files:
                root.removeHandler(handler)
                handler.close()
            for handler in before:
                root.addHandler(handler)


def warn_once(text: str, sweep_dir: Path | None) -> None:
    """``styleexp: warning: TEXT`` on stderr; in a sweep (``sweep_dir``) only the first job to meet it says it, in
    whatever process it runs (a marker in ``SWEEP/.warned/``)."""
    if sweep_dir is not None:
        marker = Path(sweep_dir) / ".warned" / hashlib.sha256(text.encode()).hexdigest()[:16]
        marker.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    print(f"styleexp: warning: {text}", file=sys.stderr)
