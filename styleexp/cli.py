"""Console entry points: turn user mistakes into one-line messages and exit codes."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.plugins import Plugins
from hydra.errors import ConfigCompositionException, OverrideParseException, SearchPathException
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.styleexp_batched.batched_launcher import BatchedLauncher
from styleexp import config
from styleexp.errors import UserError
from styleexp.help import experiments_text

if TYPE_CHECKING:
    from styleexp.run import RunResult

# The repository's conf/ and experiments/, installed as these two packages (pyproject.toml): the same
# folders in an editable install, copies inside site-packages from a wheel.
CONFIG_DIR = str(resources.files("styleexp.conf"))
EXPERIMENTS_DIR = str(resources.files("styleexp.experiments"))
config.register()
# Hydra finds plugins by listing the hydra_plugins folders; an editable install's is not one of them.
Plugins.instance().register(BatchedLauncher)
if not OmegaConf.has_resolver("experiments_dir"):
    OmegaConf.register_new_resolver("experiments_dir", lambda: EXPERIMENTS_DIR)
    OmegaConf.register_new_resolver("styleexp_experiments", lambda: experiments_text(EXPERIMENTS_DIR))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """``styleexp [overrides]``: one style transfer run (Hydra app; ``--help`` lists the config groups).

    In a sweep (``-m``) a job that goes wrong is recorded and the sweep goes on; Ctrl-C stops the sweep.
    Returns the run's objective for sweepers (Optuna); None for a failed job, which Optuna records as
    a failed trial (a NaN would end its whole sweep).
    """
    # Deferred: Lightning and the rest of a run load only once Hydra has a config to run.
    from styleexp.run import run

    check_search()
    return conclude(run(cfg))


def check_search() -> None:
    """``sweeps.check_search``, with its refusal as one line and exit 2."""
    from styleexp import sweeps

    try:
        sweeps.check_search()
    except UserError as error:
        _user_error(error)


def conclude(result: RunResult) -> float | None:
    """A job's last console line and its exit; its objective for the sweeper.

    A single run exits with its code; in a sweep only an interruption (or weights that every other
    job would miss as well) ends the sweep.
    """
    from styleexp.sweeps import is_multirun
    from styleexp.tracking import result_line
    from styleexp.weights import WeightsUnavailable

    if not is_multirun():  # the outcome is on record: a late signal must not give an exit code that contradicts it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if isinstance(result.error, WeightsUnavailable) and is_multirun():
        # Every other job would fail the same way: the sweep stops at its first. SystemExit, not the
        # error itself, which Hydra would record before going on to the next job.
        _user_error(result.error)
    job = f"{result.run_dir.name}: " if is_multirun() else ""
    if isinstance(result.error, UserError):
        print(f"styleexp: {job}error: {result.error}", file=sys.stderr)
    else:
        print(
            f"styleexp: {job}{result_line(result.message, result.summary)}",
            file=sys.stderr if result.exit_code else sys.stdout,
        )
    if result.status == "interrupted" or (result.exit_code and not is_multirun()):
        if result.error is not None and not isinstance(result.error, UserError):
            raise result.error  # a bug, not a user mistake: show the traceback
        sys.exit(result.exit_code)
    return result.objective


def app() -> None:
    """``styleexp``: the Hydra app, with a mistake in the overrides or the config as one line and exit 2."""
    users = os.environ.get("HYDRA_FULL_ERROR")
    # Hydra then raises what went wrong in composing the config, instead of printing it and exiting 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except (ConfigCompositionException, OverrideParseException, SearchPathException) as error:
        if users == "1":  # the user asked for Hydra's whole story
            raise
        _user_error(UserError(composition_message(error)))
    finally:
        if users is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = users


def composition_message(error: Exception) -> str:
    """Hydra's and OmegaConf's account of a config that does not compose, as one line that says what would."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    cause = str(error.__cause__).splitlines()[0] if error.__cause__ is not None else ""
    full_key = getattr(error.__cause__, "full_key", None)
    if full_key and " not in " in cause:
        close = difflib.get_close_matches(full_key, _setting_names(), n=1)
        return f"{full_key} is not a setting{f'; did you mean {close[0]}?' if close else ''} (styleexp --cfg job lists them all)"
    if any(line.startswith("Available options in") for line in lines):
        start = next(i for i, line in enumerate(lines) if line.startswith("Available options in"))
        options = [line for line in lines[start + 1 :] if not line.startswith(("Config search path", "provider="))]
        wanted = re.search(r"Could not find '([^']+)'", lines[0])
        group, _, option = (wanted.group(1) if wanted else "").rpartition("/")
        close = difflib.get_close_matches(option, options, n=1)
        return f"{group}={option} is not an option of {group}{f'; did you mean {group}={close[0]}?' if close else ''} (options: {', '.join(options)})"
    if isinstance(error, OverrideParseException):
        return f"{lines[0]}; overrides look like key=value (https://hydra.cc/docs/advanced/override_grammar/basic)"
    return f"{lines[0]}: {cause}" if cause else lines[0]


def _setting_names() -> list[str]:
    """The dotted names of every setting of the default config."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config"), resolve=False)

    def leaves(node: object, prefix: str) -> list[str]:
        if isinstance(node, dict):
            return [prefix.rstrip(".")] * bool(prefix) + [
                name for key, child in node.items() for name in leaves(child, f"{prefix}{key}.")
            ]
        return [prefix.rstrip(".")]

    return leaves(cfg, "")


def reproduce(argv: list[str] | None = None) -> None:
    """``styleexp-reproduce RUN_OR_SWEEP_DIR [overrides]``: run a saved run or sweep again, into a new folder.

    A run is composed from its saved overrides (plus any given, to change a choice) with its seed,
    weights source and thread count; the command then prints how far the new image is from the old.
    """
    parser = argparse.ArgumentParser(prog="styleexp-reproduce", description=reproduce.__doc__)
    parser.add_argument("folder", type=Path, help="a run folder (with .hydra/) or a sweep folder (with multirun.yaml)")
    parser.add_argument("overrides", nargs="*", help="changes to the saved config, e.g. gram=both")
    args = parser.parse_args(argv)
    from styleexp import reproduce as saved

    sweep = (args.folder / "multirun.yaml").is_file()
    try:
        if sweep:
            arguments, note = saved.sweep_arguments(args.folder, args.overrides, resume=False), None
        else:
            arguments, note = saved.run_arguments(args.folder, args.overrides, CONFIG_DIR)
    except UserError as error:
        _user_error(error)
    if note:
        print(f"styleexp: {note}")
    _launch(arguments)
    if not sweep:
        new_dir = Path(next(a for a in reversed(arguments) if a.startswith("hydra.run.dir=")).partition("=")[2])
        if not (args.folder / "final.png").is_file():
            print(f"styleexp: reproduced {args.folder} in {new_dir}; the original left no final.png to compare with")
            return
        difference = saved.largest_pixel_difference(args.folder, new_dir)
        print(f"styleexp: reproduced {args.folder} in {new_dir}; largest pixel difference {difference}/255")


def resume(argv: list[str] | None = None) -> None:
    """``styleexp-resume SWEEP_DIR [overrides]``: launch a saved sweep again into its folder; completed jobs are skipped.

    Overrides may change how jobs run (``threads``, ``logger``, ``hydra.launcher...``), not what they
    compute: a changed sweep goes into a new folder with ``styleexp-reproduce SWEEP_DIR overrides``.
    """
    parser = argparse.ArgumentParser(prog="styleexp-resume", description=resume.__doc__)
    parser.add_argument("folder", type=Path, help="a sweep folder (with multirun.yaml)")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="added to the sweep's saved overrides; only settings that do not change "
        "a job's result (threads, logger, hydra.launcher...)",
    )
    args = parser.parse_args(argv)
    from styleexp import reproduce as saved

    try:
        saved.check_resumable(args.folder, args.overrides)
        arguments = saved.sweep_arguments(args.folder, args.overrides, resume=True)
    except UserError as error:
        _user_error(error)
    _launch(arguments)


def report(argv: list[str] | None = None) -> None:
    """``styleexp-report SWEEP_DIR [SWEEP_DIR ...]``: grid, tables, conclusions and an HTML page of saved runs.

    One sweep is reported into ``SWEEP_DIR/report/``; several together (the same study run twice, or
    with more seeds later) into the folder ``--out`` names.
    """
    parser = argparse.ArgumentParser(prog="styleexp-report", description=report.__doc__)
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
        "--no-validation", action="store_true", help="skip validating the measures (about a minute the first time)"
    )
    args = parser.parse_args(argv)
    if len(args.folders) > 1 and args.out is None:
        _user_error(UserError("several sweeps need --out FOLDER for their joint report"))
    from styleexp import measures
    from styleexp import report as reports
    from styleexp.measures import validation

    out = args.out or args.folders[0] / "report"
    try:
        runs, keys = reports.load_runs(*args.folders)
        if args.evaluators:
            for run in runs:
                run.scores = {}
        if any(not run.scores and run.image("final") is not None for run in runs):
            reports.score(runs, measures.evaluators(args.evaluators or measures.DEFAULT_EVALUATORS, args.weights_dir))
        used = list(dict.fromkeys(name for run in runs for name in run.summary.get("evaluators", [])))
        if used:
            reports.changes(runs, keys, measures.load(used[0], args.weights_dir))
        settings = reports.report_settings(runs)
        modes = {run.summary.get("mode") for run in runs}
        kinds = [
            kind
            for kind, needs in (("style", {"transfer", "synthesis"}), ("content", {"transfer", "reconstruction"}))
            if modes & needs
        ]
        checks = (
            []
            if args.no_validation or not used
            else validation.cached(reports.validation_images(runs), used, kinds, args.weights_dir)
        )
    except UserError as error:
        _user_error(error)
    made = reports.write(
        out,
        runs,
        keys,
        args.replicate or settings["replicate"],
        title=f"styleexp report: {', '.join(f.name for f in args.folders)}",
        checks=checks,
        rank_by=settings["rank_by"],
    )
    if args.wandb != "disabled":
        group = args.folders[0].name if len(args.folders) == 1 else out.name
        reports.log_to_wandb(made, runs, group, args.wandb)
    failed = sum(run.status != "completed" for run in runs)
    missing = sum(run.status == "missing" for run in runs)
    print(
        f"styleexp: report of {len(runs)} runs ({failed} not completed{f', {missing} of them missing' if missing else ''}) "
        f"in {out}: grid.png, table.csv, table.md, index.html"
    )
    for sentence in made.conclusions:
        print(f"  {sentence}")


def validate_measures(argv: list[str] | None = None) -> None:
    """``styleexp-validate-measures [IMAGE_DIR ...]``: every fair measure through tests whose answer is known.

    Writes ``validation.csv`` and ``validation.md`` (measure x test -> accuracy, with the number of
    trials) into a new folder under ``outputs/validation/`` and prints the table.
    """
    from datetime import datetime

    from styleexp import measures
    from styleexp.measures import probes, validation

    parser = argparse.ArgumentParser(prog="styleexp-validate-measures", description=validate_measures.__doc__)
    parser.add_argument(
        "folders", type=Path, nargs="*", metavar="IMAGE_DIR", help="folders of images (default: the bundled samples)"
    )
    parser.add_argument(
        "--evaluators", nargs="+", default=list(measures.DEFAULT_EVALUATORS), help="evaluators to validate"
    )
    parser.add_argument(
        "--run", type=Path, action="append", default=[], help="a run folder whose output tests the content measures"
    )
    parser.add_argument("--size", type=int, default=probes.SIZE, help="longest side of the test images, in pixels")
    parser.add_argument(
        "--out", type=Path, help="where to write the table (default: a new folder under outputs/validation/)"
    )
    parser.add_argument("--weights-dir", help="where the evaluators' weights are (default: as for runs)")
    args = parser.parse_args(argv)
    try:
        for folder in [*args.folders, *args.run]:
            if not folder.is_dir():
                raise UserError(f"{folder}: no such folder; give folders of images (or run folders with --run)")
        images = probes.folder_images(args.folders, args.size) if args.folders else probes.bundled_images(args.size)
        if len(images) < 2:
            raise UserError(
                f"{len(images)} image found; the tests compare images with each other, so give at least two"
            )
        judges = measures.evaluators(args.evaluators, args.weights_dir)
    except UserError as error:
        _user_error(error)
    results = validation.validate(images, judges, args.run)
    out = args.out or Path("outputs/validation") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    validation.write(results, out)
    print(validation.markdown(results), end="")
    weak = validation.weak(results)
    print(
        f"styleexp: {len(images)} images, {len(judges)} evaluators; table in {out}/validation.csv"
        + (f"; below {validation.THRESHOLD:.2f} at telling images apart: {', '.join(weak)}" if weak else "")
    )


def _launch(arguments: list[str]) -> None:
    """Run the Hydra app with ``arguments`` in this process; a non-zero exit ends this command too."""
    sys.argv = ["styleexp", *arguments]
    try:
        app()
    except SystemExit as done:
        if done.code:
            raise


def _user_error(error: UserError) -> None:
    print(f"styleexp: error: {error}", file=sys.stderr)
    sys.exit(2)
