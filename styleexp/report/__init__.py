"""Finished sweeps as a paper would show them: an image grid, tables of fair measures, conclusions, an HTML page.

Reads the saved run folders only; never reruns anything. Writes into ``<sweep>/report/`` (or the
folder given): ``grid.png``, ``table.csv``, ``table.md``, ``variants.csv``, the charts and
``index.html`` (self-contained: images inlined, opens from disk). ``load`` reads the runs,
``tables`` makes the tables, ``compare`` and ``inference`` the conclusions, ``plots`` the charts, ``grid`` the figure,
``page`` the page and ``wandb_charts`` the native charts of its W&B run.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from styleexp import measures, samples
from styleexp.images import load_image
from styleexp.measures import probes, validation
from styleexp.report import compare, inference, plots, wandb_charts
from styleexp.report.changes import CHANGE, ORDERED, changes
from styleexp.report.grid import CELL, grid, layout, thumbnail
from styleexp.report.load import Run, load_runs, position, report_settings
from styleexp.report.page import page
from styleexp.report.tables import markdown_table, measure_names, table_rows, write_csv
from styleexp.rundir import CONFIG, FINAL, image_file

__all__ = [
    "CELL",
    "CHANGE",
    "ORDERED",
    "Report",
    "Run",
    "changes",
    "grid",
    "load_runs",
    "log_to_wandb",
    "report_settings",
    "score",
    "table_rows",
    "thumbnail",
    "write",
]


@dataclass
class Report:
    """What ``write`` made: the folder, the run table, the variants over replicates, the conclusions (the method's
    sentence first, then a verdict per comparison and the evaluators' agreement), the charts; and what the charts
    show, for W&B's own: the swept keys, the factors, the measures and the loss curves' rows (a title and its
    labelled runs)."""

    folder: Path
    rows: list[dict[str, object]]
    variants: list[dict[str, object]]
    conclusions: list[str]
    charts: list[Path]
    rankings: dict[str, list[str]]
    keys: dict[str, list[str]]
    factors: list[str]
    measures: list[str]
    loss_rows: list[tuple[str, list[tuple[Run, str]]]]


def validation_images(runs: list[Run]) -> dict[str, torch.Tensor]:
    """What the report validates its measures on: the bundled samples, and the sweep's inputs that are not samples."""
    images = probes.bundled_images()
    for run in runs:
        saved = run.folder / CONFIG
        config = OmegaConf.load(saved) if saved.is_file() else {}
        for name in ("content", "style"):
            given = config.get(name)
            if given and str(given) not in samples.SAMPLES and image_file(run.folder, name).is_file():
                images.setdefault(Path(str(given)).name, load_image(image_file(run.folder, name), probes.SIZE))
    return images


def score(runs: list[Run], names: Sequence[str], weights_dir: str | None = None) -> None:
    """Fill the ``scores`` of runs saved without measures (measuring off, or saved before it was on) with the
    evaluators ``names`` (and those always on), saying so on the console."""
    unscored = [run for run in runs if not run.scores and run.image("final") is not None]
    if not unscored:
        return
    print(f"styleexp-report: scoring {len(unscored)} runs saved without measures", file=sys.stderr, flush=True)
    judges = measures.evaluators(names, weights_dir)
    for run in unscored:
        run.scores = measures.measure(judges, run.image("final"), run.image("content"), run.image("style"))
        run.summary["evaluators"] = list(names)  # as a run records them: the always-on ones are implied


def write(
    out: Path,
    runs: list[Run],
    keys: dict[str, list[str]],
    replicate: Sequence[str] = ("seed",),
    title: str | None = None,
    checks: Sequence[validation.Result] = (),
    rank_by: str | None = None,
    verdicts: Sequence[str] | None = None,
    baseline: str | None = None,
) -> Report:
    """Write the grid, the tables, the conclusions, the charts and the page into ``out``.

    ``checks`` are the validation results of the measures (``validation.validate``): the page lists
    them, and a conclusion that rests on a measure too weak at telling images apart says so.
    ``rank_by`` orders the runs by a measure, best first, in a section of its own. ``verdicts`` names the measures
    whose comparisons make the verdict lines (a rule stated before the numbers); None: every measure. ``baseline``, a
    value of the compared key, is compared with each other value instead of every pair being compared.
    """
    out.mkdir(parents=True, exist_ok=True)
    replicate = [*replicate, *(["sweep"] if "sweep" in keys else [])]
    # Replicates first: the grid's columns and the paired question are then the last factor.
    keys = {
        **{k: v for k, v in keys.items() if k in replicate},
        **{k: v for k, v in keys.items() if k not in replicate},
    }
    rows = table_rows(runs, keys)
    write_csv(rows, out / "table.csv")
    (out / "table.md").write_text(markdown_table(rows))
    names = measure_names(runs, held_only=True)
    variants = compare.variants(runs, keys, replicate, names)
    if variants:
        write_csv(variants, out / "variants.csv")
    evaluators = list(dict.fromkeys(name for run in runs for name in run.summary.get("evaluators", [])))
    first = evaluators[0] if evaluators else "the first evaluator"
    checks = validation.plain_names(list(checks), first)
    weak = validation.reasons(checks)
    judged = [name for name in names if name != CHANGE and (verdicts is None or name in verdicts)]
    comparisons = [c for name in judged for c in compare.paired(runs, keys, replicate, name, baseline)]
    sentences = [
        line
        + (f" (A weak measure: {weak[c.measure]}, so this verdict is not to be trusted.)" if c.measure in weak else "")
        for c, line in zip(comparisons, inference.verdicts(comparisons))
    ]
    asked = compare.question(keys, replicate)
    method = inference.method(comparisons, asked) if comparisons else ""
    rankings = compare.evaluator_rankings(runs, keys, replicate, names, first)
    factors = compare.factors(keys, replicate)
    if rankings and (verdict := compare.agreement(rankings, asked)):
        sentences.append(verdict)
    sentences += compare.disagreements(runs, keys, replicate, names, first)
    charts = (
        [
            plots.save(plots.measure_figure(runs, keys, factors, name), out / f"measure_{_file_name(name)}.png")
            for name in names
        ]
        if factors
        else []
    )
    loss_rows = []
    for row in layout(keys)[0]:
        row_runs = [run for run in runs if position(run, keys)[: len(row)] == row] if keys else runs
        labelled = [
            (run, ", ".join(f"{key}={run.choices.get(key, '')}" for key in list(keys)[len(row) :]) or run.folder.name)
            for run in row_runs
        ]
        loss_rows.append((", ".join(f"{key}={value}" for key, value in zip(keys, row)) or "all runs", labelled))
    loss_charts = [
        plots.save(plots.loss_figure(labelled, title), out / f"losses_{i:02d}.png")
        for i, (title, labelled) in enumerate(loss_rows)
    ]
    grid(runs, keys)[0].save(out / "grid.png")
    failed = sum(run.status != "completed" for run in runs)
    overview = f"{len(runs)} runs ({failed} not completed); swept: " + (
        ", ".join(f"{k} ({len(v)})" for k, v in keys.items()) or "nothing"
    )
    # The negative controls stay beside the measures: they are the bar a measure has to clear.
    used = [check for check in checks if check.measure in names or validation.is_control(check.measure)]
    if used:
        validation.write(used, out)
    ranked = compare.ranked(runs, rank_by) if rank_by in names else []
    (out / "index.html").write_text(
        page(
            title or f"styleexp report: {out.parent.name}",
            overview,
            runs,
            rows,
            variants,
            method,
            sentences,
            out / "grid.png",
            charts,
            loss_charts,
            evaluators,
            rankings,
            used,
            ranked,
            rank_by,
        )
    )
    conclusions = [method, *sentences] if method else sentences
    return Report(out, rows, variants, conclusions, charts, rankings, keys, factors, names, loss_rows)


def log_to_wandb(report: Report, runs: list[Run], group: str, mode: str) -> None:
    """Log the report as a ``report`` run in ``group``: the table (numbers as numbers, each run's W&B id and name, its
    final image), the grid, and native W&B charts of each measure against each factor and of the loss curves."""
    import wandb

    saved = OmegaConf.load(runs[0].folder / CONFIG)
    project = OmegaConf.select(saved, "logger.wandb.project", default="styleexp")
    chosen = (run.summary.get("choices") or {} for run in runs)
    studies = sorted({f"{key}:{c[key]}" for c in chosen for key in ("study", "preset") if c.get(key)})
    os.environ["WANDB_DATA_DIR"] = str(report.folder / "wandb")  # its tables' images staged beside it for `wandb sync`
    run = wandb.init(
        project=project,
        group=group,
        name=f"report-{group}",
        job_type="report",
        tags=["report", *studies],
        dir=report.folder,
        mode=mode,
        config={"runs": len(runs), "swept": report.keys, "factors": report.factors},
        settings=wandb.Settings(silent=True),
    )
    try:
        by_name = {r.folder.name: r for r in runs}
        columns = ["wandb_id", "wandb_name", *report.rows[0], "final"]
        data = []
        for row in report.rows:
            reported = by_name[row["run"]]
            final = reported.folder / FINAL
            image = wandb.Image(str(final)) if final.is_file() else None
            identity = reported.summary.get("wandb") or {}
            data.append([identity.get("id"), identity.get("name"), *row.values(), image])
        logged = {
            "report/table": wandb.Table(columns=columns, data=data),
            "report/grid": wandb.Image(str(report.folder / "grid.png")),
        }
        for name in report.measures:
            for key in report.factors:
                logged[f"measures/{name} by {key}"] = wandb_charts.measure_chart(
                    runs, report.keys, report.factors, name, key
                )
        for title, labelled in report.loss_rows:
            logged[f"losses/{title}"] = wandb_charts.loss_chart(labelled, title)
        run.log({key: value for key, value in logged.items() if value is not None})
        run.summary.update({"conclusions": "\n".join(report.conclusions)})
    finally:
        run.finish()


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
