"""styleexp installed from a wheel, away from the repository: every config group, study and preset comes with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BIN, require_weights

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_runs_a_study_as_a_sweep_from_an_empty_folder(tmp_path):
    require_weights("vgg16", "caffe")
    require_weights("vgg19", "caffe")
    wheels, site, empty = tmp_path / "wheels", tmp_path / "site", tmp_path / "empty"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT], check=True, capture_output=True
    )
    # The test environment's packages, and styleexp from the wheel alone: its files, not the repository's.
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", site, *wheels.glob("styleexp-*.whl")],
        check=True,
        capture_output=True,
    )
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('styleexp.conf').origin)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == site / "styleexp" / "conf" / "__init__.py"

    # A study is a sweep by itself, no -m: its jobs (VGG-16 here, two poolings) land under ./outputs/sweeps/.
    done = subprocess.run(
        [
            BIN / "python",
            "-m",
            "styleexp",
            "study=network_pooling",
            "hydra.sweeper.params.network=vgg16",
            "size=32",
            "scales=null",
            "steps=1",
            "logger=none",
            "measures.networks=[]",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (sweep,) = (empty / "outputs" / "sweeps").iterdir()
    assert sweep.name.startswith("network_pooling_")
    assert sorted(path.name for path in sweep.iterdir() if (path / "final.png").is_file()) == [
        "pooling=avg",
        "pooling=max",
    ]
