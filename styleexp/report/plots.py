"""The report's charts (matplotlib, PNG): each measure against each swept key, and loss curves by grid row."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from styleexp.measures import higher_is_better  # noqa: E402
from styleexp.report.compare import completed  # noqa: E402
from styleexp.report.inference import spread  # noqa: E402
from styleexp.report.load import Run  # noqa: E402
from styleexp.rundir import METRICS  # noqa: E402


def measure_figure(runs: Sequence[Run], keys: dict[str, list[str]], factors: Sequence[str], name: str) -> Figure:
    """``name`` against each factor: a point per completed run and, for each combination of the other factors, a
    line through the means over its replicates with their 95 % bootstrap interval (``inference.spread``).

    Replicates are the swept keys that are not ``factors``; nothing is pooled over another factor.
    """
    figure, axes = plt.subplots(1, len(factors), figsize=(2.7 * len(factors) + 0.8, 2.8), squeeze=False, sharey=True)
    better = "higher" if higher_is_better(name) else "lower"
    for ax, key in zip(axes[0], factors):
        values, lines = keys[key], measure_lines(runs, keys, factors, name, key)
        for i, (label, by_value) in enumerate(lines):
            shown = list(by_value)
            # Lines side by side, so that their bars do not hide each other.
            xs = [values.index(value) + 0.08 * (i - (len(lines) - 1) / 2) for value in shown]
            means, lows, highs = zip(*(spread(by_value[value]) for value in shown))
            error = [
                [mean - (mean if low is None else low) for mean, low in zip(means, lows)],
                [(mean if high is None else high) - mean for mean, high in zip(means, highs)],
            ]
            bars = ax.errorbar(xs, means, yerr=error, fmt="o-", capsize=3, markersize=4, linewidth=1, label=label)
            for x, value in zip(xs, shown):
                ax.scatter([x] * len(by_value[value]), by_value[value], s=8, color=bars.lines[0].get_color(), alpha=0.4)
        ax.set_xticks(
            range(len(values)),
            values,
            rotation=30 if max(map(len, values)) > 6 else 0,
            ha="right" if max(map(len, values)) > 6 else "center",
        )
        ax.set_xlabel(key)
        ax.grid(axis="y", alpha=0.3)
        if len(factors) > 1 and 1 < len(lines) <= 8:
            ax.legend(fontsize=6)
    axes[0][0].set_ylabel(f"{better} is better")
    figure.suptitle(f"{name}: mean and 95 % bootstrap interval over seeds", fontsize=10)
    figure.tight_layout()
    return figure


def measure_lines(
    runs: Sequence[Run], keys: dict[str, list[str]], factors: Sequence[str], name: str, key: str
) -> list[tuple[str | None, dict[str, list[float]]]]:
    """The completed runs' values of ``name`` against the factor ``key``: one line per combination of the other
    factors (labelled ``style=checkers``, None where there is none), each ``{value of key: [the runs' values]}`` in
    the sweep's order. The report's chart and its W&B chart both draw these."""
    values, others = keys[key], [other for other in factors if other != key]
    lines: dict[tuple[str, ...], dict[str, list[float]]] = {}
    for run in completed(runs):
        if run.scores.get(name) is not None and run.choices.get(key) in values:
            line = lines.setdefault(tuple(run.choices.get(other, "") for other in others), {})
            line.setdefault(run.choices[key], []).append(run.scores[name])
    in_order = sorted(lines, key=lambda line: [keys[o].index(v) for o, v in zip(others, line) if v in keys[o]])
    return [
        (
            ", ".join(f"{other}={value}" for other, value in zip(others, line)) or None,
            {value: lines[line][value] for value in values if value in lines[line]},
        )
        for line in in_order
    ]


def loss_figure(runs: Sequence[tuple[Run, str]], title: str) -> Figure:
    """``loss/total`` against the optimiser step for each ``(run, label)`` of one grid row, on a log scale."""
    figure, ax = plt.subplots(figsize=(6.0, 3.2))
    for run, label in runs:
        steps, losses = read_curve(run.folder / METRICS, "loss/total")
        if steps:
            ax.plot(steps, losses, label=label, linewidth=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss/total (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if ax.get_lines():
        ax.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    return figure


def read_curve(metrics_csv: Path, key: str) -> tuple[list[int], list[float]]:
    """The positive values of ``key`` logged in ``metrics.csv`` and their steps."""
    if not metrics_csv.is_file():
        return [], []
    with open(metrics_csv) as f:
        points = [
            (int(row["step"]), float(row[key])) for row in csv.DictReader(f) if row.get(key) and float(row[key]) > 0
        ]
    return [s for s, _ in points], [v for _, v in points]


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
