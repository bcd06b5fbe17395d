"""A sweep's saved runs, as their folders recorded them: one ``Run`` per job (its completed attempt, else its latest).

A job the sweep defines that has no folder is a ``Run`` with status ``missing``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf

from styleexp.errors import UserError
from styleexp.images import load_image
from styleexp.rundir import CONFIG, OVERRIDES, image_file, read_summary
from styleexp.sweeps import ATTEMPT, job_name, naming_keys, overrides_dict, planned_jobs, swept_values


@dataclass
class Run:
    """One job of the sweep as its folder recorded it."""

    name: str
    folder: Path
    choices: dict[str, str]
    summary: dict = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.summary.get("status", "unfinished")

    def image(self, name: str) -> torch.Tensor | None:
        path = image_file(self.folder, name)
        return load_image(path) if path.is_file() else None


def load_runs(*sweep_dirs: Path) -> tuple[list[Run], dict[str, list[str]]]:
    """The jobs of one or more sweeps, and the swept keys with their values in the sweep's own order.

    Runs keep the fair measures their summaries hold as ``scores``. Several sweeps (the same study
    run twice, or with more seeds later) get one more key, ``sweep``, naming each run's folder.
    """
    runs, keys = [], {}
    for sweep_dir in sweep_dirs:
        found, swept = _load_sweep(Path(sweep_dir))
        for run in found:
            if len(sweep_dirs) > 1:
                run.choices["sweep"] = Path(sweep_dir).name
        runs += found
        for key, values in swept.items():
            keys[key] = keys.get(key, []) + [value for value in values if value not in keys.get(key, [])]
    if len(sweep_dirs) > 1:
        keys = {"sweep": [Path(d).name for d in sweep_dirs], **keys}
    return runs, keys


def _load_sweep(sweep_dir: Path) -> tuple[list[Run], dict[str, list[str]]]:
    if not sweep_dir.is_dir():
        what = "a file, not a folder" if sweep_dir.exists() else "no such folder"
        raise UserError(f"{sweep_dir}: {what}; give a sweep folder, e.g. one under outputs/sweeps/")
    if not any(sweep_dir.glob(f"*/{OVERRIDES}")) and not (sweep_dir / "multirun.yaml").is_file():
        raise UserError(
            f"{sweep_dir} is not a sweep folder: it has no multirun.yaml and no job folders; give a folder under "
            "outputs/sweeps/"
        )
    attempts: dict[str, list[Path]] = {}
    for overrides_file in sorted(sweep_dir.glob(f"*/{OVERRIDES}")):
        folder = overrides_file.parent.parent
        attempts.setdefault(folder.name.split(ATTEMPT)[0], []).append(folder)
    runs = []
    for name, folders in attempts.items():
        folders.sort(key=lambda f: int(f.name.split(ATTEMPT)[1]) if ATTEMPT in f.name else 1)
        summaries = [read_summary(f) for f in folders]
        done = [i for i, s in enumerate(summaries) if s.get("status") == "completed"]
        pick = done[-1] if done else len(folders) - 1
        overrides = list(OmegaConf.load(folders[pick] / OVERRIDES))
        summary = summaries[pick]
        runs.append(Run(name, folders[pick], overrides_dict(overrides), summary, dict(summary.get("measures") or {})))
    if not runs:
        raise UserError(f"{sweep_dir} holds no runs yet; launch the sweep first")
    swept = naming_keys(sweep_dir)
    for overrides in planned_jobs(sweep_dir) or []:
        if (name := job_name(overrides, swept)) not in attempts:
            missing = {"status": "missing", "message": f"no job folder; styleexp-resume {sweep_dir} runs it"}
            runs.append(Run(name, sweep_dir / name, overrides_dict(overrides), missing))
    definition = swept_values(sweep_dir)
    if definition is None:  # an Optuna search writes no multirun.yaml: its keys are the overrides that vary
        varying = {key for run in runs for key in run.choices if len({r.choices.get(key) for r in runs}) > 1}
        definition = dict.fromkeys(key for run in runs for key in run.choices if key in varying)
    keys = {
        key: values or natural_sorted({run.choices.get(key, "") for run in runs}) for key, values in definition.items()
    }
    return runs, keys


def report_settings(runs: list[Run]) -> dict:
    """The sweep's ``report`` settings (``replicate``, ``rank_by``, ``verdicts``, ``baseline``) as its first run saved
    them; defaults for older runs."""
    settings = {"replicate": ["seed"], "rank_by": None, "verdicts": None, "baseline": None}
    for run in runs:
        saved = run.folder / CONFIG
        if saved.is_file():
            node = OmegaConf.load(saved).get("report")
            return {**settings, **(OmegaConf.to_container(node) if node is not None else {})}
    return settings


def natural_sorted(values: set[str]) -> list[str]:
    """Sorted so that ``2`` comes before ``10``."""
    return sorted(values, key=lambda v: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", v)])


def position(run: Run, keys: dict[str, list[str]]) -> tuple[str, ...]:
    """The run's values of the swept ``keys``."""
    return tuple(run.choices.get(key, "") for key in keys)


def order(run: Run, keys: dict[str, list[str]]) -> tuple[int, ...]:
    """Where ``run`` comes in the sweep's own order of values (unknown values last)."""
    values = position(run, keys)
    return tuple(keys[key].index(value) if value in keys[key] else len(keys[key]) for key, value in zip(keys, values))
