"""Conclusions over replicates: means and intervals, paired wins and sign tests, evaluator disagreement, charts."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy import stats

from styleexp.report import compare, plots
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


def test_variants_hold_the_mean_and_t_interval_over_seeds():
    runs = _runs(lambda style, gram, seed: {"gram": 1.0, "centered": 2.0}[gram] + seed * 0.1 + (style == "b"))
    rows = compare.variants(runs, KEYS, ["seed"], ["style/gram"])
    assert [(row["style"], row["gram"], row["runs"]) for row in rows] == [
        ("a", "gram", 3),
        ("a", "centered", 3),
        ("b", "gram", 3),
        ("b", "centered", 3),
    ]
    values = [1.0, 1.1, 1.2]
    half = stats.t.ppf(0.975, 2) * stats.tstd(values) / 3**0.5
    assert rows[0]["style/gram"] == pytest.approx(1.1)
    assert (rows[0]["style/gram low"], rows[0]["style/gram high"]) == pytest.approx((1.1 - half, 1.1 + half))
    assert compare.interval([4.0]) == (4.0, None, None)


def test_paired_wins_count_each_matched_cell_and_follow_the_measures_direction():
    # gram is lower (better) than centered everywhere but one cell, where they tie.
    runs = _runs(
        lambda style, gram, seed: 0.5 if (style, seed) == ("b", 2) else {"gram": 1.0, "centered": 2.0}[gram] + seed
    )
    pairs = {(p.a, p.b): p for p in compare.paired(runs, KEYS, ["seed"], "style/gram")}
    assert (pairs["gram", "centered"].wins, pairs["gram", "centered"].losses, pairs["gram", "centered"].ties) == (
        5,
        0,
        1,
    )
    assert pairs["gram", "centered"].p == pytest.approx(stats.binomtest(5, 5).pvalue)
    assert pairs["centered", "gram"].wins == 0
    # ssim is higher-is-better: the numbers negated give the same winner; a distance negated, the other.
    ssim = {(p.a, p.b): p for p in compare.paired(runs, KEYS, ["seed"], "ssim")}
    assert ssim["gram", "centered"].wins == 5 and ssim["centered", "gram"].wins == 0
    negated = {(p.a, p.b): p for p in compare.paired(runs, KEYS, ["seed"], "vgg16_torchvision/style/gram")}
    assert negated["gram", "centered"].wins == 0 and negated["centered", "gram"].wins == 5
    sentence = compare.conclusion(list(pairs.values()), "style/gram")
    assert (
        sentence
        == f"Under style/gram, gram beats centered on 5 of 6 paired runs (p = {pairs['gram', 'centered'].p:.2g})."
    )


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
