"""Fair measures in every run, the last step always logged, and the objective sweepers minimise."""

from __future__ import annotations

import csv
import itertools
import math

import pytest
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import read_write

from styleexp.errors import UserError
from styleexp.images import load_image
from styleexp.rundir import objective_value
from styleexp.sweeps import check_search

from .conftest import compose_config, job_folders, require_weights, run_in_process, summary

TINY = ["size=32", "steps=3"]


@pytest.fixture(autouse=True)
def _weights() -> None:
    for network, source in (("vgg16", "caffe"), ("vgg19", "caffe"), ("vgg16", "torchvision")):
        require_weights(network, source)


@pytest.mark.slow
def test_a_run_ends_with_its_measures_and_returns_its_objective(tmp_path):
    result = run_in_process(tmp_path / "run", "logger=none", *TINY, "objective=measure/style/centered")
    facts = summary(tmp_path / "run")
    assert set(facts["measures"]) >= {
        "style/gram",
        "content/relu4_2",
        "ssim",
        "vgg16_torchvision/style/gram",
        "portilla_simoncelli/style/ps",
    }
    assert all(math.isfinite(value) for value in facts["measures"].values())
    assert (
        facts["evaluators"] == ["vgg19_caffe", "vgg16_torchvision", "portilla_simoncelli"]
        and facts["measures_seconds"] > 0
    )
    # Each evaluator's cost, those always on too.
    assert set(facts["measures_seconds_each"]) == {
        *facts["evaluators"],
        "ssim",
        "chroma",
        "colour",
        "speckle",
        "layout_leakage",
    }
    assert result.objective == facts["measures"]["style/centered"]
    weighted = run_in_process(
        tmp_path / "weighted", "logger=none", *TINY, "objective={measure/style/gram: 2, measure/ssim: -1}"
    )
    measured = summary(tmp_path / "weighted")["measures"]
    assert weighted.objective == pytest.approx(2 * measured["style/gram"] - measured["ssim"])


@pytest.mark.slow
def test_measures_follow_the_mode_and_can_be_turned_off(tmp_path):
    run_in_process(
        tmp_path / "synthesis", "logger=none", *TINY, "content=null", "style=coffee", "measures.networks=[vgg19_caffe]"
    )
    assert set(summary(tmp_path / "synthesis")["measures"]) == {
        "style/gram",
        "style/centered",
        "style/both",
        "style/mean_std",
        "style/sliced_w",
        "colour",
        "speckle",
        "layout_leakage",
    }
    reconstruction = run_in_process(
        tmp_path / "reconstruction", "logger=none", *TINY, "style=null", "measures.networks=[vgg19_caffe]"
    )
    assert set(summary(tmp_path / "reconstruction")["measures"]) == {"content/relu4_2", "ssim", "chroma", "speckle"}
    assert (
        reconstruction.objective == summary(tmp_path / "reconstruction")["measures"]["content/relu4_2"]
    )  # the default there
    off = run_in_process(tmp_path / "off", "logger=none", *TINY, "measures.networks=[]")
    assert "measures" not in summary(tmp_path / "off") and off.objective is None
    failed = run_in_process(tmp_path / "failed", "logger=none", *TINY, "content=missing.jpg")
    assert failed.status == "failed" and failed.objective is None


def test_the_last_step_is_logged_with_the_measures_whatever_log_every(tmp_path):
    run_in_process(
        tmp_path / "run", "logger=csv", "size=32", "steps=5", "log_every=10", "measures.networks=[vgg19_caffe]"
    )
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["step"]) for row in rows] == [1, 5]
    assert rows[-1]["loss/total"] and float(rows[-1]["measure/style/gram"]) == pytest.approx(
        summary(tmp_path / "run")["measures"]["style/gram"]
    )
    assert "epoch" not in rows[0]
    assert objective_value(summary(tmp_path / "run"), "loss/total") == pytest.approx(float(rows[-1]["loss/total"]))


@pytest.mark.slow
def test_an_optuna_search_of_three_trials_goes_on_past_a_failed_trial(tmp_path, cli):
    sweep_dir = tmp_path / "search"
    done = cli(
        "search=loss_weights",
        "hydra.sweeper.n_trials=3",
        *TINY,
        "logger=none",
        "measures.networks=[vgg19_caffe]",
        "content=choice(missing.jpg,astronaut)",
        f"hydra.sweep.dir={sweep_dir}",
    )
    statuses = {job: summary(sweep_dir / job)["status"] for job in job_folders(sweep_dir)}
    assert len(statuses) == 3 and "failed" in statuses.values() and "completed" in statuses.values(), done.stderr
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    objective = {"measure/style/gram": 1.0, "measure/ssim": -1.0}
    completed = [
        objective_value(summary(sweep_dir / job), objective)
        for job, status in statuses.items()
        if status == "completed"
    ]
    assert results["best_value"] == pytest.approx(min(completed))
    assert set(results["best_params"]) == {"loss.style", "loss.tv", "content"}


@pytest.mark.slow
def test_the_loss_weight_search_tries_weights_that_give_different_images(tmp_path, cli):
    sweep_dir = tmp_path / "search"
    done = cli("search=loss_weights", "hydra.sweeper.n_trials=3", "size=32", "steps=15", "logger=none",
               "measures.networks=[vgg19_caffe]", f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    images = [load_image(sweep_dir / job / "final.png") for job in job_folders(sweep_dir)]
    assert len(images) == 3
    assert all(image.std() > 0.05 for image in images)  # no trial flattens the image to grey
    assert all((a - b).abs().mean() > 0.01 for a, b in itertools.combinations(images, 2))


def test_a_search_without_its_optuna_sweeper_is_refused():
    # What Hydra does when one launch sweeps over several searches (Hydra #2946): it falls back to its basic sweeper.
    cfg = compose_config("search=loss_weights", hydra=True)
    HydraConfig.instance().set_config(cfg)
    check_search()  # the search's own sweeper: fine
    with read_write(cfg.hydra):
        cfg.hydra.sweeper._target_ = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    HydraConfig.instance().set_config(cfg)
    with pytest.raises(UserError, match="choose one search per launch"):
        check_search()
