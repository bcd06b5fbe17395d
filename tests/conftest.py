"""Shared fixtures and helpers. Real-behaviour tests use genuine weights from $STYLEEXP_WEIGHTS_DIR (CI:
../shared/weights).

Tests that launch processes or run many optimiser steps are marked ``slow``: ``pytest -m "not slow"``
is the fast tier. Tests marked ``gpu`` need a CUDA GPU and are skipped without one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from styleexp import weights
from styleexp.cli import CONFIG_DIR, app
from styleexp.job import Job
from styleexp.outcome import Outcome
from styleexp.run import run

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: a thread each, for them and the processes they start, rather than
    # four threads contending for two cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped where there is no CUDA GPU (``make gpu-check`` runs them on one)."""
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU: make gpu-check runs it on one"))


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


def require_weights(network: str, source: str) -> Path:
    """The real weights file, or a skip naming where it was looked for."""
    path = weights.weights_file(network, source)
    if not path.is_file():
        pytest.skip(f"{path} not found: set {weights.ENV_VAR} to a directory of ImageNet VGG weights")
    return path


def shared_image(name: str) -> Path:
    """A photograph or painting of ``../shared/images``, or a skip when the folder is not beside the checkout."""
    path = SHARED_IMAGES / name
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared test images are not beside the checkout")
    return path


@pytest.fixture
def photo() -> Path:
    return shared_image("tubingen.jpg")


def compose_config(*overrides: str, hydra: bool = False) -> DictConfig:
    """The real config composed with ``overrides`` (with its ``hydra`` node when asked)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def job_in(run_dir: Path, *overrides: str) -> Job:
    """The job the Hydra app would run in ``run_dir`` with ``overrides`` (Hydra's current job from then on)."""
    cfg = compose_config(*overrides, hydra=True)
    run_dir.mkdir(parents=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return Job.current(cfg)


def run_in_process(run_dir: Path, *overrides: str) -> Outcome:
    """Compose the real config with ``overrides`` and run it as the Hydra app would, in ``run_dir``."""
    return run(job_in(run_dir, *overrides).cfg)


def launch(*args: str, main: Callable[[], None] = app) -> int:
    """``styleexp ARGS`` (or another command's ``main``) in this process, as a user runs it; its exit code.

    What it prints is left to pytest's ``capsys``. Launching in-process spares each case the seconds a
    new Python process spends importing torch and Lightning.
    """
    saved = sys.argv
    sys.argv = ["styleexp", *args]
    try:
        main()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    finally:
        sys.argv = saved
    return 0


@dataclass
class Ran:
    """What a command run in this process returned and printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture) -> Callable[..., Ran]:
    """``styleexp ARGS`` (or another command's ``main=``) in this process, with what it printed."""

    def call(*args: str, main: Callable[[], None] = app) -> Ran:
        capsys.readouterr()
        code = launch(*args, main=main)
        printed = capsys.readouterr()
        return Ran(code, printed.out, printed.err)

    return call


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def styleexp(*args: str, command: str = "styleexp", timeout: int = 300) -> subprocess.CompletedProcess:
    """One of the installed commands, as a user runs it."""
    return subprocess.run([BIN / command, *args], capture_output=True, text=True, timeout=timeout)


def wandb_records(folder: Path) -> list[dict]:
    """Every record (run, history, summary, ...) of the offline W&B run in ``folder/wandb/``."""
    wandb_dir = next((Path(folder) / "wandb").glob("offline-run-*"))
    done = subprocess.run(
        [BIN / "wandb", "leet", "inspect", "--json", str(wandb_dir)], capture_output=True, text=True, timeout=120
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def wandb_summary(folder: Path) -> dict:
    """The config, summary and tags of the offline W&B run in ``folder/wandb/``, as ``wandb leet inspect --summary``
    gives them."""
    wandb_dir = next((Path(folder) / "wandb").glob("offline-run-*"))
    done = subprocess.run(
        [BIN / "wandb", "leet", "inspect", "--summary", "--json", str(wandb_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout)


def wandb_run_record(run_dir: Path) -> dict:
    """The ``run`` record (name, group, config) of the offline W&B run in ``run_dir``."""
    return next(record["run"] for record in wandb_records(run_dir) if record.get("type") == "run")


def job_folders(sweep_dir: Path) -> list[str]:
    return sorted(path.name for path in sweep_dir.iterdir() if path.is_dir() and not path.name.startswith("."))
