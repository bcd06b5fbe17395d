"""The run folder as a contract: what a run writes about itself, and how everything else reads it.

``summary.json`` holds how the run ended and what it was made of (status, losses, config identity,
weights, versions, timings); sweeps, resume, reproduce, the report and the benchmark read it here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from styleexp.weights import Weights, file_sha256

# Keys that do not change the image a run computes: where it logs, how many CPU threads it uses,
# where this machine keeps the weights (their SHA-256 is recorded), how the result is scored and reported.
NOT_IDENTITY = ("hydra", "logger", "threads", "weights_dir", "measures", "objective", "report", "verbose")
SUMMARY = "summary.json"
CLAIM = ".claim"
_claims: dict[Path, int] = {}  # folders this process has claimed -> their locked claim file


def identity_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without ``NOT_IDENTITY`` keys: what determines the run's image, and nothing machine-specific."""
    kept = OmegaConf.masked_copy(cfg, [key for key in cfg if key not in NOT_IDENTITY])
    return OmegaConf.to_container(kept, resolve=True, enum_to_str=True)


def config_identity(cfg: DictConfig) -> str:
    """SHA-256 of ``identity_config``: equal identities, equal runs."""
    return hashlib.sha256(json.dumps(identity_config(cfg), sort_keys=True).encode()).hexdigest()


def read_summary(run_dir: Path) -> dict:
    """The ``summary.json`` of ``run_dir``, or {} if the run never wrote one."""
    try:
        return json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically: a reader sees the previous summary or this one, never half of one."""
    path = Path(run_dir) / SUMMARY
    partial = path.with_name(f".{SUMMARY}.{os.getpid()}.partial")
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(partial, path)
    return path


def completed_identity(run_dir: Path) -> str | None:
    """The config identity of the completed run in ``run_dir``, or None if it holds no completed run."""
    summary = read_summary(run_dir)
    return summary.get("config_sha256") if summary.get("status") == "completed" else None


def summary_value(summary: dict[str, Any], key: str) -> float | None:
    """A number of ``summary`` by its W&B key: ``measure/<name>``, ``loss/<name>``, or a top-level key; None if absent."""
    if key.startswith("measure/"):
        value = summary.get("measures", {}).get(key.removeprefix("measure/"))
    elif key.startswith("loss/"):
        value = summary.get("losses", {}).get(key)
    else:
        value = summary.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def objective_value(summary: dict[str, Any], objective: str | dict[str, float] | None) -> float | None:
    """The number a sweeper minimises: one summary key, or a weighted sum ``{key: weight}``; None if a key is missing."""
    if objective is None:
        return None
    weights = {objective: 1.0} if isinstance(objective, str) else dict(objective)
    values = {key: summary_value(summary, key) for key in weights}
    if any(value is None for value in values.values()):
        return None
    return sum(weight * values[key] for key, weight in weights.items())


def versions() -> dict[str, str | None]:
    """Package versions, and the styleexp commit when it runs from a git checkout."""
    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
        commit = git.stdout.strip() if git.returncode == 0 else None
    except OSError:  # no git on this machine
        commit = None
    return {
        "python": platform.python_version(),
        **{
            name: version(name)
            for name in ("styleexp", "torch", "torchvision", "pytorch-lightning", "hydra-core", "wandb")
        },
        "styleexp_commit": commit,
    }


def weights_facts(weights: Weights) -> dict[str, Any]:
    """Where a run's network weights came from, down to the file's SHA-256."""
    return {
        "network": weights.network,
        "source": weights.source,
        "preprocessing": weights.preprocessing,
        "file": str(weights.path) if weights.path else None,
        "sha256": file_sha256(weights.path) if weights.path else None,
    }


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
    fcntl.flock(descriptor, fcntl.LOCK_EX)
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
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None  # claimed once, and the claimant has finished or died
    except BlockingIOError:
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
        fcntl.flock(descriptor, fcntl.LOCK_SH)
    finally:
        os.close(descriptor)


class FreshRunDir(HydraCallback):
    """Claim a single run's folder before Hydra writes into it; refuse one that already holds files."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        if not claim(run_dir):
            print(
                f"styleexp: error: {run_dir} already holds a run; choose a new hydra.run.dir (or leave it unset)",
                file=sys.stderr,
            )
            sys.exit(2)
