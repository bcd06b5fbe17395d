"""The report's tables: one row per run (swept keys, loss terms, fair measures), and one per variant over replicates."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from styleexp import measures
from styleexp.report.load import Run, order
from styleexp.terms import TERMS

LOSSES = ["loss/total", *(f"loss/{name}" for name in TERMS)]


def measure_names(runs: Sequence[Run], held_only: bool = False) -> list[str]:
    """The measures of the runs' evaluators in report order, then any other the runs hold; ``held_only``: those with a
    value."""
    evaluators = list(dict.fromkeys(name for run in runs for name in run.summary.get("evaluators", [])))
    held = {name for run in runs for name, value in run.scores.items() if value is not None}
    ordered = measures.names(evaluators or list(measures.DEFAULT_EVALUATORS))
    names = ordered + sorted(held - set(ordered))
    return [name for name in names if name in held] if held_only else names


def table_rows(runs: list[Run], keys: dict[str, list[str]]) -> list[dict[str, object]]:
    """One row per run, in the sweep's order: its swept values, status, final losses, the fair measures, steps,
    whether it converged and time.

    Numbers stay numbers (None where missing); ``write_csv`` and ``markdown_table`` format them.
    """
    names = measure_names(runs)
    rows = []
    for run in sorted(runs, key=lambda r: order(r, keys)):
        losses = run.summary.get("losses", {})
        rows.append(
            {
                "run": run.folder.name,
                **{key: run.choices.get(key, "") for key in keys},
                "status": run.status,
                **{loss: losses.get(loss) for loss in LOSSES},
                **{name: run.scores.get(name) for name in names},
                "steps": run.summary.get("steps"),
                "converged": run.summary.get("converged"),
                "seconds": run.summary.get("wall_time_s"),
            }
        )
    return rows


def write_csv(rows: list[dict[str, object]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({key: text(value) for key, value in row.items()} for row in rows)


def markdown_table(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(text(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text(value: object) -> str:
    """A cell as written: floats to 4 significant digits, missing values empty."""
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
