"""Claiming folders: a run or job folder becomes one process's, atomically, and stays locked while it works there.

A claim is a ``.claim`` file (pid, host, start, facts) created with the folder itself, so a folder
that holds anything is never claimed again; its lock (``flock``, through the portable ``filelock``) says whether the
claimant still lives: the system lets go of it when the claimant ends, however.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from filelock import lock_descriptor
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

from styleexp.rundir import CLAIM, RESUME, config_identity

_claims: dict[Path, int] = {}  # folders this process has claimed -> their locked claim file


def claim(folder: Path, **facts: Any) -> bool:
    """Make ``folder`` this process's, atomically: True if it was new (or empty) or is already ours, False if not.

    The folder appears with its ``.claim`` file (pid, host, start, ``facts``) already in it and locked:
    it is built beside its place and renamed there, which fails if the place holds anything. The
    file stays as a record; its lock is held until ``release`` or until the process ends, however.
    """
    folder = Path(os.path.abspath(folder))
    if folder in _claims:
        return True
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".claiming", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    building.chmod(0o777 & ~umask)  # a folder like any other, not mkdtemp's private one
    descriptor = os.open(building / CLAIM, os.O_CREAT | os.O_WRONLY, 0o644)
    lock_descriptor(descriptor)
    os.write(
        descriptor,
        json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **facts}
        ).encode(),
    )
    try:
        os.rename(building, folder)
    except OSError:  # the folder holds files: an earlier run's, or a rival's claim
        os.close(descriptor)
        shutil.rmtree(building)
        return False
    _claims[folder] = descriptor
    return True


def reclaim(folder: Path) -> bool:
    """Take back a folder whose claimant has ended, to go on with its run there (a requeued or resumed job): True if
    it is now ours, False if another process still holds it or it was never claimed."""
    folder = Path(os.path.abspath(folder))
    if folder in _claims:
        return True
    try:
        descriptor = os.open(folder / CLAIM, os.O_RDWR)
    except OSError:
        return False
    if not lock_descriptor(descriptor, blocking=False):
        os.close(descriptor)
        return False
    _claims[folder] = descriptor
    return True


def resumable(folder: Path, identity: str) -> bool:
    """Whether ``folder`` holds the saved state (``checkpoints.py``) of an unfinished run of the config ``identity``."""
    try:
        claimed = json.loads((Path(folder) / CLAIM).read_text() or "{}")
    except (OSError, ValueError):
        return False
    return (Path(folder) / RESUME).is_file() and claimed.get("config_sha256") == identity


def release(folder: Path) -> None:
    """Let go of ``folder``'s claim (its record stays); nothing if this process does not hold it."""
    descriptor = _claims.pop(Path(os.path.abspath(folder)), None)
    if descriptor is not None:
        os.close(descriptor)


def live_claim(folder: Path) -> dict[str, Any] | None:
    """The facts of the claim another process holds on ``folder`` while it works there, or None."""
    path = Path(os.path.abspath(folder)) / CLAIM
    if path.parent in _claims:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        # A brief exclusive hold, let go at close: another prober at the same instant may take the claim for live.
        if lock_descriptor(descriptor, blocking=False):
            return None  # claimed once, and the claimant has finished or died
        return json.loads(path.read_text() or "{}")
    finally:
        os.close(descriptor)


def wait_for(folder: Path) -> None:
    """Block until no other process holds ``folder``'s claim."""
    try:
        descriptor = os.open(Path(folder) / CLAIM, os.O_RDONLY)
    except OSError:
        return
    try:
        lock_descriptor(descriptor)
    finally:
        os.close(descriptor)


class FreshRunDir(HydraCallback):
    """Claim a single run's folder before Hydra writes into it; refuse one that already holds files, unless they are
    an interrupted run of this config with its state saved."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir, identity = Path(config.hydra.run.dir), config_identity(config)
        # A run interrupted with its state saved is taken back to go on there (styleexp-resume RUN_DIR).
        if not claim(run_dir, config_sha256=identity) and not (resumable(run_dir, identity) and reclaim(run_dir)):
            print(
                f"styleexp: error: {run_dir} already holds a run; choose a new hydra.run.dir (or leave it unset)",
                file=sys.stderr,
            )
            sys.exit(2)
