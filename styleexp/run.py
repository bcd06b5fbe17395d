"""One run, top to bottom: config -> built module -> Trainer.fit -> a run folder with everything it produced."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from styleexp import measures, rundir, speed, sweeps, tracking
from styleexp.build import build
from styleexp.callbacks import ImageSaver, LossLogger, NaNGuard, StepClock, logged_losses
from styleexp.errors import UserError
from styleexp.images import load_image, save_image
from styleexp.module import StyleTransfer
from styleexp.spec import mode_of

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


@dataclass
class RunResult:
    """What a finished, stopped, failed or skipped run reports back to the command line."""

    run_dir: Path
    status: str  # completed | skipped | interrupted | nan | failed
    message: str
    error: Exception | None = None  # why a failed run failed
    objective: float | None = None  # what a sweeper minimises; None for a run that did not complete

    @property
    def exit_code(self) -> int:
        if isinstance(self.error, UserError):
            return EXIT_USAGE
        return {"completed": 0, "skipped": 0, "interrupted": EXIT_INTERRUPTED}.get(self.status, EXIT_FAILED)


def run(cfg: DictConfig) -> RunResult:
    """Run the style transfer ``cfg`` describes in Hydra's output folder and return how it ended.

    It never raises for a run that goes wrong: a user mistake, a NaN, running out of memory or any
    other error is recorded as ``failed`` in ``summary.json`` and W&B and returned, so a sweep goes on.
    A run that ends with an image is scored by the fair measures; a completed one returns its objective.
    """
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    identity = rundir.config_identity(cfg)
    if sweeps.is_multirun() and rundir.completed_identity(run_dir) == identity:
        summary = rundir.read_summary(run_dir)
        return RunResult(run_dir, "skipped", f"skipped: {run_dir} holds a completed run of this config", objective=_objective(cfg, summary))
    threads = sweeps.cpu_threads(cfg.threads)
    if threads:
        torch.set_num_threads(threads)
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    overrides = list(hydra_cfg.overrides.task)
    mode = mode_of(cfg.content, cfg.style)
    record: dict[str, Any] = {
        "config_sha256": identity, "choices": choices, "overrides": overrides, "seed": cfg.seed, "mode": mode,
        "threads": torch.get_num_threads(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": rundir.versions(),
    }
    loggers = tracking.loggers(cfg, {
        "name": sweeps.run_name(choices, overrides),
        "group": sweeps.sweep_id(),
        "job_type": mode,
        "tags": [f"{group}:{choices[group]}" for group in ("study", "preset") if choices.get(group)],
        "config": {**rundir.identity_config(cfg), "choices": choices, "overrides": sweeps.overrides_dict(overrides)},
    })
    guard, clock, loss_logger = NaNGuard(cfg.log_every), StepClock(cfg.log_every), LossLogger(cfg.log_every)
    module: StyleTransfer | None = None
    trainer: pl.Trainer | None = None
    status, error, started = "failed", None, time.perf_counter()
    try:
        with sigterm_as_interrupt():
            built = build(cfg)
            module = built.module
            record.update(built.facts)
            for name in ("content", "style"):
                image = getattr(built.specs[0], name)
                if image is not None:
                    save_image(image, run_dir / f"{name}.png")
            tracking.log_inputs(loggers, run_dir)
            trainer = pl.Trainer(
                **OmegaConf.to_container(cfg.trainer, resolve=True),
                precision=speed.set_precision(cfg.speed.precision.value, module.image.device),
                logger=loggers or False,
                callbacks=[loss_logger, ImageSaver(run_dir, cfg.image_every), guard, clock, tracking.progress_bar(cfg.log_every)],
            )
            print(f"styleexp: {mode} run in {run_dir}", flush=True)
            with tracking.quiet_fit():
                trainer.fit(module, DataLoader(range(cfg.steps), batch_size=None))
        status = "nan" if guard.failure else "completed"
    except (KeyboardInterrupt, SystemExit):
        # Lightning answers Ctrl-C (and our SIGTERM) with its own graceful shutdown and sys.exit(1).
        status = "interrupted"
    except Exception as caught:  # recorded, not raised: the run failed, the sweep goes on
        status, error = "failed", caught
    finally:
        step = trainer.global_step if trainer else 0
        final = save_image(module.image, run_dir / "final.png") if module is not None else None
        message = _message(status, error, step, final, guard.failure, cfg.size)
        summary = {
            "status": status,
            "message": message,
            **record,
            **(_progress(cfg, module, step, clock) if module is not None else {}),
            **(_measures(cfg, run_dir, module.image.device) if final is not None else {}),
            "wall_time_s": round(time.perf_counter() - started, 3),
        }
        rundir.write_summary(run_dir, summary)
        last = logged_losses(module) if module is not None and loss_logger.last_step != step else {}
        last.update({f"measure/{key}": value for key, value in summary.get("measures", {}).items()})
        tracking.finish(loggers, step, last, run_dir, summary)
    objective = _objective(cfg, summary) if status == "completed" else None
    return RunResult(run_dir, status, message, error, objective)


def _measures(cfg: DictConfig, run_dir: Path, device: torch.device) -> dict[str, Any]:
    """The fair measures of the saved final image against the saved inputs (as a report would take them), and their cost.

    Measuring never fails the run: a measure that cannot be taken leaves its reason in the summary.
    """
    if not cfg.measures.networks:
        return {}
    started, seconds = time.perf_counter(), {}
    try:
        judges = measures.evaluators(list(cfg.measures.networks), cfg.weights_dir, str(device))
        images = {name: load_image(run_dir / f"{name}.png") if (run_dir / f"{name}.png").is_file() else None
                  for name in ("final", "content", "style")}
        scores = measures.measure(judges, images["final"], images["content"], images["style"], cfg.weights_dir, seconds)
    except (UserError, KeyboardInterrupt) as caught:
        reason = str(caught) or "interrupted"
        print(f"styleexp: warning: no fair measures: {reason}", file=sys.stderr)
        return {"measures": {}, "measures_error": reason}
    return {"measures": scores, "evaluators": list(cfg.measures.networks),
            "measures_seconds": round(time.perf_counter() - started, 3), "measures_seconds_each": seconds}


def _objective(cfg: DictConfig, summary: dict[str, Any]) -> float | None:
    objective = cfg.objective or measures.default_objective(summary.get("mode", "transfer"))
    return rundir.objective_value(summary, OmegaConf.to_container(objective) if OmegaConf.is_config(objective) else objective)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while the run works, where Python allows a handler (the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)


def _message(status: str, error: Exception | None, step: int, final: Path | None, nan: str | None, size: int) -> str:
    if status == "failed":
        if isinstance(error, torch.OutOfMemoryError):
            return f"out of memory at size={size}; lower size= or use fewer or shallower style layers"
        return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
    return {
        "completed": f"done: {final}",
        "interrupted": f"interrupted at step {step}; the image so far is in {final}",
        "nan": f"stopped: {nan}; the last finite image is in {final}",
    }[status]


def _progress(cfg: DictConfig, module: StyleTransfer, step: int, clock: StepClock) -> dict[str, Any]:
    """What the optimisation did: steps, passes, losses of element 0 (a solo run's only one), time and memory."""
    device = module.image.device
    return {
        "steps": step,
        "max_steps": cfg.steps,
        "evaluations": module.evaluations,
        "losses": {key: float(value[0]) for key, value in module.last_losses.items()},
        "initial_losses": {key: float(value[0]) for key, value in module.initial_losses.items()},
        "seconds_per_step": clock.seconds_per_step,
        "peak_memory_mb": round(speed.peak_memory_mb(device), 1),
        "peak_memory_kind": "cuda max allocated" if device.type == "cuda" else "process max resident",
        "device": speed.device_name(device),
        "image_size": list(module.image.shape[2:]),
    }
