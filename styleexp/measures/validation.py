"""Measures shown to measure: every fair measure through tests whose right answer is known, beside negative controls.

Tests (each a share of correct trials; chance is 0.5 where two answers are possible). The forced
choices ask whether a ``partner`` is closer to an ``anchor`` (the reference) than a ``negative``; a
tie counts as wrong:

- ``identity``: an image against itself scores a perfect match (0, or 1 for ``ssim``);
- ``symmetry``: for the measures that claim it, the distance does not depend on which image is
  the reference;
- ``discrimination`` (style): an image's half; partner its other half, negative any half of another image;
- ``layout`` (style): the periodic component of an image (no seams when rolled); partner it circularly
  shifted (``probes.SHIFTS``), negative another image's periodic component given the anchor's mean
  colour: the layout moved must barely move a style measure, and textures of one mean colour must be
  told apart;
- ``texture`` (style): a quarter of a bundled texture photograph (``probes.textures``); partner another
  quarter of it, negative a quarter of another texture given the anchor texture's mean colour;
- ``shift`` (content): a crop; partner the crop moved by 6 % of the side, negative the same crop of another image;
- ``recolour`` (content): an image; partner it with another image's palette, negative that other image
  with the anchor's palette (content measures ``of_colour`` take neither content test);
- ``noise``, ``blur``: Gaussian noise and blur of growing strength give a growing distance (share
  of steps, from the clean image up, that increase);
- ``transfer`` (content measures, with ``--run``): a run's output is closer to its content image
  than its style image is.

The negative controls (``controls.py``: a mean-colour and a pixel distance) go through the same tests.
A measure is weak (``weak``) when it picks the right answer of a separating test (``SEPARATING``) in
fewer than ``THRESHOLD`` of the trials, or when it beats the controls on none of them.
``styleexp-validate-measures`` runs them on the bundled samples or on folders of images; the report
runs them (once per evaluator version: ``validation_cache``) on the bundled samples and a sweep's own
inputs and marks the conclusions that rest on a weak measure.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from styleexp.images import load_image
from styleexp.measures import probes
from styleexp.measures.controls import Controls
from styleexp.measures.evaluator import EVALUATORS, Evaluator, higher_is_better
from styleexp.measures.trials import Triplet, forced_choices

THRESHOLD = 0.75  # below this a measure picks the right answer in fewer than 3 of 4 comparisons
TESTS = (
    "identity",
    "symmetry",
    "discrimination",
    "layout",
    "texture",
    "shift",
    "recolour",
    "noise",
    "blur",
    "transfer",
)
SEPARATING = ("discrimination", "layout", "texture", "shift", "recolour")
TIE = 1e-6  # distances closer than this (relative to the larger, at least 1) are a tie: no choice made


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
    images of one shape and each representation is computed once. The ``texture`` test takes the
    bundled texture photographs at twice the largest side, whatever the images. ``kinds`` limits the
    tests to style or content measures.
    """
    pictures = [probes.square(image, max(image.shape[1:])) for image in images.values()]
    return [result for judge in judges for result in _validate(judge, pictures, runs, kinds)]


def controls(images: dict[str, torch.Tensor], kinds: Sequence[str] = ("style", "content")) -> list[Result]:
    """The negative controls through the same tests, on ``images``."""
    return validate(images, [Controls()], kinds=kinds)


def _validate(
    judge: Evaluator, pictures: list[torch.Tensor], runs: Sequence[Path], kinds: Sequence[str]
) -> list[Result]:
    measured = [*(judge.style if "style" in kinds else ()), *(judge.content if "content" in kinds else ())]
    if not measured:
        return []
    distances = _Distances(judge)
    rep = distances.represent
    whole = [rep(picture) for picture in pictures]
    trials = forced_choices(rep, judge, pictures, whole, measured)
    corrupted = {
        "noise": [
            [rep(probes.noisy(picture, sigma, seed)) for sigma in probes.NOISE] for seed, picture in enumerate(pictures)
        ],
        "blur": [[rep(probes.blurred(picture, sigma)) for sigma in probes.BLUR] for picture in pictures],
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
        separating = ("discrimination", "layout", "texture") if measure in judge.style else ("shift", "recolour")
        for test in () if measure in judge.of_colour else separating:
            results.append(_forced_choice(name, test, d, trials[test]))
        for test, levels in corrupted.items():
            steps = [[perfect] + [d(x, whole[i]) for x in row] for i, row in enumerate(levels)]
            growing = sum(b > a for row in steps for a, b in zip(row, row[1:]))
            results.append(Result(name, test, growing, sum(len(row) - 1 for row in steps)))
        if transfers and measure in judge.content:
            correct = 0
            for final, content, style in transfers:
                anchor = rep(content)
                correct += _closer(
                    d(rep(probes.resized(final, content)), anchor), d(rep(probes.resized(style, content)), anchor)
                )
            results.append(Result(name, "transfer", correct, len(transfers)))
    return results


def _closer(near: float, far: float) -> bool:
    """Whether ``near`` is the smaller distance by more than a tie."""
    return far - near > TIE * max(1.0, abs(far))


def _forced_choice(name: str, test: str, d: Callable[[Any, Any], float], trials: Iterable[Triplet]) -> Result:
    """The share of trials in which the partner is closer to the anchor (the reference) than the negative is."""
    choices = [_closer(d(partner, anchor), d(negative, anchor)) for anchor, partner, negative in trials]
    return Result(name, test, sum(choices), len(choices))


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
        lines.append(f"| {label(measure)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(results: list[Result], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "validation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["measure", "role", "test", "correct", "trials", "accuracy"])
        writer.writeheader()
        writer.writerows(
            {**asdict(r), "role": role(r.measure), "accuracy": "" if r.accuracy is None else f"{r.accuracy:.4f}"}
            for r in results
        )
    (out / "validation.md").write_text(markdown(results))


def reasons(results: list[Result]) -> dict[str, str]:
    """Why each weak measure is weak, in a phrase: the separating tests it fails (accuracy below ``THRESHOLD``), or,
    for a measure that is not itself a control, that it beats the negative controls on none of them."""
    rows = table(results)[1]
    bar: dict[str, float] = {}  # the best control's accuracy on each test
    for r in results:
        if is_control(r.measure) and r.test in SEPARATING and r.accuracy is not None:
            bar[r.test] = max(bar.get(r.test, 0.0), r.accuracy)
    found = {}
    for measure, by_test in rows.items():
        scored = {t: r.accuracy for t, r in by_test.items() if t in SEPARATING and r.accuracy is not None}
        failed = [f"{test} {accuracy:.2f}" for test, accuracy in scored.items() if accuracy < THRESHOLD]
        if failed:
            found[measure] = f"below {THRESHOLD:.2f} on {', '.join(failed)}"
        elif scored and not is_control(measure) and all(t in bar and a <= bar[t] for t, a in scored.items()):
            found[measure] = "no better than its controls (a mean-colour or pixel distance) on " + ", ".join(
                f"{test} ({accuracy:.2f} against {bar[test]:.2f})" for test, accuracy in scored.items()
            )
    return found


def is_control(measure: str) -> bool:
    """Whether ``measure`` is one of the negative controls (``controls.py``), not a measure a run reports."""
    return measure.startswith(f"{Controls.name}/")


def role(measure: str) -> str:
    """``measure``'s row label in ``validation.csv``: ``negative control`` or ``measure``."""
    return "negative control" if is_control(measure) else "measure"


def label(measure: str) -> str:
    """``measure`` as the validation tables show it: a control says that it is one."""
    return f"{measure} (negative control)" if is_control(measure) else measure
