"""``hydra/launcher=batched``: a sweep's jobs in this one process, those that can share a batch optimised together.

Hydra finds launchers only in the ``hydra_plugins`` package, so the launcher lives here; it
prepares each job as Hydra's basic launcher does (its folder, ``.hydra/``, its config), groups the
jobs (``styleexp.batching``) and hands each group to ``styleexp.run.run_batch``. styleexp itself is
imported only when a sweep launches: Hydra imports this module in every Hydra app it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict


class BatchedLauncher(Launcher):
    """Run a sweep's jobs as batches (``styleexp.batching.batches``) in this process; each job stays a run of its
    own."""

    def __init__(self, batch_size: int | None = None) -> None:
        self.batch_size = batch_size
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from styleexp import outcome, sweeps
        from styleexp.batching import batches
        from styleexp.errors import UserError
        from styleexp.job import Job
        from styleexp.run import run_batch

        setup_globals()
        HydraConfig.instance().set_config(self.config)  # the sweep's: the batches read its mode and folder
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        try:
            sweeps.check_search()
        except UserError as error:
            outcome.refuse(error)
        returns = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
            # Hydra's own job set-up (folder, .hydra/, callbacks), with a task that only notes the job.
            returns.append(run_job(hydra_context=self.hydra_context, task_function=Job.current, config=sweep_config,
                                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))  # fmt: skip
        jobs = [ret.return_value for ret in returns]
        stop: SystemExit | None = None
        grouped = batches([job.cfg for job in jobs], self.batch_size)
        for number, members in enumerate(grouped, start=1):
            label = f"batch {number} of {len(grouped)} ({len(members)} job{'s' if len(members) > 1 else ''})"
            print(f"styleexp: {label}: {', '.join(jobs[i].run_dir.name for i in members)}", flush=True)
            for i, result in zip(members, run_batch([jobs[i] for i in members], label)):
                try:
                    returns[i].return_value = outcome.conclude(result, multirun=True)
                except SystemExit as ending:  # every job's line first, then the sweep ends
                    stop = stop or ending
            if stop is not None:
                raise stop
        return returns
