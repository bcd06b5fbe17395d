"""``python -m styleexp.traits SWEEP_DIR ...``: every trait of every finished run of a sweep, as tables."""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from styleexp import outcome, samples
from styleexp.errors import UserError
from styleexp.images import load_image
from styleexp.report.load import Run, load_runs, order
from styleexp.report.tables import markdown_table
from styleexp.rundir import CONFIG, FINAL
from styleexp.traits.trait import INPUTS, TRAITS


def main(argv: list[str] | None = None) -> None:
    """``python -m styleexp.traits SWEEP_DIR ... [--traits NAME ...] [--average KEY ...]``: the traits of every run
    of the sweeps that has a ``final.png``, one row per run, then the same traits of their style images (the values
    a synthesis that keeps a trait comes close to), then what each trait tests (docs/traits.md says more)."""
    parser = argparse.ArgumentParser(prog="python -m styleexp.traits", description=main.__doc__)
    parser.add_argument(
        "sweeps", type=Path, nargs="+", metavar="SWEEP_DIR", help="a sweep folder under outputs/sweeps/"
    )
    parser.add_argument("--traits", nargs="+", default=_by_claim(), help="which traits (default: all)")
    parser.add_argument(
        "--average", nargs="+", default=[], metavar="KEY", help="one row per value of the other keys, mean over KEY"
    )
    args = parser.parse_args(argv)
    try:
        chosen = {name: TRAITS[name] for name in args.traits}
        runs, keys = load_runs(*args.sweeps)
        finished = [run for run in sorted(runs, key=lambda r: order(r, keys)) if (run.folder / FINAL).is_file()]
        if not finished:
            raise UserError(f"no run of {', '.join(map(str, args.sweeps))} has a {FINAL} yet; wait for one to finish")
        print(f"styleexp: {len(chosen)} traits of {len(finished)} runs ...", file=sys.stderr, flush=True)
        rows, styles = [], {}
        for run in finished:
            final, config = load_image(run.folder / FINAL), _config(run)
            inputs = _inputs(run, config, max(final.shape[1:]))
            values = {name: trait.of(final, inputs) for name, trait in chosen.items()}
            rows.append(
                {"run": run.name, **{key: run.choices.get(key, "") for key in keys}, "status": run.status, **values}
            )
            if inputs["style"] is not None:
                styles.setdefault(_style_name(run, config), inputs["style"])
        alone = {name: trait for name, trait in chosen.items() if "content" not in trait.needs}
        reference = [
            {"style": name, **{key: trait.of(image, {"style": image}) for key, trait in alone.items()}}
            for name, image in (styles.items() if alone else [])
        ]
    except UserError as error:
        outcome.refuse(error)
    print(markdown_table(_averaged(rows, args.average, list(chosen)) if args.average else rows))
    if reference:
        print("The style images themselves:\n")
        print(markdown_table(reference))
    print("\n".join(f"- {name}: {trait.claim}" for name, trait in chosen.items()))
    if skipped := len(runs) - len(finished):
        print(f"styleexp: left out {skipped} of {len(runs)} runs, which have no {FINAL} yet", file=sys.stderr)


def _by_claim() -> list[str]:
    """The traits' names, those of one write-up's claims together."""
    return sorted(TRAITS, key=lambda name: (TRAITS[name].claim, name))


def _inputs(run: Run, config: dict, size: int) -> dict[str, torch.Tensor | None]:
    """The run's style and content images: those its folder saved, else the bundled samples its config names."""
    found = {}
    for role in INPUTS:
        image = run.image(role)
        if image is None and (names := samples.names(config.get(role))):
            image = samples.load(names[0], size)
        found[role] = image
    return found


def _style_name(run: Run, config: dict) -> str:
    """What the run's config calls its style image (a sample's name or a file's), else the run's name."""
    names = samples.names(config.get("style"))
    return Path(names[0]).name if names else run.name


def _config(run: Run) -> dict:
    """The run's saved config; {} where it has none."""
    path = run.folder / CONFIG
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else {}


def _averaged(rows: list[dict], over: list[str], traits: list[str]) -> list[dict]:
    """One row per value of the keys other than ``over``: each trait's mean over its rows that have one, and ``n``."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        kept = {key: value for key, value in row.items() if key not in {"run", "status", *over, *traits}}
        groups.setdefault(tuple(kept.items()), []).append(row)
    averaged = []
    for kept, members in groups.items():
        means = {}
        for name in traits:
            values = [row[name] for row in members if row[name] is not None]
            means[name] = statistics.fmean(values) if values else None
        averaged.append({**dict(kept), "n": len(members), **means})
    return averaged
