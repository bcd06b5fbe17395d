"""What Hydra multirun adds to a run: readable job folders, resume, names and groups, and the end-of-sweep record.

A job's folder is named by its overrides (``gram=centered,seed=1``). Relaunching a sweep into the same
folder finds each job's earlier folder: a run that completed with the same config is skipped, one
interrupted with its state saved (``checkpoints.py``) goes on from there, any other earlier attempt
is kept and the job runs again in ``<name>~attempt2`` (``~attempt3``, ...).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import tempfile
import time
from itertools import count, product
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.experimental.callback import Callback as HydraCallback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from styleexp import outcome
from styleexp.claims import claim, live_claim, reclaim, resumable, wait_for
from styleexp.errors import UserError
from styleexp.rundir import NOT_IDENTITY, SUMMARY, completed_identity, config_identity, read_summary

MAX_NAME = 120  # characters; file systems allow 255 bytes per folder name
ATTEMPT = "~attempt"
_elsewhere: dict[str, Path] = {}  # scratch folders given to jobs that another process is running -> its job folder


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
        if value[:1] in ("'", '"') and value[-1:] == value[:1]:  # a quoted path: its quotes are not part of it
            value = value[1:-1]
        if "/" in value:
            value, shortened = Path(value).name, True
        items.append(f"{key}={value}")
    name = ",".join(items) or "defaults"
    digest = hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8]
    if len(name) > MAX_NAME:
        return f"{name[:MAX_NAME]}...{digest}"
    return f"{name}-{digest}" if shortened else name


def job_dir(_root_: DictConfig) -> str:
    """Resolver for ``hydra.sweep.subdir``: the job's folder under the sweep folder, claimed before Hydra writes there.

    The first of ``name``, ``name~attempt2``, ... that holds a completed run of this very config (which
    the job then skips), that this job can claim (``claims.claim``: new), or whose run of this config
    was interrupted with its state saved (the job takes it back and goes on there). Other earlier
    attempts are never written into. If another process is running this very config in one of them,
    the job goes to a scratch folder outside the sweep and skips there (``running_elsewhere``).
    """
    sweep_dir = Path(_root_.hydra.sweep.dir)
    # An Optuna search writes no multirun.yaml: its swept keys are its parameters.
    name = job_name(list(_root_.hydra.overrides.task), naming_keys(sweep_dir, _root_.hydra.sweeper.get("params")))
    identity = config_identity(_root_)
    for attempt in count(1):
        candidate = name if attempt == 1 else f"{name}{ATTEMPT}{attempt}"
        folder = sweep_dir / candidate
        if completed_identity(folder) == identity or claim(folder, config_sha256=identity):
            return candidate
        if resumable(folder, identity) and reclaim(folder):  # an interrupted run that saved its state goes on
            return candidate
        rival = live_claim(folder)
        if rival and rival.get("config_sha256") == identity:
            scratch = tempfile.mkdtemp(prefix="styleexp-elsewhere-")
            _elsewhere[os.path.abspath(scratch)] = folder
            return scratch  # absolute: Hydra's join of the sweep folder and it is the scratch folder
    raise AssertionError("unreachable")


def running_elsewhere(run_dir: Path) -> Path | None:
    """The job folder another process is running this job in, if ``run_dir`` is the scratch folder given instead (then
    removed)."""
    folder = _elsewhere.pop(os.path.abspath(run_dir), None)
    if folder is not None:
        shutil.rmtree(run_dir, ignore_errors=True)
    return folder


def _definition(sweep_dir: Path) -> list[Override] | None:
    """The sweep's overrides as its sweeper took them (``_overrides``), from ``multirun.yaml``; None without one."""
    written = _written(sweep_dir)
    return None if written is None else OverridesParser.create().parse_overrides(written)


def _written(sweep_dir: Path) -> list[str] | None:
    hydra_cfg = _hydra_of(sweep_dir)
    return None if hydra_cfg is None else _overrides(hydra_cfg)


def _hydra_of(sweep_dir: Path) -> DictConfig | None:
    """The ``hydra`` section of the sweep's ``multirun.yaml``; None without one."""
    try:
        return OmegaConf.load(sweep_dir / "multirun.yaml").hydra
    except (OSError, AttributeError):
        return None


def _overrides(hydra_cfg: DictConfig) -> list[str]:
    """A sweep's overrides as its sweeper takes them: its ``params``, then the command line's."""
    params = hydra_cfg.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()] + list(hydra_cfg.overrides.task)


def changing(overrides: list[str]) -> list[str]:
    """Those of ``overrides`` that change what a job computes: not where it logs, how many threads it takes, ..."""
    return [override for override in overrides if re.split(r"[./=]", override.lstrip("+~"))[0] not in NOT_IDENTITY]


def swept_values(sweep_dir: Path) -> dict[str, list[str] | None] | None:
    """What the sweep in ``sweep_dir`` varies, from its ``multirun.yaml``: ``{key: values in sweep order}``.

    Values are None where Hydra cannot list them without the config (``glob``). None if there is no sweep.
    """
    definition = _definition(sweep_dir)
    if definition is None:
        return None
    swept: dict[str, list[str] | None] = {}
    for override in definition:
        if override.is_sweep_override():
            try:
                swept[override.key_or_group] = list(override.sweep_string_iterator())
            except HydraException:
                swept[override.key_or_group] = None
        else:
            swept.pop(override.key_or_group, None)  # a later fixed value replaces a sweep
    return swept


def planned_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """The overrides of every job the sweep in ``sweep_dir`` defines, as Hydra's basic sweeper makes them (its order).

    None where the definition does not list them: no ``multirun.yaml`` (an Optuna search), or a
    sweep whose values need the config (``glob``).
    """
    choices: dict[str, list[str]] = {}
    try:
        for override in _definition(sweep_dir) or []:
            key = override.get_key_element()
            if override.is_sweep_override():
                choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                choices[key] = [f"{key}={override.get_value_element_as_str()}"]
    except HydraException:
        return None
    return [list(job) for job in product(*choices.values())] if choices else None


def attempts(sweep_dir: Path, overrides: list[str]) -> list[Path]:
    """The folders of the job with ``overrides`` in ``sweep_dir``: its attempts in order, empty if it has none."""
    name = job_name(overrides, naming_keys(sweep_dir))
    later = {
        int(n): f
        for f in sweep_dir.glob(f"{glob.escape(name)}{ATTEMPT}*")
        if (n := f.name.rpartition(ATTEMPT)[2]).isdigit()
    }
    return [folder for folder in [sweep_dir / name, *(later[n] for n in sorted(later))] if folder.is_dir()]


def swept_keys(sweep_dir: Path) -> set[str] | None:
    """The keys the sweep in ``sweep_dir`` varies (``gram`` in ``gram=gram,both``), or None if unknown."""
    return set(swept_values(sweep_dir) or {}) or None


def naming_keys(sweep_dir: Path, params: DictConfig | None = None) -> set[str] | None:
    """The keys a job's folder is named by: those the sweep varies; where none does (a study whose every swept key the
    command line fixed), its sweeper's ``params`` (from ``multirun.yaml`` if not given); else None (every override)."""
    if params is None:
        hydra_cfg = _hydra_of(sweep_dir)
        params = hydra_cfg.sweeper.get("params") if hydra_cfg is not None else None
    return swept_keys(sweep_dir) or set(params or {}) or None


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


def run_name(choices: dict[str, str | None], overrides: list[str], run_dir: Path) -> str:
    """A W&B run name unique in its project that reads as the run in ``run_dir``: ``sweep/job`` for a sweep's job,
    else the chosen options and the overrides, then the run folder's time stamp.
    """
    if is_multirun():
        return f"{sweep_id()}/{run_dir.name}"
    options = "-".join(str(choices[group]) for group in ("network", "pooling", "gram", "style_layers", "optim", "init"))
    return f"{options}{' ' + job_name(overrides) if overrides else ''} @ {run_dir.name}"


def overrides_dict(overrides: list[str]) -> dict[str, str]:
    """``["gram=centered", "seed=1"]`` -> ``{"gram": "centered", "seed": "1"}``: the job's swept keys."""
    return dict(override.lstrip("+~").partition("=")[::2] for override in overrides)


class SweepRecord(HydraCallback):
    """At the end of a multirun, account for every job the sweep defines, and exit 1 if any did not complete.

    A job's folder is the attempt this launch ran or skipped in; a job whose folder another process is
    still running is waited for; a job without any folder is ``missing``.
    """

    def __init__(self) -> None:
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before the launcher writes its ``multirun.yaml`` over the one there: refuse another sweep than the folder's
        (one folder, one configuration). The same sweep again goes on there, as ``styleexp-resume`` does."""
        self.started = time.time()
        sweep_dir, launched = Path(config.hydra.sweep.dir), _overrides(config.hydra)
        written = _written(sweep_dir)  # None in a new folder, or an Optuna search's (which writes no multirun.yaml)
        added = changing([override for override in launched if override not in (written or launched)])
        dropped = changing([override for override in written or [] if override not in launched])
        if added or dropped:
            outcome.refuse(
                UserError(
                    f"{sweep_dir} holds another sweep: {' '.join(added) or 'its defaults'} would change its jobs "
                    f"(it ran {' '.join(dropped) or 'the defaults'}), and its report would mix two configurations; "
                    f"launch into a fresh folder (hydra.sweep.dir=NEW), or go on with that sweep with: "
                    f"styleexp-resume {sweep_dir}"
                )
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = self.jobs(sweep_dir, config.hydra.output_subdir)
        elsewhere = [folder for folder in jobs.values() if folder is not None and live_claim(folder)]
        if elsewhere:
            outcome.waiting([folder.name for folder in elsewhere])
            for folder in elsewhere:
                wait_for(folder)
        done = [folder for folder in jobs.values() if folder and read_summary(folder).get("status") == "completed"]
        skipped = sum((folder / SUMMARY).stat().st_mtime < self.started for folder in done)
        summaries = {folder.name if folder else name: folder and read_summary(folder) for name, folder in jobs.items()}
        outcome.sweep_record(sweep_dir, summaries, skipped)

    def jobs(self, sweep_dir: Path, output_subdir: str) -> dict[str, Path | None]:
        """Every job of the sweep's definition -> its folder for this launch, None if it has none.

        Without a definition that lists its jobs (an Optuna search), the jobs this launch started.
        """

        def touched(folder: Path) -> bool:  # Hydra rewrites a job's overrides.yaml whenever it launches the job
            overrides = folder / output_subdir / "overrides.yaml"
            return overrides.is_file() and overrides.stat().st_mtime >= self.started - 1

        planned = planned_jobs(sweep_dir)
        if planned is None:
            return {
                folder.name: folder
                for folder in sorted(f.parent.parent for f in sweep_dir.glob(f"*/{output_subdir}/overrides.yaml"))
                if touched(folder)
            }
        swept = naming_keys(sweep_dir)
        jobs: dict[str, Path | None] = {}
        for overrides in planned:
            folders = attempts(sweep_dir, overrides)
            ours = [folder for folder in folders if touched(folder) or live_claim(folder)]
            done = [folder for folder in folders if read_summary(folder).get("status") == "completed"]
            jobs[job_name(overrides, swept)] = (ours or done or folders or [None])[-1]
        return jobs


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("job_dir"):
        OmegaConf.register_new_resolver("job_dir", job_dir)


# Registered on import: joblib and submitit workers resolve `hydra.sweep.subdir` after unpickling
# this module's SweepRecord, before any styleexp code of ours runs there.
register_resolvers()
