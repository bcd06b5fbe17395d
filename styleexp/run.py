"""One run, top to bottom: config -> built module -> Trainer.fit -> a run folder with everything it produced."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from styleexp import checks, measures, memory, rundir, speed, sweeps, tracking
from styleexp.build import Built, build, input_images, load_images, prepare, scale_plan, spec_of
from styleexp.callbacks import ImageSaver, LossLogger, NaNGuard, StepClock, StopRule, logged_losses
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
    summary: dict[str, Any] = field(default_factory=dict)  # what it wrote to summary.json

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
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    elsewhere = sweeps.running_elsewhere(run_dir)
    if elsewhere is not None:
        return RunResult(elsewhere, "skipped", f"skipped: another process is running this job in {elsewhere}")
    try:
        return _run(cfg, run_dir)
    finally:
        rundir.release(run_dir)


def _run(cfg: DictConfig, run_dir: Path) -> RunResult:
    hydra_cfg = HydraConfig.get()
    try:
        checks.check(cfg)
        needs = memory.check_fits(cfg)
    except UserError as error:
        if rundir.claim(run_dir):  # not over a completed run that today's checks would refuse
            overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)  # as typed, `${oops}` and all
            rundir.write_summary(run_dir, {"status": "failed", "message": str(error), "overrides": overrides})
        return RunResult(run_dir, "failed", str(error), error)
    identity = rundir.config_identity(cfg)
    if sweeps.is_multirun() and rundir.completed_identity(run_dir) == identity:
        summary = rundir.read_summary(run_dir)
        return RunResult(run_dir, "skipped", f"skipped: {run_dir} holds a completed run of this config", objective=_objective(cfg, summary))
    if not rundir.claim(run_dir):
        error = UserError(f"{run_dir} already holds a run or another process works there; choose a new folder")
        return RunResult(run_dir, "failed", str(error), error)
    threads = sweeps.cpu_threads(cfg.threads)
    if threads:
        torch.set_num_threads(threads)
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    overrides = list(hydra_cfg.overrides.task)
    mode = mode_of(cfg.content, cfg.style)
    record: dict[str, Any] = {
        "config_sha256": identity, "choices": choices, "overrides": overrides, "seed": cfg.seed, "mode": mode,
        "threads": torch.get_num_threads(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": rundir.versions(),
        "memory_estimate_mb": {"held": needs.held_mb, "need": needs.need_mb, "available": needs.available_mb},
    }
    loggers = tracking.loggers(cfg, {
        "name": sweeps.run_name(choices, overrides),
        "group": sweeps.sweep_id(),
        "job_type": mode,
        "tags": [f"{group}:{choices[group]}" for group in ("study", "preset") if choices.get(group)],
        "config": {**rundir.identity_config(cfg), "choices": choices, "overrides": sweeps.overrides_dict(overrides)},
    })
    guard = NaNGuard(cfg.log_every)
    work = Optimisation()
    console = cfg.verbose or not sweeps.is_multirun()  # the folder and a progress line; a sweep's job has its one line when it ends
    status, error, started = "failed", None, time.perf_counter()
    try:
        with sigterm_as_interrupt(), memory.capped(memory.device_of(cfg)):
            plan = scale_plan(cfg)
            content, styles = load_images(cfg, cfg.size)
            for name, image in input_images(content, styles).items():
                save_image(image, run_dir / f"{name}.png")
            inputs = spec_of(cfg, cfg.size)
            tracking.log_inputs(loggers, run_dir)
            network = prepare(cfg, inputs)
            if console:
                print(f"styleexp: {mode} run in {run_dir}", flush=True)
            for size, cap in plan:
                previous = work.module
                built = build(cfg, network, size, start=previous.image.detach()[0] if previous is not None else None)
                if previous is not None:
                    built.module.use_units(previous.units())
                record.update({key: value for key, value in built.facts.items() if key != "targets"})
                work.start_scale(built, size)
                trainer_config = {**OmegaConf.to_container(cfg.trainer, resolve=True), "max_steps": cap}
                progress = [tracking.Progress(cfg.log_every, size)] if console else []
                trainer = pl.Trainer(
                    **trainer_config,
                    precision=speed.set_precision(cfg.speed.precision.value, work.module.image.device),
                    logger=loggers or False,
                    enable_progress_bar=bool(progress),
                    callbacks=[work.loss_logger(cfg.log_every), ImageSaver(run_dir, cfg.image_every, size, work.steps),
                               work.stop_rule(cfg.stop), guard, work.clock(cfg.log_every), *progress],
                )
                work.trainer = trainer
                with tracking.quiet_fit():
                    trainer.fit(work.module, DataLoader(range(cap), batch_size=None))
                work.end_scale()
                if guard.failure:
                    break
        status = "nan" if guard.failure else "completed"
    except (KeyboardInterrupt, SystemExit):
        # Lightning answers Ctrl-C (and our SIGTERM) with its own graceful shutdown and sys.exit(1).
        status = "interrupted"
    except Exception as caught:  # recorded, not raised: the run failed, the sweep goes on
        status, error = "failed", caught
    finally:
        work.end_scale()
        module = work.module
        final = save_image(module.output(), run_dir / "final.png") if module is not None else None
        message = _message(status, error, work.steps, final, guard.failure, cfg.size)
        summary = {
            "status": status,
            "message": message,
            **record,
            **(work.summary(cfg) if module is not None else {}),
            **(_measures(cfg, run_dir, module.image.device) if final is not None else {}),
            "wall_time_s": round(time.perf_counter() - started, 3),
        }
        with signals_held():
            rundir.write_summary(run_dir, summary)
            last = logged_losses(module) if module is not None and work.logged_step != work.steps else {}
            last.update({f"measure/{key}": value for key, value in summary.get("measures", {}).items()})
            if last and work.scales:
                last["scale"] = work.scales[-1]["size"]
            tracking.finish(loggers, work.steps, last, run_dir, summary)
    objective = _objective(cfg, summary) if status == "completed" else None
    return RunResult(run_dir, status, message, error, objective, summary)


class Optimisation:
    """What the scales of a run have done so far: the module at work, its steps, each scale's record."""

    def __init__(self) -> None:
        self.module: StyleTransfer | None = None
        self.trainer: pl.Trainer | None = None
        self.size = 0
        self.steps = 0  # of the finished scales
        self.evaluations = 0
        self.initial_losses: dict[str, torch.Tensor] = {}
        self.targets = {"computed": 0, "reused": 0, "seconds": 0.0}
        self.scales: list[dict[str, Any]] = []
        self._logger: LossLogger | None = None
        self._stop: StopRule | None = None
        self._clock: StepClock | None = None
        self._started = 0.0
        self._recorded = True

    def start_scale(self, built: Built, size: int) -> None:
        self.module, self.size, self.trainer, self._started, self._recorded = built.module, size, None, time.perf_counter(), False
        for key in ("computed", "reused"):
            self.targets[key] += built.facts["targets"][key]
        self.targets["seconds"] = round(self.targets["seconds"] + built.facts["targets"]["seconds"], 4)

    def loss_logger(self, every: int) -> LossLogger:
        self._logger = LossLogger(every, self.size, self.steps)
        return self._logger

    def stop_rule(self, stop: DictConfig) -> StopRule:
        self._stop = StopRule(stop.rtol, stop.window)
        return self._stop

    def clock(self, every: int) -> StepClock:
        self._clock = StepClock(every)
        return self._clock

    @property
    def logged_step(self) -> int | None:
        return self._logger.last_step if self._logger else None

    def end_scale(self) -> None:
        """Record the scale at work, once, however it ended."""
        if self._recorded:
            return
        self._recorded = True
        steps = self.trainer.global_step if self.trainer else 0
        self.steps += steps
        self.evaluations += self.module.evaluations
        if not self.initial_losses:
            self.initial_losses = self.module.initial_losses
        self.scales.append({
            "size": self.size, "steps": steps, "converged": bool(self._stop and self._stop.converged),
            "seconds_per_step": self._clock.seconds_per_step if self._clock else None,
            "wall_time_s": round(time.perf_counter() - self._started, 3),
        })

    def summary(self, cfg: DictConfig) -> dict[str, Any]:
        """What the optimisation did: steps, passes, losses of element 0 (a solo run's only one), convergence, time and memory."""
        device = self.module.image.device
        return {
            "steps": self.steps,
            "max_steps": sum(cap for _, cap in scale_plan(cfg)),
            "converged": bool(self.scales and self.scales[-1]["converged"]),
            "scales": self.scales,
            "evaluations": self.evaluations,
            "losses": {key: float(value[0]) for key, value in self.module.last_losses.items()},
            "initial_losses": {key: float(value[0]) for key, value in self.initial_losses.items()},
            "targets": self.targets,
            "seconds_per_step": self.scales[-1]["seconds_per_step"] if self.scales else None,
            "peak_memory_mb": round(speed.peak_memory_mb(device), 1),
            "peak_memory_kind": "cuda max allocated" if device.type == "cuda" else "process max resident",
            "device": speed.device_name(device),
            "image_size": list(self.module.image.shape[2:]),
        }


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
        if images["content"] is not None and images["final"].shape != images["content"].shape:
            # Interrupted at a coarser scale: compared at the content's size.
            images["final"] = F.interpolate(images["final"][None], size=images["content"].shape[1:], mode="bilinear", align_corners=False)[0]
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


@contextmanager
def signals_held() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM while the run's outcome is recorded, so the record is whole and the exit code agrees with it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _message(status: str, error: Exception | None, step: int, final: Path | None, nan: str | None, size: int) -> str:
    if status == "failed":
        if memory.is_out_of_memory(error):
            return f"out of memory at size={size}; lower size= or use fewer or shallower style layers"
        return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
    return {
        "completed": f"done: {final}",
        "interrupted": f"interrupted at step {step}; the image so far is in {final}",
        "nan": f"stopped: {nan}; the last finite image is in {final}",
    }[status]
