"""``styleexp-reproduce`` and ``styleexp-resume``: a saved run or sweep again, from what its folder recorded.

A run is composed from its saved overrides with its seed and thread count, into a new folder, and
compared with the original; a sweep is launched again into a new folder (reproduce) or into its own,
skipping the jobs that completed (resume).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from styleexp import cli, outcome, sweeps
from styleexp.errors import UserError
from styleexp.images import load_image
from styleexp.rundir import CONFIG, FINAL, NOT_IDENTITY, OVERRIDES, RESUME, config_identity, read_summary


def run_arguments(run_dir: Path, extra: list[str], config_dir: str) -> tuple[list[str], str | None]:
    """Command-line arguments that run ``run_dir`` again, changed by the ``extra`` overrides, into a new folder.

    The saved overrides must be those the run recorded in its summary; without ``extra``, the config they
    compose today must be the one the run used and the one saved beside them, or a ``UserError`` says
    which file differs in which keys. An interrupted run is run again up to the step it reached, so that
    the two images compare; the second value says so (and names any other way the original did not complete).
    """
    overrides = list(OmegaConf.load(_existing(run_dir, OVERRIDES, "run")))
    summary = read_summary(run_dir)
    recorded = summary.get("overrides", overrides)
    if recorded != overrides:
        edited, before = [o for o in overrides if o not in recorded], [o for o in recorded if o not in overrides]
        raise UserError(
            f"{run_dir / OVERRIDES} differs from the overrides its summary.json records ({' '.join(edited) or 'none'} "
            f"where the run had {' '.join(before) or 'none'}): it was edited after the run; restore it, or give a "
            f"change as overrides: styleexp-reproduce {run_dir} KEY=VALUE"
        )
    if not extra:
        _check_unchanged(run_dir, overrides, summary.get("config_sha256"), config_dir)
    # The same number of threads: results then match bit for bit, whatever the CPU reductions' order.
    threads = [f"threads={summary['threads']}"] if summary.get("threads") else []
    new_dir = Path("outputs/runs") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    run_dir_given = any(override.startswith("hydra.run.dir=") for override in extra)
    until, note = _as_far_as(summary)
    return [*overrides, *threads, *until, *extra, *([] if run_dir_given else [f"hydra.run.dir={new_dir}"])], note


def _as_far_as(summary: dict) -> tuple[list[str], str | None]:
    """Overrides that end a run where the original ``summary`` ended, and a sentence saying why; none for a completed
    run."""
    status = summary.get("status", "unfinished")
    if status == "completed":
        return [], None
    scales = summary.get("scales") or []
    if status != "interrupted" or not scales or not scales[-1]["steps"]:
        return [], f"the original run did not complete ({status}: {summary.get('message', 'no summary.json')})"
    sizes, steps = [scale["size"] for scale in scales], [scale["steps"] for scale in scales]
    until = (
        [f"steps={steps[0]}"]
        if len(scales) == 1
        else [f"scales=[{','.join(map(str, sizes))}]", f"size={sizes[-1]}", f"steps=[{','.join(map(str, steps))}]"]
    )
    return until, (
        f"the original run was interrupted at step {summary.get('steps')} of {summary.get('max_steps')}; "
        f"reproduced up to that step ({' '.join(until)})"
    )


def sweep_arguments(sweep_dir: Path, extra: list[str], resume: bool) -> list[str]:
    """Command-line arguments that launch the sweep of ``sweep_dir`` again: into it (``resume``) or a new folder."""
    saved = OmegaConf.load(_existing(sweep_dir, "multirun.yaml", "sweep")).hydra.overrides
    launcher = [override for override in saved.hydra if not override.startswith(("hydra.sweep.dir=", "hydra.mode="))]
    where = [f"hydra.sweep.dir={sweep_dir}"] if resume else []
    return ["-m", *saved.task, *launcher, *extra, *where]


def check_resumable(sweep_dir: Path, extra: list[str]) -> None:
    """Refuse overrides that would change what the jobs of ``sweep_dir`` compute: one folder, one configuration."""
    if changed := sweeps.changing(extra):
        raise UserError(
            f"{' '.join(changed)} would change the jobs of {sweep_dir}, and its report would mix two configurations; "
            f"run the changed sweep into a new folder with: styleexp-reproduce {sweep_dir} {' '.join(extra)}"
        )


def largest_pixel_difference(run_a: Path, run_b: Path) -> int:
    """The largest difference between the two runs' ``final.png``, in 8-bit levels (0 to 255)."""
    a, b = (load_image(run / FINAL) for run in (run_a, run_b))
    return round(float((a - b).abs().max()) * 255)


def reproduce_main(argv: list[str] | None = None) -> None:
    """``styleexp-reproduce RUN_OR_SWEEP_DIR [overrides]``: run a saved run or sweep again, into a new folder.

    A run is composed from its saved overrides (plus any given, to change a choice) with its seed,
    weights source and thread count; the command then prints how far the new image is from the old.
    """
    parser = argparse.ArgumentParser(prog="styleexp-reproduce", description=reproduce_main.__doc__)
    parser.add_argument("folder", type=Path, help="a run folder (with .hydra/) or a sweep folder (with multirun.yaml)")
    parser.add_argument("overrides", nargs="*", help="changes to the saved config, e.g. gram=both")
    args = parser.parse_args(argv)
    sweep = (args.folder / "multirun.yaml").is_file()
    try:
        if sweep:
            arguments, note = sweep_arguments(args.folder, args.overrides, resume=False), None
        else:
            arguments, note = run_arguments(args.folder, args.overrides, cli.CONFIG_DIR)
    except UserError as error:
        outcome.refuse(error)
    if note:
        print(f"styleexp: {note}")
    cli.launch(arguments)
    if not sweep:
        new_dir = Path(next(a for a in reversed(arguments) if a.startswith("hydra.run.dir=")).partition("=")[2])
        if not (args.folder / FINAL).is_file():
            print(f"styleexp: reproduced {args.folder} in {new_dir}; the original left no {FINAL} to compare with")
            return
        difference = largest_pixel_difference(args.folder, new_dir)
        print(f"styleexp: reproduced {args.folder} in {new_dir}; largest pixel difference {difference}/255")


def resume_main(argv: list[str] | None = None) -> None:
    """``styleexp-resume SWEEP_OR_RUN_DIR [overrides]``: launch a saved sweep again into its folder (completed jobs are
    skipped, interrupted ones go on from their saved state), or go on with an interrupted run from its saved state.

    Overrides may change how jobs run (``threads``, ``logger``, ``hydra.launcher...``), not what they
    compute: a changed sweep goes into a new folder with ``styleexp-reproduce SWEEP_DIR overrides``.
    """
    parser = argparse.ArgumentParser(prog="styleexp-resume", description=resume_main.__doc__)
    parser.add_argument(
        "folder", type=Path, help="a sweep folder (with multirun.yaml), or a run folder with saved state (resume.pt)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="added to the sweep's saved overrides; only settings that do not change "
        "a job's result (threads, logger, hydra.launcher...)",
    )
    args = parser.parse_args(argv)
    try:
        check_resumable(args.folder, args.overrides)
        if (args.folder / "multirun.yaml").is_file():
            arguments = sweep_arguments(args.folder, args.overrides, resume=True)
        else:
            arguments = interrupted_run_arguments(args.folder, args.overrides)
    except UserError as error:
        outcome.refuse(error)
    cli.launch(arguments)


def interrupted_run_arguments(run_dir: Path, extra: list[str]) -> list[str]:
    """Command-line arguments that go on with the interrupted run of ``run_dir`` in it, from its saved state."""
    overrides = list(OmegaConf.load(_existing(run_dir, OVERRIDES, "run or sweep")))
    if not (run_dir / RESUME).is_file():
        raise UserError(
            f"{run_dir} holds no saved state ({RESUME}) to go on from: its run completed, failed, or stopped before "
            f"saving one (checkpoint_every_s); run it again with styleexp-reproduce {run_dir}"
        )
    return [*overrides, *extra, f"hydra.run.dir={run_dir}"]


def _check_unchanged(run_dir: Path, overrides: list[str], identity: str | None, config_dir: str) -> None:
    """Refuse a run whose saved config is not what its saved ``overrides`` compose today: conf/ has changed (the
    composed config is not the one the run recorded as ``identity``), or ``.hydra/config.yaml`` was edited."""
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    saved = _leaves(OmegaConf.to_container(OmegaConf.load(_existing(run_dir, CONFIG, "run"))))
    now = _leaves(OmegaConf.to_container(cfg, enum_to_str=True))
    changed = sorted(
        key
        for key in saved.keys() | now.keys()
        if saved.get(key) != now.get(key) and key.split(".")[0] not in NOT_IDENTITY
    )
    if identity is not None and config_identity(cfg) != identity:
        raise UserError(
            f"the config under conf/ has changed since {run_dir} was made ({', '.join(changed) or 'resolved values'}); "
            "check out the commit in its summary.json (versions.styleexp_commit), or add overrides to run it changed"
        )
    if changed:
        values = ", ".join(f"{key}={saved.get(key)} saved, {now.get(key)} composed" for key in changed)
        cause = "it was edited after the run" if identity else "it was edited after the run, or conf/ has changed"
        raise UserError(
            f"{run_dir / CONFIG} differs from what its {OVERRIDES} compose ({values}): {cause}; restore it, or give "
            f"a change as overrides: styleexp-reproduce {run_dir} KEY=VALUE"
        )


def _leaves(tree: object, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        return {key: value for name, child in tree.items() for key, value in _leaves(child, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): tree}


def _existing(folder: Path, name: str, kind: str) -> Path:
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise UserError(f"{folder}: {what}; give the folder of a finished {kind}")
    if not (folder / name).is_file():
        raise UserError(f"{folder} is not a {kind} folder: it has no {name}; give the folder of a finished {kind}")
    return folder / name
