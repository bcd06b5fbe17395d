"""Conclusions over replicates: means and intervals, paired comparisons over images, evaluator disagreement, charts."""

from __future__ import annotations

from pathlib import Path

import pytest

from styleexp.report import compare, inference, plots
from styleexp.report.load import Run

KEYS = {"style": ["a", "b"], "gram": ["gram", "centered"], "seed": ["0", "1", "2"]}


def _runs(score) -> list[Run]:
    """Runs of KEYS whose ``style/gram`` is ``score(style, gram, seed)`` (and ssim its negative)."""
    runs = []
    for style in KEYS["style"]:
        for gram in KEYS["gram"]:
            for seed in KEYS["seed"]:
                value = score(style, gram, int(seed))
                runs.append(
                    Run(
                        f"{style}-{gram}-{seed}",
                        Path(f"/nowhere/{style}-{gram}-{seed}"),
                        {"style": style, "gram": gram, "seed": seed},
                        {"status": "completed"},
                        {"style/gram": value, "vgg16_torchvision/style/gram": -value, "ssim": -value},
                    )
                )
    return runs


def test_variants_hold_the_mean_and_bootstrap_interval_over_seeds():
    runs = _runs(lambda style, gram, seed: {"gram": 1.0, "centered": 2.0}[gram] + seed * 0.1 + (style == "b"))
    rows = compare.variants(runs, KEYS, ["seed"], ["style/gram"])
    assert [(row["style"], row["gram"], row["runs"]) for row in rows] == [
        ("a", "gram", 3),
        ("a", "centered", 3),
        ("b", "gram", 3),
        ("b", "centered", 3),
    ]
    values = [1.0, 1.1, 1.2]
    assert rows[0]["style/gram"] == pytest.approx(1.1)
    assert (rows[0]["style/gram low"], rows[0]["style/gram high"]) == pytest.approx(inference.bootstrap(values))
    assert 1.0 <= rows[0]["style/gram low"] < 1.1 < rows[0]["style/gram high"] <= 1.2


def test_paired_comparisons_average_seeds_per_image_and_follow_the_measures_direction():
    # gram is lower (better) than centered on both images' means, though they tie at one seed.
    runs = _runs(
        lambda style, gram, seed: 0.5 if (style, seed) == ("b", 2) else {"gram": 1.0, "centered": 2.0}[gram] + seed
    )
    (pair,) = compare.paired(runs, KEYS, ["seed"], "style/gram")
    assert (pair.a, pair.b, pair.unit) == ("gram", "centered", "image")
    assert pair.differences == pytest.approx([2.0 - 3.0, (1.0 + 2.0 + 0.5) / 3 - (2.0 + 3.0 + 0.5) / 3])
    # ssim is higher-is-better: the numbers negated give the same winner; a distance negated, the other.
    names = ("style/gram", "ssim", "vgg16_torchvision/style/gram")
    lines = inference.verdicts([c for name in names for c in compare.paired(runs, KEYS, ["seed"], name)])
    assert [line.split(" (")[1].split(",")[0] for line in lines] == [
        "gram lower in 2 of 2",
        "gram higher in 2 of 2",
        "centered lower in 2 of 2",
    ]


def test_disagreeing_evaluators_are_named():
    runs = _runs(lambda style, gram, seed: {"gram": 1.0, "centered": 2.0}[gram])
    sentences = compare.disagreements(
        runs, KEYS, ["seed"], ["style/gram", "vgg16_torchvision/style/gram", "ssim"], "vgg19_caffe"
    )
    assert sentences == [
        "Evaluators disagree on gram under style/gram (best first): vgg19_caffe: gram > centered; vgg16_torchvision: "
        "centered > gram."
    ]
    agreeing = _runs(lambda style, gram, seed: 1.0)
    for run in agreeing:
        run.scores["vgg16_torchvision/style/gram"] = 1.0
    assert (
        compare.disagreements(agreeing, KEYS, ["seed"], ["style/gram", "vgg16_torchvision/style/gram"], "vgg19_caffe")
        == []
    )


def test_charts_are_labelled():
    runs = _runs(lambda style, gram, seed: 1.0 + seed)
    figure = plots.measure_figure(runs, KEYS, ["style", "gram"], "style/gram")
    axes = figure.axes
    assert [ax.get_xlabel() for ax in axes] == ["style", "gram"]
    assert [tick.get_text() for tick in axes[1].get_xticklabels()] == ["gram", "centered"]
    assert axes[0].get_ylabel() == "lower is better"


def test_loss_curves_have_log_axes_and_a_legend(tmp_path):
    runs = []
    for name, scale in (("a", 1.0), ("b", 3.0)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metrics.csv").write_text("step,loss/total\n1,100\n10,10\n20,1\n".replace("100", str(100 * scale)))
        runs.append((Run(name, folder, {}), f"gram={name}"))
    ax = plots.loss_figure(runs, "style=a").axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "optimiser step" and "loss/total" in ax.get_ylabel()
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["gram=a", "gram=b"]
    assert list(ax.get_lines()[1].get_ydata()) == [300.0, 10.0, 1.0]
