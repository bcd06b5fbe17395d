"""The report's W&B run, beyond its table: native W&B charts (a table each, drawn by W&B's own line chart) of each
measure against each swept factor and of the loss curves.

The charts draw what the page's PNG charts draw (``plots.measure_lines``, ``plots.read_curve``); on the dashboard
they can be hovered, filtered and edited, and their tables exported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from styleexp.measures import higher_is_better
from styleexp.report.inference import spread
from styleexp.report.load import Run
from styleexp.report.plots import measure_lines, read_curve
from styleexp.rundir import METRICS


def measure_chart(runs: Sequence[Run], keys: dict[str, list[str]], factors: Sequence[str], name: str, key: str) -> Any:
    """A line chart of ``name``'s mean over replicates against the factor ``key``, a line per combination of the other
    factors; its table also holds the 95 % bootstrap interval and the runs' values. None if no run holds ``name``.

    The x axis is numeric (W&B's line chart): a factor's values where they are numbers, else their positions in the
    sweep's order, which the title lists.
    """
    import wandb

    values, lines = keys[key], measure_lines(runs, keys, factors, name, key)
    if not lines:
        return None
    numeric = all(_is_number(value) for value in values)
    rows = []
    for label, by_value in lines:
        for value, scores in by_value.items():
            mean, low, high = spread(scores)
            x = float(value) if numeric else values.index(value)
            rows.append([value, x, mean, low, high, len(scores), ", ".join(f"{s:.6g}" for s in scores), label or name])
    columns = ["value", "x", "mean", "low", "high", "runs", "run values", "line"]
    better = "higher" if higher_is_better(name) else "lower"
    order = "" if numeric else "; x: " + ", ".join(f"{i} {value}" for i, value in enumerate(values))
    title = f"{name} by {key}: mean over replicates, {better} is better{order}"
    return wandb.plot.line(wandb.Table(columns=columns, data=rows), "x", "mean", stroke="line", title=title)


def loss_chart(labelled: Sequence[tuple[Run, str]], title: str) -> Any:
    """A line chart of ``log10(loss/total)`` against the optimiser step, a line per ``(run, label)`` (one grid row),
    from their ``metrics.csv``; its table also holds the loss itself. None if no run logged a loss."""
    import wandb

    rows = []
    for run, label in labelled:
        steps, losses = read_curve(run.folder / METRICS, "loss/total")
        rows += [[step, loss, math.log10(loss), label] for step, loss in zip(steps, losses)]
    if not rows:
        return None
    table = wandb.Table(columns=["step", "loss_total", "log10_loss_total", "run"], data=rows)
    return wandb.plot.line(table, "step", "log10_loss_total", stroke="run", title=f"log10 loss/total: {title}")


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
