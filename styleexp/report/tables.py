"""The report's table: one row per run, its columns from the swept keys, the loss terms and the fair measures."""

from __future__ import annotations

import csv
from pathlib import Path

from styleexp import measures
from styleexp.report.load import Run, order
from styleexp.terms import TERMS

LOSSES = ["loss/total", *(f"loss/{name}" for name in TERMS)]


def table_rows(runs: list[Run], keys: dict[str, list[str]]) -> list[dict[str, object]]:
    """One row per run, in the sweep's order: its swept values, status, final losses, the fixed measures, steps and time."""
    rows = []
    for run in sorted(runs, key=lambda r: order(r, keys)):
        losses = run.summary.get("losses", {})
        rows.append({
            "run": run.folder.name,
            **{key: run.choices.get(key, "") for key in keys},
            "status": run.status,
            **{loss: _number(losses.get(loss)) for loss in LOSSES},
            **{name: _number(run.scores.get(name)) for name in measures.NAMES},
            "steps": run.summary.get("steps", ""),
            "seconds": run.summary.get("wall_time_s", ""),
        })
    return rows


def write_csv(rows: list[dict[str, object]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
