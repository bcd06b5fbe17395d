"""Finished sweeps as a paper would show them: an image grid, tables of fair measures, conclusions, an HTML page.

Reads the saved run folders only; never reruns anything. Writes into ``<sweep>/report/`` (or the
folder given): ``grid.png``, ``table.csv``, ``table.md``, ``variants.csv``, the charts and
``index.html`` (self-contained: images inlined, opens from disk). ``load`` reads the runs,
``tables`` makes the tables, ``compare`` the conclusions, ``plots`` the charts, ``grid`` the figure
and ``page`` the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from styleexp import measures
from styleexp.report import compare, plots
from styleexp.report.grid import CELL, grid, layout, thumbnail
from styleexp.report.load import Run, load_runs, position
from styleexp.report.page import page
from styleexp.report.tables import markdown_table, measure_names, table_rows, write_csv

__all__ = ["CELL", "Report", "Run", "grid", "load_runs", "log_to_wandb", "score", "table_rows", "thumbnail", "write"]


@dataclass
class Report:
    """What ``write`` made: the folder, the run table, the variants over replicates and the conclusions."""

    folder: Path
    rows: list[dict[str, object]]
    variants: list[dict[str, object]]
    conclusions: list[str]
    charts: list[Path]


def score(runs: list[Run], judges: Sequence[measures.Evaluator]) -> None:
    """Fill the ``scores`` of runs saved without measures (before they were taken in every run) with the fixed measures."""
    for run in runs:
        output = run.image("final")
        if output is not None and not run.scores:
            run.scores = measures.measure(judges, output, run.image("content"), run.image("style"))
            run.summary.setdefault("evaluators", [judge.name for judge in judges])


def write(
    out: Path, runs: list[Run], keys: dict[str, list[str]], replicate: Sequence[str] = ("seed",), title: str | None = None
) -> Report:
    """Write the grid, the tables, the conclusions, the charts and the page into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    replicate = [*replicate, *(["sweep"] if "sweep" in keys else [])]
    # Replicates first: the grid's columns and the paired question are then the last factor.
    keys = {**{k: v for k, v in keys.items() if k in replicate}, **{k: v for k, v in keys.items() if k not in replicate}}
    rows = table_rows(runs, keys)
    write_csv(rows, out / "table.csv")
    (out / "table.md").write_text(markdown_table(rows))
    names = measure_names(runs, held_only=True)
    variants = compare.variants(runs, keys, replicate, names)
    if variants:
        write_csv(variants, out / "variants.csv")
    evaluators = list(dict.fromkeys(name for run in runs for name in run.summary.get("evaluators", [])))
    sentences = [s for name in names if (s := compare.conclusion(compare.paired(runs, keys, replicate, name), name))]
    sentences += compare.disagreements(runs, keys, replicate, names, evaluators[0] if evaluators else "the first evaluator")
    factors = compare.factors(keys, replicate)
    charts = [plots.save(plots.measure_figure(runs, keys, factors, name), out / f"measure_{_file_name(name)}.png")
              for name in names] if factors else []
    loss_charts = []
    for i, row in enumerate(layout(keys)[0]):
        row_runs = [run for run in runs if position(run, keys)[: len(row)] == row] if keys else runs
        title = ", ".join(f"{key}={value}" for key, value in zip(keys, row)) or "all runs"
        labelled = [(run, ", ".join(f"{key}={run.choices.get(key, '')}" for key in list(keys)[len(row):]) or run.folder.name)
                    for run in row_runs]
        loss_charts.append(plots.save(plots.loss_figure(labelled, title), out / f"losses_{i:02d}.png"))
    grid(runs, keys)[0].save(out / "grid.png")
    failed = sum(run.status != "completed" for run in runs)
    overview = f"{len(runs)} runs ({failed} not completed); swept: " + (", ".join(f"{k} ({len(v)})" for k, v in keys.items()) or "nothing")
    (out / "index.html").write_text(page(
        title or f"styleexp report: {out.parent.name}", overview, runs, rows, variants, sentences, out / "grid.png",
        charts, loss_charts, evaluators,
    ))
    return Report(out, rows, variants, sentences, charts)


def log_to_wandb(report: Report, runs: list[Run], group: str, mode: str) -> None:
    """Log the table (numbers as numbers, each run's final image), the grid and the charts as a ``report`` run in ``group``."""
    import wandb

    saved = OmegaConf.load(runs[0].folder / ".hydra" / "config.yaml")
    project = OmegaConf.select(saved, "logger.wandb.project", default="styleexp")
    run = wandb.init(project=project, group=group, name=f"report-{group}", job_type="report",
                     dir=report.folder, mode=mode, config={"runs": len(runs)})
    try:
        by_name = {r.folder.name: r for r in runs}
        columns = [*report.rows[0], "final"]
        data = []
        for row in report.rows:
            final = by_name[row["run"]].folder / "final.png"
            data.append([*row.values(), wandb.Image(str(final)) if final.is_file() else None])
        logged = {"report/table": wandb.Table(columns=columns, data=data), "report/grid": wandb.Image(str(report.folder / "grid.png"))}
        logged.update({f"report/{chart.stem}": wandb.Image(str(chart)) for chart in report.charts})
        run.log(logged)
        run.summary.update({"conclusions": "\n".join(report.conclusions)})
    finally:
        run.finish()


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
