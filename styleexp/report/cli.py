"""``styleexp-report``: the report of one or more saved sweeps, from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

from styleexp import measures, outcome, report
from styleexp.errors import UserError
from styleexp.measures import validation_cache
from styleexp.report.changes import cache_file
from styleexp.report.tables import measure_names


def main(argv: list[str] | None = None) -> None:
    """``styleexp-report SWEEP_DIR [SWEEP_DIR ...]``: grid, tables, conclusions and an HTML page of saved runs.

    One sweep is reported into ``SWEEP_DIR/report/``; several together (the same study run twice, or
    with more seeds later) into the folder ``--out`` names.
    """
    parser = argparse.ArgumentParser(prog="styleexp-report", description=main.__doc__)
    parser.add_argument("folders", type=Path, nargs="+", metavar="SWEEP_DIR", help="sweep folders (with multirun.yaml)")
    parser.add_argument("--out", type=Path, help="where to write the report (default: SWEEP_DIR/report for one sweep)")
    parser.add_argument(
        "--replicate",
        nargs="+",
        help="swept keys that repeat a variant: means and intervals are taken over them (default: the "
        "sweep's report.replicate, seed)",
    )
    parser.add_argument(
        "--wandb",
        default=os.environ.get("WANDB_MODE", "offline"),
        choices=["offline", "online", "disabled"],
        help="log the table and charts to W&B (default: offline, or $WANDB_MODE)",
    )
    parser.add_argument("--weights-dir", help="where the evaluators' weights are, for runs saved without measures")
    parser.add_argument(
        "--evaluators",
        nargs="+",
        help="score every run again with these evaluators (default: use the measures "
        "the runs saved, and the default evaluators for runs saved without any)",
    )
    parser.add_argument(
        "--verdicts",
        nargs="+",
        metavar="MEASURE",
        help="only these measures' comparisons make verdicts, one Holm family (default: the sweep's report.verdicts, "
        "else every measure)",
    )
    parser.add_argument(
        "--no-validation", action="store_true", help="skip validating the measures (about a minute the first time)"
    )
    args = parser.parse_args(argv)
    if len(args.folders) > 1 and args.out is None:
        outcome.refuse(UserError("several sweeps need --out FOLDER for their joint report"))
    out = args.out or args.folders[0] / "report"
    try:
        runs, keys = report.load_runs(*args.folders)
        if args.evaluators:
            for run in runs:
                run.scores = {}
        report.score(runs, args.evaluators or measures.DEFAULT_EVALUATORS, args.weights_dir)
        used = list(dict.fromkeys(name for run in runs for name in run.summary.get("evaluators", [])))
        if used:
            # Cached in each sweep folder: a rerun, or a joint report of these sweeps, runs no evaluator network for it.
            load = partial(measures.load, used[0], args.weights_dir)
            report.changes(runs, keys, used[0], load, [cache_file(folder) for folder in args.folders])
        settings = report.report_settings(runs)
        verdicts = args.verdicts or settings["verdicts"]
        held = measure_names(runs, held_only=True)
        unknown = [name for name in verdicts or [] if name not in held]
        if unknown and args.verdicts:
            raise UserError(f"--verdicts {', '.join(unknown)}: no run holds it; they hold {', '.join(held)}")
        if unknown:  # the study's rule names an evaluator this sweep ran without (measures.networks=[])
            print(f"styleexp-report: no run holds {', '.join(unknown)}, which the study's rule names", file=sys.stderr)
            verdicts = [name for name in verdicts if name in held] or None
        modes = {run.summary.get("mode") for run in runs}
        kinds = [
            kind
            for kind, needs in (("style", {"transfer", "synthesis"}), ("content", {"transfer", "reconstruction"}))
            if modes & needs
        ]
        checks = (
            []
            if args.no_validation or not used
            else validation_cache.cached(report.validation_images(runs), used, kinds, args.weights_dir)
        )
    except UserError as error:
        outcome.refuse(error)
    made = report.write(
        out,
        runs,
        keys,
        args.replicate or settings["replicate"],
        title=f"styleexp report: {', '.join(f.name for f in args.folders)}",
        checks=checks,
        rank_by=settings["rank_by"],
        verdicts=verdicts,
        baseline=settings["baseline"],
    )
    if args.wandb != "disabled":
        group = args.folders[0].name if len(args.folders) == 1 else out.name
        # A few seconds even offline (W&B starts a service): said, so that a pause is not taken for a hang.
        print(f"styleexp-report: logging the report to W&B ({args.wandb}, group {group})", file=sys.stderr, flush=True)
        report.log_to_wandb(made, runs, group, args.wandb)
    failed = sum(run.status != "completed" for run in runs)
    missing = sum(run.status == "missing" for run in runs)
    of_them = f", {missing} of them missing" if missing else ""
    print(
        f"styleexp: report of {len(runs)} runs ({failed} not completed{of_them}) in {out}: grid.png, table.csv, "
        "table.md, index.html"
    )
    for sentence in made.conclusions:
        print(f"  {sentence}")
