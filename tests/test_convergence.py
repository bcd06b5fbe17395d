"""Runs that stop when converged, coarse-to-fine scales, the colour measure and the report's study columns."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from styleexp import measures, samples
from styleexp.build import build, prepare
from styleexp.errors import UserError
from styleexp.images import save_image
from styleexp.measures.colour import ColourEvaluator
from styleexp.measures.speckle import speckle
from styleexp.report import CHANGE, changes, compare
from styleexp.report.load import Run

from .conftest import compose_config, job_folders, require_weights, run_in_process, summary

SYNTHESIS = [
    "logger=none",
    "content=null",
    "style=checkers",
    "network=vgg16",
    "style_layers=gatys",
    "measures.networks=[]",
]


@pytest.fixture
def _weights() -> None:
    require_weights("vgg16", "caffe")


@pytest.mark.slow
def test_a_run_stops_once_converged_and_runs_to_its_cap_without_the_rule(tmp_path, _weights):
    run_in_process(tmp_path / "rule", *SYNTHESIS, "size=32", "steps=300", "stop.rtol=0.05", "stop.window=5")
    stopped = summary(tmp_path / "rule")
    assert stopped["converged"] is True and 5 < stopped["steps"] < 300 and stopped["max_steps"] == 300
    run_in_process(tmp_path / "off", *SYNTHESIS, "size=32", "steps=12", "stop.rtol=null")
    capped = summary(tmp_path / "off")
    assert capped["converged"] is False and capped["steps"] == 12


def test_coarse_to_fine_runs_each_scale_on_one_step_axis(tmp_path, _weights):
    run_dir = tmp_path / "run"
    run_in_process(
        run_dir,
        *SYNTHESIS[1:],
        "logger=csv",
        "size=48",
        "scales=[32,48]",
        "steps=[6,4]",
        "stop.rtol=null",
        "log_every=2",
        "image_every=2",
    )
    facts = summary(run_dir)
    assert [(scale["size"], scale["steps"]) for scale in facts["scales"]] == [(32, 6), (48, 4)]
    assert facts["steps"] == 10 and facts["image_size"] == [48, 48]
    with open(run_dir / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["loss/total"]]
    assert [(int(row["step"]), int(row["scale"])) for row in rows] == [
        (1, 32),
        (2, 32),
        (4, 32),
        (6, 32),
        (7, 48),
        (8, 48),
        (10, 48),
    ]
    assert {p.name for p in (run_dir / "images").iterdir()} >= {
        "scale_32.png",
        "scale_48.png",
        "step_000006.png",
        "step_000010.png",
    }


def test_coarse_scales_read_only_the_style_layers_that_see_enough_positions_there(tmp_path, _weights):
    run_dir = tmp_path / "run"
    run_in_process(run_dir, *SYNTHESIS, "style_layers=all_relu", "size=64", "scales=[32,64]", "steps=[2,2]",
                   "stop.rtol=null", "coarse_layers=enough")  # fmt: skip
    coarse, fine = summary(run_dir)["scales"]
    # At 32 px relu3_1 sees 8 x 8 = 64 positions for 256 channels; at 64 px 256, enough (relu4_1: 64 for 512, not).
    assert coarse["style_layers"] == ["relu1_1", "relu1_2", "relu2_1", "relu2_2"]
    assert len(fine["style_layers"]) == 13


def test_the_tv_unit_of_the_first_scale_carries_to_the_next(_weights):
    cfg = compose_config(*SYNTHESIS, "size=48", "scales=[32,48]")
    network = prepare(cfg)
    coarse = build([cfg], network, 32).module
    for _ in range(5):
        coarse.step(coarse.configure_optimizers())
    start = coarse.image.detach()[0]
    carried, own = (build([cfg], network, 48, starts=[start]).module for _ in range(2))
    carried.use_units(coarse.units())
    carried.losses(), own.losses()
    # A unit taken at the second scale, from an image that already matches better, would make TV weigh less.
    assert torch.equal(carried.units()["tv"], coarse.units()["tv"])
    assert carried.units()["tv"].item() > own.units()["tv"].item()


def test_scales_and_steps_that_do_not_fit_are_refused(tmp_path):
    cases = (
        (["size=64", "scales=[32,48]"], "must grow to size=64"),
        (["size=64", "scales=[64,32]"], "must grow to size=64"),
        (["size=64", "scales=[32,64]", "steps=[5,5,5]"], "3 entries for 2 scales"),
    )
    for i, (overrides, expected) in enumerate(cases):
        result = run_in_process(tmp_path / str(i), *SYNTHESIS, *overrides)
        assert result.status == "failed" and isinstance(result.error, UserError) and expected in str(result.error)


@pytest.mark.slow
def test_each_scales_targets_come_from_the_sweeps_cache(tmp_path, _weights, cli):
    sweep = tmp_path / "sweep"
    done = cli("-m", *SYNTHESIS, "size=48", "scales=[32,48]", "steps=2", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    targets = sorted(
        (summary(sweep / job)["targets"]["computed"], summary(sweep / job)["targets"]["reused"])
        for job in job_folders(sweep)
    )
    assert targets == [(0, 10), (10, 0)]  # five style layers at each of two scales, computed once


def test_the_colour_measure_is_0_for_the_same_colours_and_grows_with_a_colour_shift():
    colour = ColourEvaluator()
    image = samples.load("coffee", 64)
    reference = colour.represent(image)
    assert colour.style_distances(reference, colour.represent(image.flip(2)))["colour"] == 0  # layout-free
    shifted = [
        colour.style_distances(
            colour.represent((image + torch.tensor([s, 0, -s]).view(3, 1, 1)).clamp(0, 1)), reference
        )["colour"]
        for s in (0.02, 0.05, 0.1, 0.2)
    ]
    assert shifted == sorted(shifted) and shifted[0] > 0


def test_speckle_is_1_for_an_input_against_itself_and_grows_with_noise():
    image = samples.load("coffee", 64)
    assert speckle(image, [image]) == pytest.approx(1)
    noisy = [
        speckle((image + s * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1), [image])
        for s in (0.02, 0.05, 0.1)
    ]
    assert noisy == sorted(noisy) and noisy[0] > 1


class MeanGrey(measures.Evaluator):
    """A stand-in evaluator: an image's mean grey level; its style distance is the difference."""

    name = "grey"
    style = ["style/gram"]

    def represent(self, image: torch.Tensor) -> float:
        return float(image.mean())

    def style_distances(self, output: float, style: float) -> dict[str, float]:
        return {"style/gram": abs(output - style)}


def _run(tmp_path: Path, name: str, choices: dict[str, str], grey: float) -> Run:
    folder = tmp_path / name
    folder.mkdir()
    save_image(torch.full((3, 8, 8), grey), folder / "final.png")
    return Run(name, folder, choices, {"status": "completed", "mode": "synthesis"})


def test_the_change_from_the_previous_value_compares_neighbouring_outputs(tmp_path):
    keys = {"style": ["a", "b"], "style_layers.first": ["1", "2", "3"]}
    greys = {("a", "1"): 0.2, ("a", "2"): 0.6, ("a", "3"): 0.65, ("b", "1"): 0.9, ("b", "3"): 0.1}  # b has no k=2
    runs = [_run(tmp_path, f"{s}{k}", {"style": s, "style_layers.first": k}, g) for (s, k), g in greys.items()]
    changes(runs, keys, "mean_grey", MeanGrey)
    by_name = {run.name: run.scores.get(CHANGE) for run in runs}
    assert (
        by_name["a1"] is None and by_name["b1"] is None and by_name["b3"] is None
    )  # no previous output to compare with
    assert by_name["a2"] == pytest.approx(0.4, abs=0.01) and by_name["a3"] == pytest.approx(0.05, abs=0.01)


def test_a_rerun_finds_the_changes_in_its_cache_and_loads_no_evaluator(tmp_path):
    keys = {"style_layers.first": ["1", "2"]}
    runs = [_run(tmp_path, k, {"style_layers.first": k}, grey) for k, grey in (("1", 0.2), ("2", 0.6))]
    cache = tmp_path / "report" / "changes.json"
    changes(runs, keys, "mean_grey", MeanGrey, cache)
    assert cache.is_file()
    again = [Run(run.name, run.folder, run.choices, run.summary) for run in runs]
    changes(again, keys, "mean_grey", lambda: pytest.fail("the evaluator was loaded"), cache)
    assert again[1].scores[CHANGE] == runs[1].scores[CHANGE] == pytest.approx(0.4, abs=0.01)
    save_image(torch.full((3, 8, 8), 0.9), runs[1].folder / "final.png")  # another image: computed anew
    changed = [Run(run.name, run.folder, run.choices, run.summary) for run in runs]
    changes(changed, keys, "mean_grey", MeanGrey, cache)
    assert changed[1].scores[CHANGE] == pytest.approx(0.7, abs=0.01)


def test_a_ranking_puts_the_best_first_whatever_the_measures_direction(tmp_path):
    runs = [
        Run(name, tmp_path, {}, {"status": "completed"}, {"style/ps": value, "ssim": value})
        for name, value in (("x", 0.5), ("y", 0.1), ("z", 0.9))
    ]
    assert [run.name for run in compare.ranked(runs, "style/ps")] == ["y", "x", "z"]
    assert [run.name for run in compare.ranked(runs, "ssim")] == ["z", "x", "y"]


def test_a_sweep_over_input_images_alone_draws_no_paired_conclusions(tmp_path):
    runs = [
        Run(style, tmp_path, {"style": style, "seed": "0"}, {"status": "completed"}, {"style/ps": value})
        for style, value in (("a", 0.5), ("b", 0.1))
    ]
    keys = {"style": ["a", "b"], "seed": ["0"]}
    assert compare.question(keys, ["seed"]) is None and compare.paired(runs, keys, ["seed"], "style/ps") == []
    assert compare.question({"style": ["a", "b"], "gram": ["gram", "both"]}, ["seed"]) == "gram"


def test_the_mostly_style_study_ranks_by_a_texture_distance():
    cfg = compose_config("study=mostly_style", hydra=True)
    assert cfg.report.rank_by == "portilla_simoncelli/style/ps" and cfg.content is None
    assert len(str(cfg.hydra.sweeper.params.style).split(",")) >= 9
