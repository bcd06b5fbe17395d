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
report runs them on the bundled samples and a sweep's own inputs and marks the conclusions that
rest on a measure whose discrimination is below ``THRESHOLD``.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from styleexp import measures, portilla_simoncelli, samples
from styleexp.images import load_image

SIZE = 128  # longest side of every test image
NOISE = (0.03, 0.1, 0.3)  # standard deviations, in [0, 1] pixel units
BLUR = (0.7, 1.5, 3.0)  # Gaussian standard deviations, in pixels
SHIFT = 0.06  # of the side: how far the content test's crop moves
THRESHOLD = 0.75  # discrimination below this: picks the right half in fewer than 3 of 4 comparisons
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
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


def bundled_images(size: int = SIZE) -> dict[str, torch.Tensor]:
    return {name: samples.load(name, size) for name in samples.SAMPLES}


def folder_images(folders: Sequence[Path], size: int = SIZE) -> dict[str, torch.Tensor]:
    """Every image file directly in ``folders``, by file name."""
    return {
        path.name: load_image(path, size)
        for folder in folders
        for path in sorted(Path(folder).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    }


def halves(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of ``[3, H, W]`` along its longer side."""
    if image.shape[2] >= image.shape[1]:
        middle = image.shape[2] // 2
        return image[:, :, :middle], image[:, :, middle : 2 * middle]
    middle = image.shape[1] // 2
    return image[:, :middle], image[:, middle : 2 * middle]


def noisy(image: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    return (image + sigma * noise).clamp(0, 1)


def blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]


def shifted_crops(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop of ``image`` and the same-size crop moved by ``SHIFT`` of the side, down and right."""
    height, width = image.shape[1:]
    dy, dx = max(1, round(SHIFT * height)), max(1, round(SHIFT * width))
    return image[:, : height - dy, : width - dx], image[:, dy:, dx:]


def _resized(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(image[None], size=like.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]


@dataclass(eq=False)
class _Represented:
    """One image's representation: an object of its own, so that distances of a pair can be kept by identity."""

    value: Any


def square(image: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """The largest centred square of ``image``, resized to ``size``: every test image then has one shape."""
    side = min(image.shape[1:])
    top, left = (image.shape[1] - side) // 2, (image.shape[2] - side) // 2
    crop = image[:, top : top + side, left : left + side]
    return F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def validate(
    images: dict[str, torch.Tensor],
    judges: Sequence[measures.Evaluator],
    runs: Sequence[Path] = (),
    kinds: Sequence[str] = ("style", "content"),
) -> list[Result]:
    """Every measure of every evaluator in ``judges`` through the tests, on ``images`` (``{name: [3, H, W]}``).

    Each image is first made square, so that every test compares images of one shape and each
    representation is computed once. ``kinds`` limits the tests to style or content measures.
    """
    results = []
    pictures = [square(image, max(image.shape[1:])) for image in images.values()]
    for judge in judges:
        measured = [
            m for m in (judge.style if "style" in kinds else []) + (judge.content if "content" in kinds else [])
        ]
        if not measured:
            continue

        def rep(image: torch.Tensor) -> _Represented:
            return _Represented(judge.represent(image))

        whole = [rep(picture) for picture in pictures]
        split = [tuple(rep(half) for half in halves(picture)) for picture in pictures]
        crops = (
            [tuple(rep(crop) for crop in shifted_crops(picture)) for picture in pictures]
            if any(m in judge.content for m in measured)
            else []
        )
        corrupted = {
            "noise": [[rep(noisy(picture, sigma, seed)) for sigma in NOISE] for seed, picture in enumerate(pictures)],
            "blur": [[rep(blurred(picture, sigma)) for sigma in BLUR] for picture in pictures],
        }
        scored: dict[
            tuple[int, int, str], dict[str, float]
        ] = {}  # an evaluator scores all its measures of a pair at once
        for measure in measured:
            name = f"{judge.name}/{measure}"

            def d(x: _Represented, reference: _Represented) -> float:
                """Distance of ``x`` from ``reference`` under ``measure``; a similarity is negated."""
                kind = "style" if measure in judge.style else "content"
                key = (id(x), id(reference), kind)
                if key not in scored:
                    scored[key] = (judge.style_distances if kind == "style" else judge.content_distances)(
                        x.value, reference.value
                    )
                return -scored[key][measure] if measure in measures.HIGHER_IS_BETTER else scored[key][measure]

            perfect = -1.0 if measure in measures.HIGHER_IS_BETTER else 0.0
            results.append(
                Result(name, "identity", sum(abs(d(rep, rep) - perfect) < 1e-6 for rep in whole), len(whole))
            )
            if measure in judge.symmetric:
                pairs = list(itertools.combinations(whole, 2))
                results.append(
                    Result(
                        name,
                        "symmetry",
                        sum(abs(d(a, b) - d(b, a)) <= 1e-6 * max(1.0, abs(d(a, b))) for a, b in pairs),
                        len(pairs),
                    )
                )
            if measure in judge.style:
                # Two-alternative forced choice: the other half of the same image, or a half of another.
                choices = [
                    d(anchor, partner) < d(anchor, negative)
                    for i, pair in enumerate(split)
                    for anchor, partner in (pair, pair[::-1])
                    for j, other in enumerate(split)
                    if j != i
                    for negative in other
                ]
                results.append(Result(name, "discrimination", sum(choices), len(choices)))
            else:
                # The same crop moved a little, or the same crop of another image.
                choices = [
                    d(shifted, anchor) < d(crops[j][0], anchor)
                    for i, (anchor, shifted) in enumerate(crops)
                    for j in range(len(crops))
                    if j != i
                ]
                results.append(Result(name, "shift", sum(choices), len(choices)))
            for test, levels in corrupted.items():
                steps = [[perfect] + [d(rep, whole[i]) for rep in row] for i, row in enumerate(levels)]
                results.append(
                    Result(
                        name,
                        test,
                        sum(b > a for row in steps for a, b in zip(row, row[1:])),
                        sum(len(row) - 1 for row in steps),
                    )
                )
            if runs and measure in judge.content:
                correct = 0
                for run in runs:
                    final, content, style = (
                        load_image(Path(run) / f"{what}.png") for what in ("final", "content", "style")
                    )
                    anchor = rep(content)
                    correct += d(rep(_resized(final, content)), anchor) < d(rep(_resized(style, content)), anchor)
                results.append(Result(name, "transfer", correct, len(runs)))
    return results


def judges(evaluator_names: Sequence[str], weights_dir: str | None = None) -> list[measures.Evaluator]:
    """The evaluators and the network-free measures (ssim, colour): everything a run measures, to validate."""
    return [*measures.evaluators(evaluator_names, weights_dir), measures.StructureEvaluator(), measures.COLOUR]


def plain_names(results: list[Result], first: str) -> list[Result]:
    """The results under the names runs give the measures: the ``first`` evaluator's without prefix, ``ssim`` plain."""
    renamed = []
    for result in results:
        evaluator, measure = result.measure.split("/", 1)
        name = (
            measure if evaluator in (first, measures.StructureEvaluator.name, measures.COLOUR.name) else result.measure
        )
        renamed.append(Result(name, result.test, result.correct, result.trials))
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
    """The measures whose discrimination (style) or shift (content) accuracy is below ``THRESHOLD``, with that accuracy."""
    return {
        r.measure: r.accuracy
        for r in results
        if r.test in ("discrimination", "shift") and r.accuracy is not None and r.accuracy < THRESHOLD
    }


def cached(
    images: dict[str, torch.Tensor],
    evaluator_names: Sequence[str],
    kinds: Sequence[str],
    weights_dir: str | None = None,
) -> list[Result]:
    """``validate`` with a cache in the user's cache folder: the result depends only on the images, evaluators and this code."""
    digest = hashlib.sha256(json.dumps([list(evaluator_names), sorted(kinds)]).encode())
    for name, image in sorted(images.items()):
        digest.update(name.encode() + (image * 255).round().byte().numpy().tobytes())
    for source in (
        measures.__file__,
        samples.__file__,
        portilla_simoncelli.__file__,
        __file__,
        portilla_simoncelli.SPREAD_FILE,
    ):
        digest.update(Path(source).read_bytes())
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "styleexp"
        / "validation"
        / f"{digest.hexdigest()[:32]}.json"
    )
    if cache.is_file():
        return [Result(**entry) for entry in json.loads(cache.read_text())]
    results = validate(images, judges(evaluator_names, weights_dir), kinds=kinds)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f".{cache.name}.{os.getpid()}")
    partial.write_text(json.dumps([asdict(r) for r in results]))
    os.replace(partial, cache)
    return results
