"""What Hydra multirun adds to a run: readable job folders, resume, names and groups, and the end-of-sweep record.

A job's folder is named by its overrides (``gram=centered,seed=1``). Relaunching a sweep into the same
folder finds each job's earlier folder: a run that completed with the same config is skipped, any other
earlier attempt is kept and the job runs again in ``<name>~attempt2`` (``~attempt3``, ...).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from itertools import count
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback as HydraCallback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from styleexp.errors import UserError
from styleexp.rundir import completed_identity, config_identity, read_summary

MAX_NAME = 120  # characters; file systems allow 255 bytes per folder name
ATTEMPT = "~attempt"


def job_name(overrides: list[str], swept: set[str] | None = None) -> str:
    """A folder name that reads as the job's values of the ``swept`` keys (all if None): ``gram=centered,seed=1``.

    A path value is shortened to its file name (a ``/`` would nest folders), with a short hash of all
    overrides appended so two paths with one file name still get two folders.
    """
    items, shortened = [], False
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if swept is not None and key not in swept:
            continue
        if "/" in value:
            value, shortened = Path(value).name, True
        items.append(f"{key}={value}")
    name = ",".join(items) or "defaults"
    digest = hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8]
    if len(name) > MAX_NAME:
        return f"{name[:MAX_NAME]}...{digest}"
    return f"{name}-{digest}" if shortened else name


def job_dir(_root_: DictConfig) -> str:
    """Resolver for ``hydra.sweep.subdir``: the job's folder under the sweep folder.

    The first of ``name``, ``name~attempt2``, ... that is new or holds a completed run of this very
    config (which the job then skips). Earlier attempts are never written into.
    """
    sweep_dir = Path(_root_.hydra.sweep.dir)
    # An Optuna search writes no multirun.yaml: its swept keys are its parameters.
    swept = swept_keys(sweep_dir) or set(_root_.hydra.sweeper.get("params") or {}) or None
    name = job_name(list(_root_.hydra.overrides.task), swept)
    identity = config_identity(_root_)
    for attempt in count(1):
        candidate = name if attempt == 1 else f"{name}{ATTEMPT}{attempt}"
        folder = sweep_dir / candidate
        if not folder.exists() or completed_identity(folder) == identity:
            return candidate
    raise AssertionError("unreachable")


def swept_values(sweep_dir: Path) -> dict[str, list[str] | None] | None:
    """What the sweep in ``sweep_dir`` varies, from its ``multirun.yaml``: ``{key: values in sweep order}``.

    Values are None where Hydra cannot list them without the config (``glob``). None if there is no sweep.
    """
    try:
        hydra_cfg = OmegaConf.load(sweep_dir / "multirun.yaml").hydra
    except (OSError, AttributeError):
        return None
    params = hydra_cfg.sweeper.get("params") or {}
    definition = [f"{key}={value}" for key, value in params.items()] + list(hydra_cfg.overrides.task)
    swept: dict[str, list[str] | None] = {}
    for override in OverridesParser.create().parse_overrides(definition):
        if override.is_sweep_override():
            try:
                swept[override.key_or_group] = list(override.sweep_string_iterator())
            except HydraException:
                swept[override.key_or_group] = None
        else:
            swept.pop(override.key_or_group, None)  # a later fixed value replaces a sweep
    return swept


def swept_keys(sweep_dir: Path) -> set[str] | None:
    """The keys the sweep in ``sweep_dir`` varies (``gram`` in ``gram=gram,both``), or None if unknown."""
    return set(swept_values(sweep_dir) or {}) or None


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_search() -> None:
    """Refuse a launch that sweeps over several searches: Hydra would run them with its basic sweeper, not Optuna."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.runtime.choices.get("search") and "optuna" not in hydra_cfg.sweeper._target_.lower():
        raise UserError("choose one search per launch (search=NAME); several at once run without their Optuna sweeper")


def sweep_id() -> str | None:
    """The W&B group: the sweep folder's name, or None for a single run."""
    return Path(HydraConfig.get().sweep.dir).name if is_multirun() else None


def run_name(choices: dict[str, str | None], overrides: list[str]) -> str:
    """A W&B run name unique in its project that reads as the run: ``sweep/job`` for a sweep's job,
    else the chosen options and the overrides, then the run folder's time stamp.
    """
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if is_multirun():
        return f"{sweep_id()}/{run_dir.name}"
    options = "-".join(str(choices[group]) for group in ("network", "pooling", "gram", "style_layers", "optim", "init"))
    return f"{options}{' ' + job_name(overrides) if overrides else ''} @ {run_dir.name}"


def overrides_dict(overrides: list[str]) -> dict[str, str]:
    """``["gram=centered", "seed=1"]`` -> ``{"gram": "centered", "seed": "1"}``: the job's swept keys."""
    return dict(override.lstrip("+~").partition("=")[::2] for override in overrides)


def cpu_threads(configured: int | None) -> int | None:
    """CPU threads for this run: ``configured``, else the cores shared among parallel jobs, else None (all)."""
    if configured:
        return configured
    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    cores = len(os.sched_getaffinity(0))
    if launcher.get("n_jobs") is not None:  # joblib: -1 is all cores, -2 all but one, ...
        jobs = launcher.n_jobs if launcher.n_jobs > 0 else cores + 1 + launcher.n_jobs
        return max(1, cores // max(1, jobs))
    return launcher.get("cpus_per_task")  # submitit


class SweepRecord(HydraCallback):
    """At the end of a multirun, list the jobs of this launch that did not complete, and exit 1 if any."""

    def __init__(self) -> None:
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = sorted(
            path.parent.parent
            for path in sweep_dir.glob(f"*/{config.hydra.output_subdir}/overrides.yaml")
            if path.stat().st_mtime >= self.started - 1  # Hydra rewrites it for every job it launches
        )
        failed, skipped = [], 0
        for job in jobs:
            summary = read_summary(job)
            status = summary.get("status", "killed")
            if status != "completed":
                failed.append(f"  {job.name}: {status}: {summary.get('message', 'no summary.json; the process died')}")
            elif (job / "summary.json").stat().st_mtime < self.started:
                skipped += 1
        print(
            f"styleexp: sweep {sweep_dir}: {len(jobs)} jobs, {len(jobs) - len(failed)} completed "
            f"({skipped} skipped as done before), {len(failed)} failed",
            file=sys.stderr if failed else sys.stdout,
        )
        if failed:
            print("\n".join(failed), file=sys.stderr)
            sys.exit(1)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("job_dir"):
        OmegaConf.register_new_resolver("job_dir", job_dir)


# Registered on import: joblib and submitit workers resolve `hydra.sweep.subdir` after unpickling
# this module's SweepRecord, before any styleexp code of ours runs there.
register_resolvers()
