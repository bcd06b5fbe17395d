"""styleexp installed from a wheel, away from the repository: every config group, study and preset comes with it, and
its licence; every package it imports is declared, in a range the installed versions satisfy."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def declared() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    return [
        Requirement(line) for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]


def test_every_imported_package_is_declared_in_a_range_the_installed_version_satisfies():
    requirements = declared()
    names = {canonicalize_name(requirement.name) for requirement in requirements}
    own = {"styleexp", "hydra_plugins"}
    imported: dict[str, set[str]] = {}
    for path in [*(ROOT / "styleexp").rglob("*.py"), *(ROOT / "hydra_plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in own:
                    imported.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    providers = packages_distributions()
    undeclared = {
        top: sorted(files)
        for top, files in imported.items()
        if not names & {canonicalize_name(dist) for dist in providers.get(top, [])}
    }
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"
    for requirement in requirements:  # what `pip check` asks of styleexp, without reinstalling it
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            pytest.fail(f"{requirement} is declared but not installed")
        assert requirement.specifier.contains(installed, prereleases=True), (str(requirement), installed)
    # torch.load reads weights only by default from 2.6 on: no older loader is allowed.
    torch = next(requirement for requirement in requirements if requirement.name == "torch")
    assert not torch.specifier.contains("2.5.1") and torch.specifier.contains("2.6.0")


@pytest.mark.slow
def test_the_wheel_and_the_sdist_carry_the_mit_licence_and_say_so_in_their_metadata(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path, ROOT], check=True, capture_output=True
    )
    sdist = "from setuptools import build_meta; import sys; print(build_meta.build_sdist(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", sdist, tmp_path], cwd=ROOT, check=True, capture_output=True)
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Permission is hereby granted, free of charge" in licence
    (wheel,), (archive,) = tmp_path.glob("styleexp-*.whl"), tmp_path.glob("styleexp-*.tar.gz")
    with zipfile.ZipFile(wheel) as files:
        info = next(name for name in files.namelist() if name.endswith(".dist-info/METADATA"))
        assert files.read(info.replace("METADATA", "licenses/LICENSE")).decode() == licence
        metadata = Parser().parsestr(files.read(info).decode())
    with tarfile.open(archive) as files:
        assert files.extractfile(f"{archive.name.removesuffix('.tar.gz')}/LICENSE").read().decode() == licence
    assert metadata["License-Expression"] == "MIT" and metadata["License-File"] == "LICENSE"
    assert metadata["Author"] and metadata["Requires-Python"] == ">=3.10"
    classifiers = metadata.get_all("Classifier")
    assert "Intended Audience :: Science/Research" in classifiers
    assert not any(classifier.startswith("License ::") for classifier in classifiers)  # an error beside an SPDX licence
    requires = [Requirement(line) for line in metadata.get_all("Requires-Dist") if "extra ==" not in line]
    assert {str(r) for r in requires} == {str(r) for r in declared()}
