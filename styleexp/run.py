"""A batch of runs (a solo run is one), top to bottom: configs -> built module -> Trainer.fit per scale -> a run folder
per job with everything it produced."""

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
from styleexp.callbacks import ImageSaver, LossLogger, NaNGuard, StepClock, StopRule
from styleexp.errors import UserError
from styleexp.images import load_image, save_image
from styleexp.module import StyleTransfer
from styleexp.spec import Spec, mode_of

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


@dataclass
class Job:
    """One run of a batch: its config, its folder, its overrides as typed, its group choices and its Hydra config."""

    cfg: DictConfig
    run_dir: Path
    overrides: list[str]
    choices: dict[str, str | None]
    hydra: DictConfig

    @classmethod
    def current(cls, cfg: DictConfig) -> Job:
        """The job Hydra is running now."""
        hydra_cfg = HydraConfig.get()
        choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
        overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)  # as typed, `${oops}` and all
        return cls(cfg, Path(hydra_cfg.runtime.output_dir), overrides, choices, HydraConfig.instance().cfg)

    @contextmanager
    def as_current(self) -> Iterator[None]:
        """Make this job Hydra's current one (``${hydra:runtime.output_dir}`` is its folder) for a while."""
        config, before = HydraConfig.instance(), HydraConfig.instance().cfg
        config.cfg = self.hydra
        try:
            yield
        finally:
            config.cfg = before


def run(cfg: DictConfig) -> RunResult:
    """Run the style transfer ``cfg`` describes in Hydra's output folder and return how it ended: a batch of one."""
    return run_batch([Job.current(cfg)])[0]


def run_batch(jobs: list[Job]) -> list[RunResult]:
    """Run ``jobs`` (which share a network, optimiser, precision and image shape) as one batch; how each ended, in order.

    Each job is a run of its own: its folder, summary, loggers and W&B run. It never raises for a
    run that goes wrong: a user mistake, a NaN, running out of memory or any other error is recorded
    as ``failed`` in that job's ``summary.json`` and W&B and returned, so a sweep goes on; a NaN or
    a bad input fails its own job only. A run that ends with an image is scored by the fair
    measures; a completed one returns its objective.
    """
    results: dict[int, RunResult] = {}
    elements: list[Element] = []
    try:
        for k, job in enumerate(jobs):
            with job.as_current():
                admitted = _admit(job, len(jobs))
            if isinstance(admitted, RunResult):
                results[k] = admitted
            else:
                admitted.position = k
                elements.append(admitted)
        if elements:
            batch = [element.job.run_dir.name for element in elements] if len(elements) > 1 else None
            for element in elements:
                element.record["batch"] = batch
            results.update({element.position: element.result for element in _optimise(elements)})
    finally:
        for job in jobs:
            rundir.release(job.run_dir)
    return [results[k] for k in range(len(jobs))]


class Element:
    """A job admitted to its batch: what its summary records from the start, its loggers, and how it ends."""

    def __init__(self, job: Job, record: dict[str, Any], loggers: list):
        self.job, self.record, self.loggers = job, record, loggers
        self.position = 0
        self.status: str | None = None  # set once it has ended: completed | interrupted | nan | failed
        self.error: Exception | None = None
        self.failure: str | None = None  # a NaN's account
        self.steps = 0  # of its finished scales
        self.evaluations = 0
        self.initial_losses: dict[str, float] = {}
        self.losses: dict[str, float] = {}
        self.logged_step: int | None = None
        self.scales: list[dict[str, Any]] = []
        self.spec: Spec | None = None  # at the final size, once its inputs are read
        self.output: torch.Tensor | None = None
        self.result: RunResult | None = None

    def fail(self, error: Exception) -> None:
        self.status, self.error = "failed", error


def _admit(job: Job, batch_size: int) -> Element | RunResult:
    """The job's checks, its resume test and its folder's claim; its record and loggers if it is to run."""
    cfg, run_dir = job.cfg, job.run_dir
    elsewhere = sweeps.running_elsewhere(run_dir)
    if elsewhere is not None:
        return RunResult(elsewhere, "skipped", f"skipped: another process is running this job in {elsewhere}")
    try:
        checks.check(cfg)
        scale_plan(cfg)
        needs = memory.check_fits(cfg, batch_size)
    except UserError as error:
        if rundir.claim(run_dir):  # not over a completed run that today's checks would refuse
            rundir.write_summary(run_dir, {"status": "failed", "message": str(error), "overrides": job.overrides})
        return RunResult(run_dir, "failed", str(error), error)
    identity = rundir.config_identity(cfg)
    if sweeps.is_multirun() and rundir.completed_identity(run_dir) == identity:
        summary = rundir.read_summary(run_dir)
        return RunResult(
            run_dir,
            "skipped",
            f"skipped: {run_dir} holds a completed run of this config",
            objective=_objective(cfg, summary),
        )
    if not rundir.claim(run_dir):
        error = UserError(f"{run_dir} already holds a run or another process works there; choose a new folder")
        return RunResult(run_dir, "failed", str(error), error)
    threads = sweeps.cpu_threads(cfg.threads)
    if threads:
        torch.set_num_threads(threads)
    mode = mode_of(cfg.content, cfg.style)
    record: dict[str, Any] = {
        "config_sha256": identity,
        "choices": job.choices,
        "overrides": job.overrides,
        "seed": cfg.seed,
        "mode": mode,
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": rundir.versions(),
        "memory_estimate_mb": {"held": needs.held_mb, "need": needs.need_mb, "available": needs.available_mb},
    }
    loggers = tracking.loggers(
        cfg,
        {
            "name": sweeps.run_name(job.choices, job.overrides, run_dir),
            "group": sweeps.sweep_id(),
            "job_type": mode,
            "tags": [f"{group}:{job.choices[group]}" for group in ("study", "preset") if job.choices.get(group)],
            "config": {
                **rundir.identity_config(cfg),
                "choices": job.choices,
                "overrides": sweeps.overrides_dict(job.overrides),
            },
        },
    )
    return Element(job, record, loggers)


def _optimise(elements: list[Element]) -> list[Element]:
    """Optimise the admitted ``elements`` together, scale by scale, and record how each ended."""
    cfg = elements[0].job.cfg  # the batch's shared settings
    guard = NaNGuard(cfg.log_every)
    work = Optimisation()
    console = (
        cfg.verbose or not sweeps.is_multirun()
    )  # the folder and a progress line; a sweep's job has its one line when it ends
    started = time.perf_counter()
    try:
        with sigterm_as_interrupt(), memory.capped(memory.device_of(cfg)):
            _inputs(elements)
            live = [element for element in elements if element.status is None]
            if live:
                network = prepare(cfg, [element.spec for element in live])
            for element in live if console else []:
                print(f"styleexp: {element.record['mode']} run in {element.job.run_dir}", flush=True)
            for scale, (size, _) in enumerate(scale_plan(cfg)):
                if not live:
                    break
                previous = work.module
                starts = list(previous.image.detach()[work.rows(live)]) if previous is not None else None
                built = build([element.job.cfg for element in live], network, size, starts)
                if previous is not None:
                    keep = torch.tensor(work.rows(live))
                    built.module.use_units({name: unit[keep] for name, unit in previous.units().items()})
                for element, facts in zip(live, built.facts):
                    element.record.update(facts)
                work.start_scale(built, live, size, [scale_plan(element.job.cfg)[scale][1] for element in live])
                progress = [tracking.Progress(cfg.log_every, size)] if console else []
                trainer = pl.Trainer(
                    **{**OmegaConf.to_container(cfg.trainer, resolve=True), "max_steps": max(work.caps)},
                    precision=speed.set_precision(cfg.speed.precision.value, work.module.image.device),
                    logger=False,  # each element logs to its own loggers (callbacks.py)
                    enable_progress_bar=bool(progress),
                    callbacks=[*work.callbacks(cfg.log_every, cfg.image_every), guard, *progress],
                )
                work.trainer = trainer
                with tracking.quiet_fit():
                    trainer.fit(work.module, DataLoader(range(max(work.caps)), batch_size=None))
                work.end_scale()
                for element, failure in zip(live, guard.failures):
                    if failure is not None:
                        element.status, element.failure = "nan", failure
                live = [element for element in live if element.status is None]
        for element in live:
            element.status = "completed"
    except (KeyboardInterrupt, SystemExit):
        # Lightning answers Ctrl-C (and our SIGTERM) with its own graceful shutdown and sys.exit(1).
        for element in elements:
            if element.status is None:
                element.status = "interrupted"
    except Exception as caught:  # recorded, not raised: the batch failed, the sweep goes on
        for element in elements:
            if element.status is None:
                element.fail(caught)
    finally:
        work.end_scale()
        optimised = time.perf_counter() - started
        with signals_held():
            for element in elements:
                _record(element, work, optimised)
    return elements


def _inputs(elements: list[Element]) -> None:
    """Each element's input images into its folder and loggers, and its spec at the final size; an element
    whose inputs cannot be read fails alone."""
    for element in elements:
        cfg, run_dir = element.job.cfg, element.job.run_dir
        try:
            content, styles = load_images(cfg, cfg.size)
            for name, image in input_images(content, styles).items():
                save_image(image, run_dir / f"{name}.png")
            element.spec = spec_of(cfg, cfg.size)
            tracking.log_inputs(element.loggers, run_dir)
        except Exception as caught:
            element.fail(caught)


def _record(element: Element, work: Optimisation, optimised: float) -> None:
    """Write how ``element`` ended: its final image, summary, measures and last log lines; then close its loggers.

    Its wall time is the batch's optimisation (``optimised`` seconds) and its own measuring.
    """
    cfg, run_dir, started = element.job.cfg, element.job.run_dir, time.perf_counter()
    final = save_image(element.output, run_dir / "final.png") if element.output is not None else None
    message = _message(element.status, element.error, element.steps, final, element.failure, cfg.size)
    summary = {
        "status": element.status,
        "message": message,
        **element.record,
        **(work.summary(cfg, element) if element.scales else {}),
        **(_measures(cfg, run_dir, work.device) if final is not None else {}),
    }
    summary["wall_time_s"] = round(optimised + time.perf_counter() - started, 3)
    rundir.write_summary(run_dir, summary)
    last = dict(element.losses) if element.losses and element.logged_step != element.steps else {}
    last.update({f"measure/{key}": value for key, value in summary.get("measures", {}).items()})
    if last and element.scales:
        last["scale"] = element.scales[-1]["size"]
    tracking.finish(element.loggers, element.steps, last, run_dir, summary)
    objective = _objective(cfg, summary) if element.status == "completed" else None
    element.result = RunResult(run_dir, element.status, message, element.error, objective, summary)


class Optimisation:
    """What the scales of a batch have done so far: the module at work and the elements it optimises.

    Each scale's record goes to its elements (steps, losses, convergence); the batch's clock and
    targets are shared by them.
    """

    def __init__(self) -> None:
        self.module: StyleTransfer | None = None
        self.trainer: pl.Trainer | None = None
        self.elements: list[Element] = []
        self.device = torch.device("cpu")
        self.size = 0
        self.caps: list[int] = []
        self.targets = {"computed": 0, "reused": 0, "seconds": 0.0}
        self._logger: LossLogger | None = None
        self._stop: StopRule | None = None
        self._clock: StepClock | None = None
        self._started = 0.0
        self._recorded = True

    def rows(self, elements: list[Element]) -> list[int]:
        """The rows of ``elements`` in the module at work."""
        return [self.elements.index(element) for element in elements]

    def start_scale(self, built: Built, elements: list[Element], size: int, caps: list[int]) -> None:
        """Take up the batch ``built`` of ``elements`` at ``size``, each element capped at its ``caps`` steps."""
        self.module, self.elements, self.size, self.caps, self.trainer = built.module, elements, size, caps, None
        self.device, self._started, self._recorded = built.module.image.device, time.perf_counter(), False
        for key in ("computed", "reused"):
            self.targets[key] += built.targets[key]
        self.targets["seconds"] = round(self.targets["seconds"] + built.targets["seconds"], 4)

    def callbacks(self, log_every: int, image_every: int) -> list[pl.Callback]:
        """The scale's callbacks that follow each element: its losses and images on its own step axis, its stop rule; the clock."""
        offsets = [element.steps for element in self.elements]
        self._logger = LossLogger([element.loggers for element in self.elements], log_every, self.size, offsets)
        saver = ImageSaver(
            [element.job.run_dir for element in self.elements],
            [element.loggers for element in self.elements],
            image_every,
            self.size,
            offsets,
        )
        stop = [element.job.cfg.stop for element in self.elements]
        self._stop = StopRule([rule.rtol for rule in stop], [rule.window for rule in stop], self.caps)
        self._clock = StepClock(log_every)
        return [self._logger, saver, self._stop, self._clock]

    def end_scale(self) -> None:
        """Record the scale at work into each of its elements, once, however it ended."""
        if self._recorded:
            return
        self._recorded = True
        module, batch_steps = self.module, self.trainer.global_step if self.trainer else 0
        outputs = module.output()
        for i, element in enumerate(self.elements):
            steps = module.steps_of(i, batch_steps)
            if self._logger and self._logger.last_step[i] is not None:
                element.logged_step = self._logger.last_step[i]
            element.steps += steps
            element.evaluations += module.element_evaluations[i]
            if module.last_losses:
                element.losses = {key: float(value[i]) for key, value in module.last_losses.items()}
                if not element.initial_losses:
                    element.initial_losses = {key: float(value[i]) for key, value in module.initial_losses.items()}
            element.output = outputs[i : i + 1]
            element.scales.append(
                {
                    "size": self.size,
                    "steps": steps,
                    "converged": bool(self._stop and self._stop.converged[i]),
                    "seconds_per_step": self._clock.seconds_per_step if self._clock else None,
                    "wall_time_s": round(time.perf_counter() - self._started, 3),
                }
            )

    def summary(self, cfg: DictConfig, element: Element) -> dict[str, Any]:
        """What the optimisation did for ``element``: steps, passes, losses, convergence, time and memory."""
        return {
            "steps": element.steps,
            "max_steps": sum(cap for _, cap in scale_plan(cfg)),
            "converged": bool(element.scales and element.scales[-1]["converged"]),
            "scales": element.scales,
            "evaluations": element.evaluations,
            "losses": element.losses,
            "initial_losses": element.initial_losses,
            "targets": self.targets,
            "seconds_per_step": element.scales[-1]["seconds_per_step"] if element.scales else None,
            "peak_memory_mb": round(speed.peak_memory_mb(self.device), 1),
            "peak_memory_kind": "cuda max allocated" if self.device.type == "cuda" else "process max resident",
            "device": speed.device_name(self.device),
            "image_size": list(element.output.shape[2:]),
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
        images = {
            name: load_image(run_dir / f"{name}.png") if (run_dir / f"{name}.png").is_file() else None
            for name in ("final", "content", "style")
        }
        if images["content"] is not None and images["final"].shape != images["content"].shape:
            # Interrupted at a coarser scale: compared at the content's size.
            images["final"] = F.interpolate(
                images["final"][None], size=images["content"].shape[1:], mode="bilinear", align_corners=False
            )[0]
        scores = measures.measure(judges, images["final"], images["content"], images["style"], seconds)
    except (UserError, KeyboardInterrupt) as caught:
        reason = str(caught) or "interrupted"
        print(f"styleexp: warning: no fair measures: {reason}", file=sys.stderr)
        return {"measures": {}, "measures_error": reason}
    return {
        "measures": scores,
        "evaluators": list(cfg.measures.networks),
        "measures_seconds": round(time.perf_counter() - started, 3),
        "measures_seconds_each": seconds,
    }


def _objective(cfg: DictConfig, summary: dict[str, Any]) -> float | None:
    objective = cfg.objective or measures.default_objective(
        summary.get("mode", "transfer"), list(cfg.measures.networks)
    )
    return rundir.objective_value(
        summary, OmegaConf.to_container(objective) if OmegaConf.is_config(objective) else objective
    )


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
