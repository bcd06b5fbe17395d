"""Measures shown to measure: every fair measure through tests whose right answer is known.

Tests (each a share of correct trials; chance is 0.5 where two answers are possible):

- ``identity``: an image against itself scores a perfect match (0, or 1 for ``ssim``);
- ``symmetry``: for the measures that claim it, the distance does not depend on which image is
  the reference;
- ``discrimination`` (style measures): for every image, its other half is closer than any half of
  another image (two-alternative forced choice over all such triplets);
- ``shift`` (content measures): a slightly shifted crop of an image is closer than the same crop
  of another image;
- ``noise``, ``blur``: Gaussian noise and blur of growing strength give a growing distance (share
  of steps, from the clean image up, that increase);
- ``transfer`` (content measures, with ``--run``): a run's output is closer to its content image
  than its style image is.

``styleexp-validate-measures`` runs them on the bundled samples or on folders of images; the
report runs them (once per evaluator version: ``validation_cache``) on the bundled samples and a
sweep's own inputs and marks the conclusions that rest on a measure whose discrimination is below
``THRESHOLD``.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from styleexp.images import load_image
from styleexp.measures.evaluator import EVALUATORS, Evaluator, higher_is_better
from styleexp.measures.probes import BLUR, NOISE, blurred, halves, noisy, resized, shifted_crops, square

THRESHOLD = 0.75  # discrimination below this: picks the right half in fewer than 3 of 4 comparisons
TESTS = ("identity", "symmetry", "discrimination", "shift", "noise", "blur", "transfer")


@dataclass
class Result:
    """How one measure did on one test."""

    measure: str
    test: str
    correct: int
    trials: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.trials if self.trials else None


@dataclass(eq=False)
class _Represented:
    """One image's representation: an object of its own, so that distances of a pair can be kept by identity."""

    value: Any


class _Distances:
    """An evaluator's distances between represented images; a pair is scored once for all its measures."""

    def __init__(self, judge: Evaluator):
        self.judge = judge
        self._scored: dict[tuple[int, int, str], dict[str, float]] = {}

    def represent(self, image: torch.Tensor) -> _Represented:
        return _Represented(self.judge.represent(image))

    def __call__(self, measure: str, x: _Represented, reference: _Represented) -> float:
        """Distance of ``x`` from ``reference`` under ``measure``; a similarity is negated."""
        kind = "style" if measure in self.judge.style else "content"
        key = (id(x), id(reference), kind)
        if key not in self._scored:
            compare = self.judge.style_distances if kind == "style" else self.judge.content_distances
            self._scored[key] = compare(x.value, reference.value)
        return -self._scored[key][measure] if higher_is_better(measure) else self._scored[key][measure]


def validate(
    images: dict[str, torch.Tensor],
    judges: Sequence[Evaluator],
    runs: Sequence[Path] = (),
    kinds: Sequence[str] = ("style", "content"),
) -> list[Result]:
    """Every style and content measure of every evaluator in ``judges`` through the tests, on ``images``.

    ``images`` are ``{name: [3, H, W]}``; each is first made square, so that every test compares
    images of one shape and each representation is computed once. ``kinds`` limits the tests to
    style or content measures.
    """
    pictures = [square(image, max(image.shape[1:])) for image in images.values()]
    return [result for judge in judges for result in _validate(judge, pictures, runs, kinds)]


def _validate(
    judge: Evaluator, pictures: list[torch.Tensor], runs: Sequence[Path], kinds: Sequence[str]
) -> list[Result]:
    measured = [*(judge.style if "style" in kinds else ()), *(judge.content if "content" in kinds else ())]
    if not measured:
        return []
    distances = _Distances(judge)
    rep = distances.represent
    whole = [rep(picture) for picture in pictures]
    split = [tuple(rep(half) for half in halves(picture)) for picture in pictures]
    has_content = any(m in judge.content for m in measured)
    crops = [tuple(rep(crop) for crop in shifted_crops(picture)) for picture in pictures] if has_content else []
    corrupted = {
        "noise": [[rep(noisy(picture, sigma, seed)) for sigma in NOISE] for seed, picture in enumerate(pictures)],
        "blur": [[rep(blurred(picture, sigma)) for sigma in BLUR] for picture in pictures],
    }
    transfers = [[load_image(Path(run) / f"{what}.png") for what in ("final", "content", "style")] for run in runs]
    results = []
    for measure in measured:
        name, d = f"{judge.name}/{measure}", partial(distances, measure)
        perfect = -1.0 if higher_is_better(measure) else 0.0
        results.append(Result(name, "identity", sum(abs(d(x, x) - perfect) < 1e-6 for x in whole), len(whole)))
        if measure in judge.symmetric:
            pairs = list(itertools.combinations(whole, 2))
            agree = sum(abs(d(a, b) - d(b, a)) <= 1e-6 * max(1.0, abs(d(a, b))) for a, b in pairs)
            results.append(Result(name, "symmetry", agree, len(pairs)))
        if measure in judge.style:
            results.append(_discrimination(name, d, split))
        else:
            results.append(_shift(name, d, crops))
        for test, levels in corrupted.items():
            steps = [[perfect] + [d(x, whole[i]) for x in row] for i, row in enumerate(levels)]
            growing = sum(b > a for row in steps for a, b in zip(row, row[1:]))
            results.append(Result(name, test, growing, sum(len(row) - 1 for row in steps)))
        if transfers and measure in judge.content:
            correct = 0
            for final, content, style in transfers:
                anchor = rep(content)
                correct += d(rep(resized(final, content)), anchor) < d(rep(resized(style, content)), anchor)
            results.append(Result(name, "transfer", correct, len(transfers)))
    return results


Distance = Callable[[_Represented, _Represented], float]


def _discrimination(name: str, d: Distance, split: list[tuple[_Represented, ...]]) -> Result:
    """Two-alternative forced choice: the other half of the same image, or a half of another."""
    choices = [
        d(anchor, partner) < d(anchor, negative)
        for i, pair in enumerate(split)
        for anchor, partner in (pair, pair[::-1])
        for j, other in enumerate(split)
        if j != i
        for negative in other
    ]
    return Result(name, "discrimination", sum(choices), len(choices))


def _shift(name: str, d: Distance, crops: list[tuple[_Represented, ...]]) -> Result:
    """The same crop moved a little, or the same crop of another image."""
    choices = [
        d(shifted, anchor) < d(crops[j][0], anchor)
        for i, (anchor, shifted) in enumerate(crops)
        for j in range(len(crops))
        if j != i
    ]
    return Result(name, "shift", sum(choices), len(choices))


def plain_names(results: list[Result], first: str) -> list[Result]:
    """The results under the names runs give the measures: the ``first`` evaluator's and those always on without
    prefix."""
    renamed = []
    for result in results:
        evaluator, measure = result.measure.split("/", 1)
        plain = evaluator == first or (evaluator in EVALUATORS and EVALUATORS[evaluator].always)
        renamed.append(Result(measure if plain else result.measure, result.test, result.correct, result.trials))
    return renamed


def table(results: list[Result]) -> tuple[list[str], dict[str, dict[str, Result]]]:
    """The tests in order, and each measure's results by test."""
    tests = [test for test in TESTS if any(result.test == test for result in results)]
    rows: dict[str, dict[str, Result]] = {}
    for result in results:
        rows.setdefault(result.measure, {})[result.test] = result
    return tests, rows


def markdown(results: list[Result]) -> str:
    tests, rows = table(results)
    lines = ["| measure | " + " | ".join(tests) + " |", "|---|" + "---|" * len(tests)]
    for measure, by_test in rows.items():
        cells = [
            f"{by_test[t].accuracy:.2f} ({by_test[t].trials})" if t in by_test and by_test[t].trials else "-"
            for t in tests
        ]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(results: list[Result], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "validation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["measure", "test", "correct", "trials", "accuracy"])
        writer.writeheader()
        writer.writerows({**asdict(r), "accuracy": "" if r.accuracy is None else f"{r.accuracy:.4f}"} for r in results)
    (out / "validation.md").write_text(markdown(results))


def weak(results: list[Result]) -> dict[str, float]:
    """The measures whose discrimination (style) or shift (content) accuracy is below ``THRESHOLD``, with that
    accuracy."""
    return {
        r.measure: r.accuracy
        for r in results
        if r.test in ("discrimination", "shift") and r.accuracy is not None and r.accuracy < THRESHOLD
    }
