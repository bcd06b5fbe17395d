"""The validation every fair measure passes or visibly fails, and the evaluators' rank agreement."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from styleexp import measures
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
    assert (
        trials["random/style/random", "discrimination"] == 9 * 2 * 8 * 2
    )  # every anchor against every half of every other image
    assert 0.4 < _accuracy(results, "random/style/random", "discrimination") < 0.6
    assert 0.4 < _accuracy(results, "random/content/random", "shift") < 0.6
    assert 0.25 < _accuracy(results, "random/style/random", "noise") < 0.75
    assert _accuracy(results, "random/style/random", "identity") == 0
    assert (
        _accuracy(results, "colour/style/colour", "identity") == 1
        and _accuracy(results, "colour/style/colour", "symmetry") == 1
    )
    assert _accuracy(results, "colour/style/colour", "discrimination") > 0.7
    assert validation.weak(results) == {
        "random/style/random": _accuracy(results, "random/style/random", "discrimination"),
        "random/content/random": _accuracy(results, "random/content/random", "shift"),
    }


def test_test_images_are_split_and_corrupted_as_described():
    image = torch.rand(3, 40, 60)
    left, right = probes.halves(image)
    assert left.shape == right.shape == (3, 40, 30) and torch.equal(torch.cat([left, right], 2), image)
    top, bottom = probes.halves(image.transpose(1, 2))
    assert top.shape == (3, 30, 40)
    assert (probes.blurred(image, 2.0) - image).abs().mean() > (probes.blurred(image, 0.5) - image).abs().mean()
    a, b = probes.shifted_crops(image)
    assert a.shape == b.shape and torch.equal(a[:, 2:, 4:], b[:, : a.shape[1] - 2, : a.shape[2] - 4])


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
        "vgg19_caffe/content/relu4_2",
        "portilla_simoncelli/style/ps",
        "ssim/ssim",
        "chroma/chroma",
        "colour/colour",
    }
    for row in rows:
        assert float(row["accuracy"]) == pytest.approx(int(row["correct"]) / int(row["trials"]), abs=1e-4)
    assert tests["portilla_simoncelli/style/ps", "identity"]["accuracy"] == "1.0000"
    assert float(tests["vgg19_caffe/style/gram", "discrimination"]["accuracy"]) > 0.6
    assert "| portilla_simoncelli/style/ps |" in done.stdout and (tmp_path / "validation.md").is_file()
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
