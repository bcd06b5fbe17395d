"""``hydra/launcher=batched``: a sweep's jobs as batches, those that can share one optimised together.

Hydra finds launchers only in the ``hydra_plugins`` package, so the launcher lives here; it
prepares each job as Hydra's basic launcher does (its folder, ``.hydra/``, its config), groups the
jobs (``styleexp.batching``) and hands each group to ``styleexp.run.run_batch``: in this process,
or (``submitit:`` set, ``hydra/launcher=batched_slurm``) as one submitit job per batch, on a SLURM
cluster or, with submitit's local executor, in processes of this machine. A batch job warned of
preemption saves its jobs' state and is requeued (``styleexp.signals``): it goes on from there.
styleexp itself is imported only when a sweep launches: Hydra imports this module in every Hydra
app it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

# submitit's own parameters, for every cluster; the others are SLURM's (``slurm_partition``, ...), which its
# local executor ignores.
GENERIC = {"nodes", "stderr_to_stdout", "cpus_per_task", "gpus_per_node", "timeout_min", "tasks_per_node", "name",
           "mem_gb"}  # fmt: skip
AT_START = {"max_num_timeout"}  # given when the executor is made, not with the other parameters


def executor_parameters(submitit: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a ``submitit:`` config node makes of submitit's ``AutoExecutor``: its arguments, then its parameters."""
    settings = {key: value for key, value in submitit.items() if value is not None}
    made = {"cluster": settings.pop("cluster"), "folder": settings.pop("folder")}
    made.update({f"slurm_{key}": settings.pop(key) for key in AT_START & set(settings)})
    return made, {key if key in GENERIC else f"slurm_{key}": value for key, value in settings.items()}


class BatchedLauncher(Launcher):
    """Run a sweep's jobs as batches (``styleexp.batching.batches``), here or as submitit jobs; each job stays a run
    of its own."""

    def __init__(self, batch_size: int | None = None, submitit: Any = None) -> None:
        self.batch_size = batch_size
        self.submitit = OmegaConf.to_container(submitit, resolve=True) if OmegaConf.is_config(submitit) else submitit
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from styleexp import outcome, sweeps
        from styleexp.batching import batches
        from styleexp.errors import UserError

        self._set_up()
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        try:
            sweeps.check_search()
        except UserError as error:
            outcome.refuse(error)
        numbered = [(list(overrides), idx) for idx, overrides in enumerate(job_overrides, start=initial_job_idx)]
        if self.submitit:
            # Each batch on its node: its memory is checked there, not on this machine.
            cfgs = [self.hydra_context.config_loader.load_sweep_config(self.config, o) for o, _ in numbered]
            grouped = batches(cfgs, self.batch_size, fit_memory=False)
            return self._submit([[numbered[i] for i in members] for members in grouped])
        from styleexp.memory import batch_that_fits

        returns, jobs = self._prepare(numbered)
        try:  # the memory estimate asks where the jobs run: a GPU asked for where there is none is one line
            pending, number = batches([job.cfg for job in jobs], self.batch_size), 0
        except UserError as error:
            outcome.refuse(error)
        while pending:
            members = pending.pop(0)
            # Measured again as the batch starts: memory taken since the plan (other processes) splits the batch
            # into batches that fit, rather than failing every job of it.
            fits = batch_that_fits(jobs[members[0]].cfg, len(members))
            pending[:0] = [members[start : start + fits] for start in range(fits, len(members), fits)]
            number += 1  # a batch that ends the sweep raises once all its lines are out
            self._run(
                [returns[i] for i in members[:fits]], [jobs[i] for i in members[:fits]], number, number + len(pending)
            )
        return returns

    def __call__(self, batch: list[tuple[list[str], int]], number: int, total: int, state: dict) -> list[JobReturn]:
        """One batch as a submitit job: its jobs prepared as Hydra's launchers do, then optimised together."""
        Singleton.set_state(state)
        self._set_up()
        returns, jobs = self._prepare(batch)
        self._run(returns, jobs, number, total)
        return returns

    def checkpoint(self, *args: Any) -> Any:
        """What submitit requeues when the batch is preempted: the same batch, whose jobs go on from their saved
        state."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args)

    def _set_up(self) -> None:
        setup_globals()
        HydraConfig.instance().set_config(self.config)  # the sweep's: the batches read its mode and folder
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

    def _prepare(self, numbered: list[tuple[list[str], int]]) -> tuple[list[JobReturn], list[Any]]:
        """Hydra's own job set-up (folder, .hydra/, callbacks) of each job, with a task that only notes the job."""
        from styleexp.job import Job

        returns = []
        for overrides, idx in numbered:
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
            returns.append(run_job(hydra_context=self.hydra_context, task_function=Job.current, config=sweep_config,
                                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))  # fmt: skip
        return returns, [ret.return_value for ret in returns]

    def _run(self, returns: list[JobReturn], jobs: list[Any], number: int, total: int) -> None:
        """Optimise ``jobs`` as batch ``number`` of ``total``; each job's line, its objective in its return."""
        from styleexp import logs, outcome
        from styleexp.run import run_batch

        label = f"batch {number} of {total} ({len(jobs)} job{'s' if len(jobs) > 1 else ''})"
        stop: SystemExit | None = None
        with logs.recorded([job.run_dir for job in jobs]):  # the batch's lines in each of its jobs' styleexp.log
            print(f"styleexp: {label}: {', '.join(job.run_dir.name for job in jobs)}", flush=True)
            for ret, result in zip(returns, run_batch(jobs, label)):
                try:
                    ret.return_value = outcome.conclude(result, multirun=True)
                except SystemExit as ending:
                    stop = stop or ending
        if stop is not None:
            raise stop

    def _submit(self, grouped: list[list[tuple[list[str], int]]]) -> list[JobReturn]:
        """Each batch as one submitit job (an array on SLURM); wait for them, and return every job's return."""
        import submitit

        made, parameters = executor_parameters(self.submitit)
        executor, cluster = submitit.AutoExecutor(**made), made["cluster"]
        executor.update_parameters(**parameters)
        with executor.batch():
            submitted = [executor.submit(self, batch, k, len(grouped), Singleton.get_state()) for k, batch in
                         enumerate(grouped, start=1)]  # fmt: skip
        for k, job in enumerate(submitted, start=1):
            print(f"styleexp: batch {k} of {len(grouped)} is {cluster} job {job.job_id}", flush=True)
        returns: dict[int, JobReturn] = {}
        for k, (batch, job) in enumerate(zip(grouped, submitted), start=1):
            try:
                returns.update(zip([idx for _, idx in batch], job.result()))
            except Exception as error:  # its jobs' folders say how far they got; the sweep record lists them
                print(f"styleexp: batch {k} of {len(grouped)} ({cluster} job {job.job_id}) failed: {error}", flush=True)
        return [returns[idx] for idx in sorted(returns)]
