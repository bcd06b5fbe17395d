"""The report's charts (matplotlib, PNG): each measure against each swept key, and loss curves by grid row."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from styleexp.measures import higher_is_better  # noqa: E402
from styleexp.report.compare import completed, interval  # noqa: E402
from styleexp.report.load import Run  # noqa: E402
from styleexp.rundir import METRICS  # noqa: E402


def measure_figure(runs: Sequence[Run], keys: dict[str, list[str]], factors: Sequence[str], name: str) -> Figure:
    """``name`` against each factor: a point per completed run, and the mean with its 95 % interval per value."""
    figure, axes = plt.subplots(1, len(factors), figsize=(2.7 * len(factors) + 0.8, 2.8), squeeze=False, sharey=True)
    better = "higher" if higher_is_better(name) else "lower"
    for ax, key in zip(axes[0], factors):
        values = keys[key]
        for x, value in enumerate(values):
            scores = [
                run.scores[name]
                for run in completed(runs)
                if run.choices.get(key) == value and run.scores.get(name) is not None
            ]
            if not scores:
                continue
            jitter = np.linspace(-0.12, 0.12, len(scores)) if len(scores) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), scores, s=12, color="#9aa9bb", zorder=2)
            mean, low, high = interval(scores)
            error = None if low is None else [[mean - low], [high - mean]]
            ax.errorbar(x, mean, yerr=error, fmt="o", color="#1f4e8c", capsize=4, markersize=6, zorder=3)
        ax.set_xticks(
            range(len(values)),
            values,
            rotation=30 if max(map(len, values)) > 6 else 0,
            ha="right" if max(map(len, values)) > 6 else "center",
        )
        ax.set_xlabel(key)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"{better} is better")
    figure.suptitle(name, fontsize=10)
    figure.tight_layout()
    return figure


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
