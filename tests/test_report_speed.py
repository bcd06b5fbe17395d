"""A report of a measured sweep is quick: it runs no evaluator network, and what it computes once (the measures'
validation, the change along an ordered key) is cached where the next report finds it.

The sweeps here are fabricated run folders (overrides, a summary with its measures, a final image),
as a finished sweep leaves them: reporting them takes seconds, with no optimiser step.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from styleexp import measures
from styleexp.images import save_image
from styleexp.measures import probes, validation_cache
from styleexp.measures.validation import Result
from styleexp.report.changes import CHANGE
from styleexp.report.cli import main as report_command
from styleexp.samples import load as load_sample
from styleexp.sweeps import job_name, planned_jobs, swept_keys

from .conftest import require_weights

REPORT = ("--wandb", "disabled")
VALIDATING, MEASURING = "validating the measures", "measuring how much each step"


def fabricate_sweep(sweep_dir: Path, *swept: str, seed: int = 0) -> Path:
    """A finished sweep of ``swept`` overrides (``gram=gram,centered``): every job completed and measured by
    ``vgg19_caffe`` (and those always on), each with its own 32-px output."""
    sweep_dir.mkdir(parents=True)
    multirun = {"hydra": {"sweeper": {"params": None}, "overrides": {"task": [*swept, "size=32"], "hydra": []}}}
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    generator = torch.Generator().manual_seed(seed)
    for i, overrides in enumerate(planned_jobs(sweep_dir)):
        folder = sweep_dir / job_name(overrides, swept_keys(sweep_dir))
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        save_image(torch.rand(3, 32, 32, generator=generator), folder / "final.png")
        scores = {name: 0.1 * (i + 1) for name in ("style/gram", "style/centered", "colour", "speckle")}
        summary = {"status": "completed", "mode": "synthesis", "measures": scores, "evaluators": ["vgg19_caffe"]}
        (folder / "summary.json").write_text(json.dumps({**summary, "message": "done"}))
    return sweep_dir


@pytest.fixture
def network_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of an evaluator's entry points (``represent``, ``measure`` and the distances), by evaluator: what a
    report of a measured sweep must not make."""
    calls: list[str] = []
    kinds = {kind for evaluator in measures.EVALUATORS.values() for kind in evaluator.__mro__}
    for kind in kinds - {object}:
        for entry in ("represent", "measure", "style_distances", "content_distances"):
            if entry in vars(kind):
                monkeypatch.setattr(kind, entry, _counted(getattr(kind, entry), calls))
    return calls


def _counted(function: Callable, calls: list[str]) -> Callable:
    def call(self, *args, **kwargs):
        calls.append(self.name)
        return function(self, *args, **kwargs)

    return call


@pytest.fixture
def _cache_and_few_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold validation cache of this test's own, and the validation on four small samples: seconds, not a minute
    (test_validation.py validates on all of them)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    few = ("astronaut", "coffee", "checkers", "rainbow_circles")
    monkeypatch.setattr(
        probes, "bundled_images", lambda size=probes.SIZE: {name: load_sample(name, 48) for name in few}
    )
    require_weights("vgg19", "caffe")


def read_table(folder: Path) -> list[dict[str, str]]:
    """The run table of the report in ``folder``: a sweep's own (``report/``) or a joint one."""
    with open(folder / "report" / "table.csv" if (folder / "report").is_dir() else folder / "table.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.usefixtures("_cache_and_few_samples")
def test_a_report_of_a_measured_sweep_runs_no_evaluator_network(tmp_path, network_calls, cli):
    first = fabricate_sweep(tmp_path / "first", "gram=gram,centered", "style=checkers,coffee")
    reported = cli(str(first), *REPORT, main=report_command)
    assert reported.returncode == 0, reported.stderr
    assert VALIDATING in reported.stderr and "vgg19_caffe (1 of 2)" in reported.stderr and network_calls
    network_calls.clear()
    # Another sweep, of other runs: the validation is keyed by its images and evaluators, not by the sweep.
    second = fabricate_sweep(tmp_path / "second", "gram=gram,both", "seed=0,1,2", seed=1)
    reported = cli(str(second), *REPORT, main=report_command)
    assert reported.returncode == 0, reported.stderr
    assert network_calls == [] and reported.stderr == ""
    assert (second / "report" / "validation.csv").read_text() == (first / "report" / "validation.csv").read_text()
    assert len(read_table(second)) == 6 and (second / "report" / "index.html").is_file()


@pytest.mark.usefixtures("_cache_and_few_samples")
def test_the_change_along_an_ordered_key_is_measured_once_and_then_read_from_the_sweep_folder(
    tmp_path, network_calls, cli
):
    sweep = fabricate_sweep(tmp_path / "sweep", "style_layers.first=1,2,3", "style=checkers,coffee")
    reported = cli(str(sweep), *REPORT, "--no-validation", main=report_command)
    assert reported.returncode == 0, reported.stderr
    assert f"{MEASURING} of style_layers.first changes the output, with vgg19_caffe (4 pairs" in reported.stderr
    assert network_calls.count("vgg19_caffe") == 6 + 4  # each output represented once, each pair compared once
    first = {row["run"]: row[CHANGE] for row in read_table(sweep)}
    assert sum(value != "" for value in first.values()) == 4
    network_calls.clear()
    shutil.rmtree(sweep / "report")  # the cache is the sweep's, not the old report's
    reported = cli(str(sweep), *REPORT, "--no-validation", main=report_command)
    assert reported.returncode == 0 and reported.stderr == "" and network_calls == []
    assert {row["run"]: row[CHANGE] for row in read_table(sweep)} == first
    # A joint report with another sweep of the same job names: only the other sweep's changes are new.
    other = fabricate_sweep(tmp_path / "other", "style_layers.first=1,2,3", "style=checkers,coffee", seed=1)
    out = tmp_path / "joint"
    joint = cli(str(sweep), str(other), "--out", str(out), *REPORT, "--no-validation", main=report_command)
    assert joint.returncode == 0 and "(4 pairs of runs" in joint.stderr, joint.stderr
    rows = read_table(out)
    assert {row["run"]: row[CHANGE] for row in rows if row["sweep"] == "sweep"} == first
    others = {row["run"]: row[CHANGE] for row in rows if row["sweep"] == "other"}
    assert others.keys() == first.keys() and all(others[run] != first[run] for run in first if first[run])


def _fake_validation(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    """``validate`` as a record of what it was asked (evaluator, kinds), each measure passing; no evaluator built."""
    asked = []

    def validate(images, judges, kinds):
        asked.extend((judge.name, tuple(kinds)) for judge in judges)
        return [
            Result(f"{judge.name}/{measure}", "identity", 1, 1)
            for judge in judges
            for kind in kinds
            for measure in getattr(judge, kind)
        ]

    monkeypatch.setattr(validation_cache, "validate", validate)
    monkeypatch.setattr(validation_cache, "load", lambda name, weights_dir=None: measures.EVALUATORS[name])
    return asked


def test_a_missing_validation_entry_is_computed_once_saying_so_and_then_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    asked = _fake_validation(monkeypatch)
    images = {"a": torch.zeros(3, 8, 8), "b": torch.ones(3, 8, 8)}
    results = validation_cache.cached(images, ["vgg19_caffe"], ["style"])
    assert asked == [("vgg19_caffe", ("style",)), ("colour", ("style",))]  # those always on, with style measures
    assert VALIDATING in capsys.readouterr().err and {r.measure for r in results} >= {"vgg19_caffe/style/gram"}
    asked.clear()
    assert validation_cache.cached(images, ["vgg19_caffe"], ["style"]) == results
    assert asked == [] and capsys.readouterr().err == ""  # the second report validates nothing, silently
    # Each evaluator's entry is its own: a report with one more evaluator computes only that one's.
    validation_cache.cached(images, ["vgg16_torchvision", "vgg19_caffe"], ["style"])
    assert asked == [("vgg16_torchvision", ("style",))]
    asked.clear()
    # Keyed by the images' contents, not their names or order; another image is another entry.
    validation_cache.cached({"B": images["b"], "A": images["a"]}, ["vgg19_caffe"], ["style"])
    assert asked == []
    validation_cache.cached({**images, "c": torch.full((3, 8, 8), 0.5)}, ["vgg19_caffe"], ["style"])
    assert asked == [("vgg19_caffe", ("style",)), ("colour", ("style",))]
    asked.clear()
    # Content measures too: only they are computed, once for every evaluator that has them.
    validation_cache.cached(images, ["vgg19_caffe"], ["style", "content"])
    assert asked == [("vgg19_caffe", ("content",)), ("chroma", ("content",)), ("ssim", ("content",))]


def test_a_new_version_of_the_measures_computes_the_validation_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    asked = _fake_validation(monkeypatch)
    images = {"a": torch.zeros(3, 8, 8), "b": torch.ones(3, 8, 8)}
    validation_cache.cached(images, ["portilla_simoncelli"], ["style"])
    monkeypatch.setattr(validation_cache, "measures_version", lambda: "another version")
    validation_cache.cached(images, ["portilla_simoncelli"], ["style"])
    assert [name for name, _ in asked].count("portilla_simoncelli") == 2
    # The statistics and the networks the measures compute with are part of their version.
    sources = {path.relative_to(Path(measures.__file__).parents[1]) for path in validation_cache.version_sources()}
    assert {Path("statistics.py"), Path("extractors/vgg.py"), Path("measures/network.py")} <= sources
