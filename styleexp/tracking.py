"""Where a run reports as it goes: the configured loggers (W&B, metrics.csv), images sent to W&B, the progress line
(a sweep job's: its heartbeat).

Every logged row carries the optimiser step (``trainer/global_step`` on W&B, ``step`` in
``metrics.csv``): losses, images and the final measures of one step share one step value.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from styleexp import rundir, sweeps, wandb_record
from styleexp.job import Job


def loggers(cfg: DictConfig, wandb_run: Mapping[str, Any]) -> list:
    """The configured loggers. W&B ones get ``wandb_run`` (name, group, job type, tags, config) where they set none.

    Each W&B logger starts a run of its own, beside any other open in the process (the jobs of a
    batch). W&B says nothing on the console unless ``verbose``; it records everything all the same.
    """
    made = []
    for node in OmegaConf.to_container(cfg.logger, resolve=True).values():
        if node is None:
            continue
        if node["_target_"].endswith("WandbLogger"):
            node = {
                **node,
                **{key: value for key, value in wandb_run.items() if node.get(key) is None},
                "reinit": "create_new",
            }
            # Offline artifacts are staged here and read again by `wandb sync`: inside the run folder, not ~/.
            os.environ["WANDB_DATA_DIR"] = str(Path(node["save_dir"]) / "wandb")
            if not cfg.verbose:
                import wandb

                os.environ["WANDB_SILENT"] = "true"
                wandb.setup(
                    wandb.Settings(silent=True)
                )  # before the logger, or Lightning warns about an "anonymous" setting
        # Not recursive: the run config passed to W&B holds `_target_` nodes that must stay data.
        made.append(hydra.utils.instantiate(node, _recursive_=False, _convert_="all"))
    return made


def wandb_run(job: Job, mode: str, resumed: str | None = None) -> dict[str, Any]:
    """What a job's W&B run is (``wandb_record.py``): its name, group (the sweep), job type (``run``, ``sweep-job``),
    tags (study, preset, statistic, network, ``mode``) and config; for a job that goes on from a saved point, the run
    it ``resumed`` (its id)."""
    name = sweeps.run_name(job.choices, job.overrides, job.run_dir)
    run = {
        "name": name,
        "group": sweeps.sweep_id(),
        "job_type": wandb_record.job_type(),
        "tags": wandb_record.tags(job, mode),
        "config": wandb_record.config(job),
    }
    return {**run, "id": resumed, "resume": "allow"} if resumed else run


def wandb_id(loggers: list) -> str | None:
    """The id of the W&B run among ``loggers`` (a resumed job logs to it again), or None."""
    return next((logger.experiment.id for logger in wandb_loggers(loggers)), None)


def wandb_identity(loggers: list) -> dict[str, str] | None:
    """The id, name and project of the W&B run among ``loggers``, for ``summary.json`` (a report joins its rows to the
    runs on the dashboard by them), or None where there is none."""
    return next(
        (
            {"id": run.id, "name": run.name, "project": run.project}
            for run in (logger.experiment for logger in wandb_loggers(loggers))
        ),
        None,
    )


def resume_metrics(loggers: list, run_dir: Path, step: int) -> None:
    """Go on with ``metrics.csv`` from ``step`` for a resumed run: its rows up to there are kept (Lightning's CSV
    logger deletes the file when it starts) and later ones, logged after the point it resumes from, dropped."""
    path = Path(run_dir) / rundir.METRICS
    if not path.is_file():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), [row for row in reader if int(row["step"]) <= step]
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            with warnings.catch_warnings():  # that it deletes the file, which is put back below
                warnings.simplefilter("ignore")
                logger.experiment.metrics_keys = list(header)  # the writer starts here
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def wandb_loggers(loggers: list) -> list[WandbLogger]:
    return [logger for logger in loggers if isinstance(logger, WandbLogger)]


def log_metrics(loggers: list, metrics: Mapping[str, float], step: int) -> None:
    """One row of ``metrics`` at optimiser ``step`` for every logger."""
    for logger in loggers:
        logger.log_metrics(dict(metrics), step=step)


def log_image(loggers: list, key: str, path: Path, step: int) -> None:
    """Send a saved PNG to every W&B logger among ``loggers`` at ``step``."""
    for logger in wandb_loggers(loggers):
        logger.log_image(key=key, images=[str(path)], step=step)


def log_inputs(loggers: list, run_dir: Path) -> None:
    """The content and style images (each of a blend's: ``style_2``, ...) as given, once, at step 0."""
    for path in rundir.input_files(run_dir):
        log_image(loggers, f"images/{path.stem}", path, 0)


def finish(loggers: list, step: int, last: Mapping[str, float], run_dir: Path, summary: Mapping[str, Any]) -> None:
    """Log the run's end however it ended, then close the loggers and the W&B run.

    ``last`` (the final losses, unless already logged at ``step``, and the measures) becomes the
    last row of ``metrics.csv``; W&B also gets the final image, the ``summary.json`` just written
    (``summary``) as its summary, and the run folder as an artifact (``wandb_record.py``).
    """
    try:
        with quiet_fit():  # a run that failed before its first step makes its CSV logger's first write here
            if last:
                log_metrics(loggers, last, step)
            for logger in loggers:
                logger.save()  # metrics.csv complete before the artifact copies it
        final = run_dir / rundir.FINAL
        if final.is_file():
            log_image(loggers, "images/final", final, step)
        for logger in wandb_loggers(loggers):
            run = logger.experiment
            # Staged in this run's folder, not the folder of the batch's last job to start its logger.
            os.environ["WANDB_DATA_DIR"] = str(run_dir / "wandb")
            run.log_artifact(wandb_record.artifact(run.id, run_dir, summary))
            run.summary.update(wandb_record.summary(summary))
    finally:
        for logger in wandb_loggers(loggers):
            logger.experiment.finish(exit_code=0 if summary["status"] == "completed" else 1)


class Progress(TQDMProgressBar):
    """One line redrawn in place at logging steps: the scale, steps done of the cap, steps per second,
    time left and the total loss; no epoch label and no version number, which mean nothing here."""

    def __init__(self, every: int, size: int):
        super().__init__(refresh_rate=every)
        self.size = size

    @property
    def train_description(self) -> str:
        return f"{self.size} px"

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(
            desc=self.train_description,
            unit="step",
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
            disable=self.is_disabled,
        )

    def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
        total = self.total_train_batches
        self.train_progress_bar.reset(total=None if math.isinf(total) else total)

    def get_metrics(self, trainer: Any, module: Any) -> dict:
        return {key: value for key, value in super().get_metrics(trainer, module).items() if key != "v_num"}


class Heartbeat(Callback):
    """A sweep job's progress: one line at most every ``every_s`` seconds while it works, naming the job (or the batch,
    ``label``), its scale, its step, its loss and how many of a batch's elements have ended.

    A sweep's jobs have no progress bar (many would share one console); without this a long GPU job
    would say nothing until it ends.
    """

    def __init__(self, label: str, every_s: float, size: int):
        self.label, self.every_s, self.size = label, every_s, size
        self.last = time.monotonic()

    def on_train_batch_end(self, trainer: Any, module: Any, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        losses = module.last_losses["loss/total"].tolist()
        live = [loss for loss, active in zip(losses, module.active) if active] or losses
        count = len(losses)
        loss = f"loss {live[0]:.4g}" if count == 1 else f"median loss {statistics.median(live):.4g}"
        ended = f", {count - sum(module.active)}/{count} ended" if count > 1 else ""
        print(
            f"styleexp: {self.label}: {self.size} px, step {trainer.global_step}/{trainer.max_steps}, {loss}{ended}",
            flush=True,
        )


@contextmanager
def quiet_fit() -> Iterator[None]:
    """Silence Lightning's warnings that do not apply to a one-image optimisation."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")  # our fresh run folder
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # the frozen network
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # Lightning's own use of a torch API it must update
        warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")  # we log our own steps
        yield
