"""The validation every fair measure passes or visibly fails, and the evaluators' rank agreement."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from styleexp import measures, samples
from styleexp.measures import probes, validation
from styleexp.measures.cli import main as validate_measures
from styleexp.report import compare
from styleexp.report.load import Run

from .conftest import require_weights


class RandomEvaluator(measures.Evaluator):
    """A measure that knows nothing: every distance is a random number."""

    name = "random"
    style = ["style/random"]
    content = ["content/random"]

    def __init__(self) -> None:
        self.draw = random.Random(0)

    def represent(self, image: torch.Tensor) -> None:
        return None

    def style_distances(self, output, style) -> dict[str, float]:
        return {"style/random": self.draw.random()}

    def content_distances(self, output, content) -> dict[str, float]:
        return {"content/random": self.draw.random()}


class MeanColourEvaluator(measures.Evaluator):
    """A crude but real measure: the distance between two images' mean colours."""

    name = "colour"
    style = ["style/colour"]
    symmetric = {"style/colour"}

    def represent(self, image: torch.Tensor) -> torch.Tensor:
        return image.mean(dim=(1, 2))

    def style_distances(self, output, style) -> dict[str, float]:
        return {"style/colour": float((output - style).norm())}


def _accuracy(results: list[validation.Result], measure: str, test: str) -> float:
    return next(r.accuracy for r in results if r.measure == measure and r.test == test)


def test_a_measure_that_knows_nothing_scores_chance_and_a_real_one_does_better():
    images = probes.bundled_images(48)
    results = validation.validate(images, [RandomEvaluator(), MeanColourEvaluator()])
    trials = {(r.measure, r.test): r.trials for r in results}
    count = len(images)
    assert trials["random/style/random", "discrimination"] == count * 2 * (count - 1) * 2  # every anchor, other half
    assert trials["random/style/random", "layout"] == count * probes.OTHERS * len(probes.SHIFTS)
    assert trials["random/style/random", "texture"] == 3 * 12 * 8  # 3 textures: 12 pairs of quarters, 8 negatives
    assert 0.4 < _accuracy(results, "random/style/random", "discrimination") < 0.6
    assert 0.4 < _accuracy(results, "random/content/random", "shift") < 0.6
    assert 0.25 < _accuracy(results, "random/style/random", "noise") < 0.75
    assert _accuracy(results, "random/style/random", "identity") == 0
    assert (
        _accuracy(results, "colour/style/colour", "identity") == 1
        and _accuracy(results, "colour/style/colour", "symmetry") == 1
    )
    # The mean colour tells images apart but not textures of one mean colour: weak, like the random measure.
    assert _accuracy(results, "colour/style/colour", "discrimination") > 0.7
    assert _accuracy(results, "colour/style/colour", "layout") < 0.1
    assert set(validation.reasons(results)) == {"random/style/random", "random/content/random", "colour/style/colour"}


def test_the_negative_controls_fail_every_style_test_that_separates_textures():
    results = validation.controls(probes.bundled_images(48))
    for control in ("control/style/mean_colour", "control/style/pixels"):
        for test in ("layout", "texture"):
            assert _accuracy(results, control, test) < validation.THRESHOLD, (control, test)
    assert _accuracy(results, "control/content/mean_colour", "recolour") < validation.THRESHOLD
    assert set(validation.reasons(results)) == {
        "control/style/mean_colour", "control/style/pixels", "control/content/mean_colour"
    }  # fmt: skip


@pytest.mark.slow
def test_a_style_measure_passes_the_circular_shift_invariance_and_the_pixel_distance_does_not():
    require_weights("vgg16", "torchvision")
    images = probes.bundled_images(48)
    results = validation.validate(images, [measures.load("vgg16_torchvision")], kinds=["style"])
    results += validation.controls(images, ["style"])
    assert _accuracy(results, "vgg16_torchvision/style/gram", "layout") >= validation.THRESHOLD
    assert _accuracy(results, "control/style/pixels", "layout") < validation.THRESHOLD
    assert "vgg16_torchvision/style/gram" not in validation.reasons(results)


def _result(measure: str, **accuracies: float) -> list[validation.Result]:
    return [validation.Result(measure, test, round(100 * a), 100) for test, a in accuracies.items()]


def test_a_measure_is_weak_below_the_threshold_or_where_it_never_beats_the_controls():
    controls = _result("control/style/mean_colour", discrimination=0.9, layout=0.0) + _result(
        "control/style/pixels", discrimination=0.6, layout=0.8
    )
    strong = _result("a/style/gram", discrimination=0.95, layout=0.85)
    below = _result("b/style/gram", discrimination=0.95, layout=0.6)
    copycat = _result("c/style/gram", discrimination=0.9, layout=0.8)  # as good as a control everywhere, no better
    reasons = validation.reasons(controls + strong + below + copycat)
    assert "a/style/gram" not in reasons
    assert reasons["b/style/gram"] == "below 0.75 on layout 0.60"
    assert reasons["c/style/gram"].startswith("no better than its controls")
    assert "layout (0.80 against 0.80)" in reasons["c/style/gram"]
    assert reasons["control/style/mean_colour"] == "below 0.75 on layout 0.00"
    assert validation.reasons(strong + below) == {"b/style/gram": "below 0.75 on layout 0.60"}  # no controls: no bar


def test_the_texture_statistics_spread_is_fitted_on_images_the_validation_never_sees():
    assert set(probes.REFERENCE) <= set(samples.SAMPLES)
    assert not set(probes.REFERENCE) & set(probes.bundled_images(16))
    assert {"brick", "gravel", "immunohistochemistry"} <= set(probes.bundled_images(16))  # textures to validate on
    assert len(probes.textures(32)) == 3


def test_test_images_are_split_and_corrupted_as_described():
    image = torch.rand(3, 40, 60)
    left, right = probes.halves(image)
    assert left.shape == right.shape == (3, 40, 30) and torch.equal(torch.cat([left, right], 2), image)
    top, bottom = probes.halves(image.transpose(1, 2))
    assert top.shape == (3, 30, 40)
    assert (probes.blurred(image, 2.0) - image).abs().mean() > (probes.blurred(image, 0.5) - image).abs().mean()
    a, b = probes.shifted_crops(image)
    assert a.shape == b.shape and torch.equal(a[:, 2:, 4:], b[:, : a.shape[1] - 2, : a.shape[2] - 4])
    quarters = probes.quadrants(image)
    assert len(quarters) == 4 and torch.equal(quarters[3], image[:, 20:, 30:])
    assert probes.others(0, 9) == [1, 2, 3, 4] and probes.others(2, 3) == [0, 1]


def test_a_periodic_component_rolls_without_seams_and_keeps_the_picture():
    photo = probes.square(samples.load("coffee", 64), 64)
    periodic = probes.periodic(photo)
    seam = (periodic[:, 0] - periodic[:, -1]).abs().mean()
    assert seam < 0.1 * (photo[:, 0] - photo[:, -1]).abs().mean()
    assert seam < 2 * (periodic[:, 1:] - periodic[:, :-1]).abs().mean()  # no larger than any other step down
    assert (periodic - photo).abs().mean() < 0.1
    moved = probes.circular_shifts(periodic)
    assert len(moved) == len(probes.SHIFTS) and torch.equal(moved[0], periodic.roll((32, 32), (1, 2)))


def test_recoloured_images_take_the_mean_colour_or_the_palette_asked_for():
    brick, coffee = (probes.square(samples.load(name, 64), 64) for name in ("brick", "coffee"))
    recoloured = probes.with_mean_colour(brick, coffee)
    assert torch.allclose(recoloured.mean(dim=(1, 2)), coffee.mean(dim=(1, 2)), atol=1e-5)
    assert recoloured.min() >= 0 and recoloured.max() <= 1
    assert torch.corrcoef(torch.stack([recoloured[0].flatten(), brick[0].flatten()]))[0, 1] > 0.99  # its texture
    cat = probes.square(samples.load("chelsea", 64), 64)
    palette = probes.with_palette(cat, coffee)
    assert palette.shape == cat.shape
    deciles = torch.linspace(0.1, 0.9, 9)
    assert torch.allclose(
        palette.flatten(1).quantile(deciles, dim=1), coffee.flatten(1).quantile(deciles, dim=1), atol=0.03
    )


@pytest.mark.slow
def test_the_command_validates_every_measure_on_the_bundled_samples(tmp_path, cli):
    require_weights("vgg19", "caffe")
    done = cli("--evaluators", "vgg19_caffe", "portilla_simoncelli", "--size", "48", "--out", str(tmp_path),
               main=validate_measures)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "validation.csv") as f:
        rows = list(csv.DictReader(f))
    tests = {(row["measure"], row["test"]): row for row in rows}
    assert {measure for measure, _ in tests} == {
        "vgg19_caffe/style/gram",
        "vgg19_caffe/style/centered",
        "vgg19_caffe/style/both",
        "vgg19_caffe/style/mean_std",
        "vgg19_caffe/style/sliced_w",
        "vgg19_caffe/content/relu4_2",
        "portilla_simoncelli/style/ps",
        "ssim/ssim",
        "chroma/chroma",
        "colour/colour",
        "control/style/mean_colour",
        "control/style/pixels",
        "control/content/mean_colour",
    }
    assert ("chroma/chroma", "recolour") not in tests  # a measure of colour is not asked to ignore colour
    for row in rows:
        assert float(row["accuracy"]) == pytest.approx(int(row["correct"]) / int(row["trials"]), abs=1e-4)
    assert tests["portilla_simoncelli/style/ps", "identity"]["accuracy"] == "1.0000"
    assert float(tests["vgg19_caffe/style/gram", "discrimination"]["accuracy"]) > 0.6
    assert tests["control/style/pixels", "layout"]["role"] == "negative control"
    assert tests["portilla_simoncelli/style/ps", "layout"]["role"] == "measure"
    assert "| control/style/pixels (negative control) |" in done.stdout
    assert "| portilla_simoncelli/style/ps |" in done.stdout and (tmp_path / "validation.md").is_file()
    assert "styleexp: weak: control/style/pixels: below 0.75 on" in done.stdout
    missing = cli(str(tmp_path / "nowhere"), main=validate_measures)
    assert missing.returncode == 2 and missing.stderr.startswith(
        f"styleexp: error: {tmp_path / 'nowhere'}: no such folder"
    )


def _runs(scores: dict[str, dict[str, float]]) -> list[Run]:
    """One completed run per value of ``gram`` and seed, with the given measures (same for each seed)."""
    return [
        Run(
            f"{gram}-{seed}",
            Path(f"/nowhere/{gram}-{seed}"),
            {"gram": gram, "seed": str(seed)},
            {"status": "completed"},
            dict(values),
        )
        for gram, values in scores.items()
        for seed in (0, 1)
    ]


def test_the_agreement_of_evaluators_comes_from_their_rankings():
    keys = {"gram": ["gram", "centered"], "seed": ["0", "1"]}
    runs = _runs(
        {
            "gram": {"style/gram": 1.0, "style/both": 1.0, "b/style/gram": 2.0, "c/style/ps": 1.0},
            "centered": {"style/gram": 2.0, "style/both": 3.0, "b/style/gram": 1.0, "c/style/ps": 2.0},
        }
    )
    names = ["style/gram", "style/both", "b/style/gram", "c/style/ps"]
    rankings = compare.evaluator_rankings(runs, keys, ["seed"], names, "a")
    assert rankings == {"a": ["gram", "centered"], "b": ["centered", "gram"], "c": ["gram", "centered"]}
    assert (
        compare.kendall_tau(rankings["a"], rankings["c"]) == 1
        and compare.kendall_tau(rankings["a"], rankings["b"]) == -1
    )
    assert compare.agreement(rankings, "gram") == "gram > centered under a and c; b disagrees (centered > gram)."
    assert (
        compare.agreement({"a": rankings["a"], "c": rankings["c"]}, "gram")
        == "Every evaluator ranks gram the same: gram > centered."
    )
