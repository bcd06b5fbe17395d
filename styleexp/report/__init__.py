"""A finished sweep as a paper would show it: an image grid, a table of fair measures, an HTML page.

Reads the saved run folders only; never reruns anything. Writes ``<sweep>/report/``: ``grid.png``,
``table.csv``, ``table.md`` and ``index.html`` (self-contained: images inlined, opens from disk).
``load`` reads the runs, ``tables`` makes the table, ``grid`` the figure, ``page`` the page.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from styleexp import measures
from styleexp.report.grid import CELL, grid, thumbnail
from styleexp.report.load import Run, load_runs
from styleexp.report.page import page
from styleexp.report.tables import markdown_table, table_rows, write_csv

__all__ = ["CELL", "Run", "grid", "load_runs", "log_to_wandb", "score", "table_rows", "thumbnail", "write"]


def score(runs: list[Run], network: torch.nn.Module) -> None:
    """Fill each run's ``scores`` with the fixed measures of its final image."""
    for run in runs:
        output = run.image("final")
        if output is not None:
            run.scores = measures.measure(network, output, run.image("content"), run.image("style"))


def write(sweep_dir: Path, runs: list[Run], keys: dict[str, list[str]]) -> tuple[Path, list[dict[str, object]]]:
    """Write the grid, the tables and the page into ``<sweep_dir>/report/``; return that folder and the table."""
    out = sweep_dir / "report"
    out.mkdir(exist_ok=True)
    rows = table_rows(runs, keys)
    write_csv(rows, out / "table.csv")
    (out / "table.md").write_text(markdown_table(rows))
    grid(runs, keys)[0].save(out / "grid.png")
    (out / "index.html").write_text(page(sweep_dir, runs, rows, out / "grid.png"))
    return out, rows


def log_to_wandb(sweep_dir: Path, runs: list[Run], rows: list[dict[str, object]], grid_png: Path, mode: str) -> None:
    """Log the table and the grid as a ``report`` run in the sweep's W&B group (offline unless ``mode`` says otherwise)."""
    import wandb

    saved = OmegaConf.load(runs[0].folder / ".hydra" / "config.yaml")
    project = OmegaConf.select(saved, "logger.wandb.project", default="styleexp")
    run = wandb.init(project=project, group=sweep_dir.name, name=f"report-{sweep_dir.name}", job_type="report",
                     dir=grid_png.parent, mode=mode, config={"sweep_dir": str(sweep_dir)})
    try:
        table = wandb.Table(columns=list(rows[0]), data=[[str(value) for value in row.values()] for row in rows])
        run.log({"report/table": table, "report/grid": wandb.Image(str(grid_png))})
    finally:
        run.finish()
