"""The report's inference with the image as the unit: intervals over seeds within the measure's bounds, paired sign
tests over images, Holm's correction, the images a verdict needs, and verdict lines in words."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from styleexp import report
from styleexp.measures import validation
from styleexp.report import compare, inference, plots
from styleexp.report.load import Run

# style/gram of each (image, statistic, seed): within an image the seeds disagree on which statistic is better,
# but the mean over seeds favours gram on every image, and seed 0 lies close to the bound 0.
GRAM = {
    ("a", "gram", "0"): 0.01, ("a", "gram", "1"): 0.50, ("a", "centered", "0"): 0.20, ("a", "centered", "1"): 0.40,
    ("b", "gram", "0"): 0.02, ("b", "gram", "1"): 0.30, ("b", "centered", "0"): 0.10, ("b", "centered", "1"): 0.28,
    ("c", "gram", "0"): 0.05, ("c", "gram", "1"): 0.90, ("c", "centered", "0"): 0.70, ("c", "centered", "1"): 0.30,
}  # fmt: skip
KEYS = {"seed": ["0", "1"], "style": ["a", "b", "c"], "gram": ["gram", "centered"]}


def _runs(folder: Path, styles=("a", "b", "c")) -> list[Run]:
    """Saved-run-like objects of 2 statistics x ``styles`` x 2 seeds: style/gram from GRAM, colour 10x it plus 1."""
    return [
        Run(
            f"{style}-{gram}-{seed}",
            folder / f"{style}-{gram}-{seed}",
            {"style": style, "gram": gram, "seed": seed},
            {"status": "completed"},
            {"style/gram": value, "colour": 10 * value + 1},
        )
        for (style, gram, seed), value in GRAM.items()
        if style in styles
    ]


def _image_means(style: str, gram: str) -> float:
    return float(np.mean([GRAM[style, gram, seed] for seed in KEYS["seed"]]))


def test_a_report_of_2_statistics_x_3_images_x_2_seeds_pairs_over_images_within_bounds(tmp_path):
    made = report.write(tmp_path / "report", _runs(tmp_path), KEYS)

    # Intervals over each variant's two seeds: a t-interval would go below zero here; these stay within the seeds.
    with open(tmp_path / "report" / "variants.csv") as f:
        variants = list(csv.DictReader(f))
    assert len(variants) == 6 and all(row["runs"] == "2" for row in variants)
    for row in variants:
        seeds = [GRAM[row["style"], row["gram"], seed] for seed in KEYS["seed"]]
        low, mean, high = (float(row[f"style/gram{end}"]) for end in (" low", "", " high"))
        assert 0 <= min(seeds) <= low < mean < high <= max(seeds)
        assert float(row["colour low"]) >= 1  # colour's bound in this sweep: 10 x 0 + 1
    seeds_of_a = [GRAM["a", "gram", seed] for seed in KEYS["seed"]]
    t_low, _ = stats.t.interval(0.95, 1, loc=np.mean(seeds_of_a), scale=stats.sem(seeds_of_a))
    assert t_low < 0

    # The paired test is over images (each the mean of its seeds), not over the six seed pairs.
    (comparison,) = compare.paired(_runs(tmp_path), KEYS, ["seed"], "style/gram")
    expected = [_image_means(style, "gram") - _image_means(style, "centered") for style in KEYS["style"]]
    assert comparison.differences == pytest.approx(expected) and comparison.unit == "image"
    assert comparison.p == pytest.approx(stats.binomtest(3, 3).pvalue)
    by_seed = [GRAM[s, "gram", seed] < GRAM[s, "centered", seed] for s in KEYS["style"] for seed in KEYS["seed"]]
    assert sum(by_seed) == 3  # seed by seed it is a draw: only the image means show gram lower everywhere

    # Two measures compared: even 6 of 6 images one way give p = 2/64 > 0.05/2, so 7 images are needed.
    assert inference.needed(2) == 7
    line = next(sentence for sentence in made.conclusions if " on style/gram:" in sentence)
    match = re.fullmatch(
        r"gram vs centered on style/gram: inconclusive: 3 images, at least 7 needed \(gram lower in 3 of 3, "
        r"median effect (\S+) \[(\S+), (\S+)\]\)",
        line,
    )
    assert match, line
    effect, low, high = map(float, match.groups())
    assert effect == pytest.approx(np.median(expected), abs=0.005) and min(expected) <= low <= effect <= high < 0
    assert "paired over images (each the mean over its seeds): the two-sided exact sign test" in made.conclusions[0]
    assert "Holm-corrected over the 2 comparisons" in made.conclusions[0]
    page = (tmp_path / "report" / "index.html").read_text()
    assert "gram vs centered on style/gram: inconclusive: 3 images" in page and "sign test" in page

    two = report.write(tmp_path / "two", _runs(tmp_path, styles=("a", "b")), {**KEYS, "style": ["a", "b"]})
    assert any(
        sentence.startswith("gram vs centered on style/gram: inconclusive: 2 images, at least 7 needed")
        for sentence in two.conclusions
    )


def _comparisons(lower: int, images: int = 8) -> list[inference.Comparison]:
    """style/gram with gram lower on every one of ``images`` images, colour with gram lower on ``lower`` of them,
    and ssim (higher is better) with gram higher on all."""
    runs = []
    for i in range(images):
        for gram in ("gram", "centered"):
            better = gram == "gram"
            scores = {"style/gram": 0.1 + i / 100 + (0 if better else 0.05), "ssim": 0.5 + (0.1 if better else 0)}
            scores["colour"] = 5.0 + (-1 if (better if i < lower else not better) else 0)
            runs.append(
                Run(f"{i}-{gram}", Path("/nowhere"), {"style": str(i), "gram": gram}, {"status": "completed"}, scores)
            )
    keys = {"style": [str(i) for i in range(images)], "gram": ["gram", "centered"]}
    return [c for name in ("style/gram", "colour", "ssim") for c in compare.paired(runs, keys, ["seed"], name)]


def test_enough_images_give_verdicts_with_holm_corrected_p_values():
    comparisons = _comparisons(lower=5)
    gram_p, colour_p, ssim_p = (c.p for c in comparisons)
    assert gram_p == ssim_p == pytest.approx(2 / 2**8) and colour_p == pytest.approx(stats.binomtest(5, 8).pvalue)
    assert inference.needed(3) == 7
    lines = inference.verdicts(comparisons)
    assert (
        lines[0] == f"gram < centered on style/gram: 8 of 8 images, median effect -0.05 [-0.05, -0.05], "
        f"p_holm = {3 * gram_p:.2g}"
    )
    assert lines[2].startswith("gram > centered on ssim: 8 of 8 images, median effect 0.1 [0.1, 0.1], p_holm = ")
    assert lines[1].startswith(
        "gram vs centered on colour: no difference shown: gram lower in 5 of 8 images, median effect -1"
    ) and lines[1].endswith(f"p_holm = {colour_p:.2g}")
    # The better value comes first whichever order the sweep lists them in.
    assert inference.verdicts(_comparisons(lower=0))[1].startswith(
        "centered < gram on colour: 8 of 8 images, median effect -1 [-1, -1], p_holm = 0.023"
    )


def test_holm_adjusts_step_down_and_keeps_the_order_given():
    assert inference.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert inference.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("comparisons", [1, 2, 12, 36])
def test_the_images_needed_are_the_fewest_at_which_the_sign_test_can_pass_holm(comparisons):
    at_least = inference.needed(comparisons)
    assert stats.binomtest(at_least, at_least).pvalue <= inference.ALPHA / comparisons
    assert stats.binomtest(at_least - 1, at_least - 1).pvalue > inference.ALPHA / comparisons


def test_a_sweep_of_one_image_pairs_seeds_and_says_so():
    keys = {"seed": ["0", "1", "2", "3"], "gram": ["gram", "centered"]}
    runs = [
        Run(
            f"{gram}-{seed}",
            Path("/nowhere"),
            {"gram": gram, "seed": seed},
            {"status": "completed"},
            {"style/gram": value},
        )
        for seed in keys["seed"]
        for gram, value in (("gram", 0.1 + int(seed)), ("centered", 0.2 + int(seed)))
    ]
    (comparison,) = compare.paired(runs, keys, ["seed"], "style/gram")
    assert comparison.differences == pytest.approx([-0.1] * 4) and comparison.one_image
    (line,) = inference.verdicts([comparison])
    assert line.startswith("gram vs centered on style/gram: inconclusive: 4 seeds of one image, at least 6 needed")
    assert "paired over seeds of one image: the two-sided" in inference.method([comparison], "gram")


def test_the_bootstrap_is_reproducible_and_stays_within_the_values():
    values = [0.01, 0.02, 0.9]
    assert inference.spread(values) == inference.spread(values)
    mean, low, high = inference.spread(values)
    assert min(values) <= low < mean < high <= max(values)
    assert inference.spread([4.0]) == (4.0, None, None)


def test_charts_draw_a_line_per_image_through_its_seed_means_never_pooled(tmp_path):
    figure = plots.measure_figure(_runs(tmp_path), KEYS, ["style", "gram"], "style/gram")
    by_gram = figure.axes[1]
    containers = by_gram.containers
    assert [c.get_label() for c in containers] == ["style=a", "style=b", "style=c"]
    for container, style in zip(containers, KEYS["style"]):
        assert list(container.lines[0].get_ydata()) == pytest.approx([_image_means(style, g) for g in KEYS["gram"]])
        bars = np.concatenate([segment[:, 1] for segment in container.lines[2][0].get_segments()])
        seeds = [GRAM[style, g, seed] for g in KEYS["gram"] for seed in KEYS["seed"]]
        assert min(seeds) - 1e-12 <= bars.min() and bars.max() <= max(seeds) + 1e-12


def test_the_unit_is_an_image_a_seed_of_one_image_or_a_named_cell():
    two, seeds = ["x", "y"], {"seed": ["0", "1"]}
    assert compare.units({**seeds, "style": two, "gram": two}, ["seed"]) == (["style"], "image", False)
    assert compare.units({**seeds, "style": ["x"], "gram": two}, ["seed"]) == (["seed", "style"], "seed", True)
    cells = compare.units({**seeds, "style": two, "network": two, "pooling": two}, ["seed"])
    assert cells == (["style", "network"], "style x network cell", False)


def test_a_rule_naming_one_measure_makes_the_verdicts_one_holm_family(tmp_path):
    everything = report.write(tmp_path / "all", _runs(tmp_path), KEYS)
    ruled = report.write(tmp_path / "rule", _runs(tmp_path), KEYS, verdicts=["style/gram"])
    assert any(" on colour:" in sentence for sentence in everything.conclusions)
    assert not any(" on colour:" in sentence for sentence in ruled.conclusions)
    # One comparison instead of two: 6 images would do, not 7.
    assert any("inconclusive: 3 images, at least 6 needed" in sentence for sentence in ruled.conclusions)


def test_the_report_keeps_the_negative_controls_labelled_and_says_why_a_verdict_is_weak(tmp_path):
    checks = [
        validation.Result("vgg19_caffe/style/gram", "discrimination", 95, 100),
        validation.Result("vgg19_caffe/style/gram", "layout", 60, 100),
        validation.Result("colour/colour", "discrimination", 90, 100),
        validation.Result("control/style/pixels", "layout", 20, 100),
        validation.Result("vgg19_caffe/style/centered", "layout", 90, 100),  # a measure of no run here: left out
    ]
    runs = _runs(tmp_path)
    for run in runs:
        run.summary["evaluators"] = ["vgg19_caffe"]
    made = report.write(tmp_path / "report", runs, KEYS, checks=checks)
    with open(tmp_path / "report" / "validation.csv") as f:
        roles = {row["measure"]: row["role"] for row in csv.DictReader(f)}
    assert roles == {"style/gram": "measure", "colour": "measure", "control/style/pixels": "negative control"}
    assert "| control/style/pixels (negative control) |" in (tmp_path / "report" / "validation.md").read_text()
    line = next(sentence for sentence in made.conclusions if " on style/gram:" in sentence)
    assert line.endswith("(A weak measure: below 0.75 on layout 0.60, so this verdict is not to be trusted.)")
    assert not any("A weak measure" in sentence for sentence in made.conclusions if " on colour:" in sentence)


def test_a_baseline_is_compared_with_each_other_value_instead_of_every_pair():
    values = ["gram", "centered", "both", "mmd_linear"]
    runs = [
        Run(f"{i}-{gram}", Path("/nowhere"), {"style": str(i), "gram": gram}, {"status": "completed"},
            {"style/gram": 0.1 + i / 100 + values.index(gram) / 10})
        for i in range(3) for gram in values
    ]  # fmt: skip
    keys = {"style": ["0", "1", "2"], "gram": values}
    every = compare.paired(runs, keys, ["seed"], "style/gram")
    against = compare.paired(runs, keys, ["seed"], "style/gram", baseline="gram")
    assert len(every) == 6 and [(c.a, c.b) for c in against] == [("gram", v) for v in values[1:]]
    assert [d for c in against for d in c.differences] == pytest.approx([-0.1] * 3 + [-0.2] * 3 + [-0.3] * 3)
    assert len(compare.paired(runs, keys, ["seed"], "style/gram", baseline="not swept")) == 6
