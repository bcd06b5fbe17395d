"""A batch of runs (a solo run is a batch of one), top to bottom: admit each job, build and fit each scale, record.

Each job stays a run of its own: its folder, summary, loggers and W&B run. Nothing here raises for a
run that goes wrong: a user mistake, a NaN, running out of memory or any other error is recorded as
that job's outcome (``outcome.py``), so a sweep goes on.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from omegaconf import DictConfig

from styleexp import (
    checkpoints,
    checks,
    claims,
    devices,
    fitting,
    memory,
    outcome,
    rundir,
    signals,
    speed,
    sweeps,
    tracking,
)
from styleexp.build import build, load_images, prepare, scale_plan, spec_of
from styleexp.element import Element
from styleexp.errors import UserError
from styleexp.images import save_image
from styleexp.job import Job
from styleexp.outcome import Outcome
from styleexp.spec import mode_of


def run(cfg: DictConfig) -> Outcome:
    """Run the style transfer ``cfg`` describes in Hydra's output folder; how it ended."""
    return run_batch([Job.current(cfg)])[0]


def run_batch(jobs: list[Job], label: str | None = None) -> list[Outcome]:
    """Run ``jobs`` (which share a network, optimiser, precision and image shape) as one batch; how each ended.

    ``label`` names the batch in a sweep's progress lines (default: its job's folder, or its number of jobs).
    """
    with signals.preemption():
        return _run_batch(jobs, label)


def _run_batch(jobs: list[Job], label: str | None) -> list[Outcome]:
    outcomes: dict[int, Outcome] = {}
    admitted: dict[int, Element] = {}
    try:
        for k, job in enumerate(jobs):
            with job.as_current():
                entry = admit(job, len(jobs))
            (outcomes if isinstance(entry, Outcome) else admitted)[k] = entry
        batch = [element.job.run_dir.name for element in admitted.values()] if len(admitted) > 1 else None
        for element in admitted.values():
            element.record["batch"] = batch
        if admitted:
            label = label or (jobs[0].run_dir.name if len(jobs) == 1 else f"{len(jobs)} jobs")
            outcomes.update(zip(admitted, optimise(list(admitted.values()), label)))
    finally:
        for job in jobs:
            claims.release(job.run_dir)
    return [outcomes[k] for k in range(len(jobs))]


def admit(job: Job, batch_size: int) -> Element | Outcome:
    """The job's checks, its resume test and its folder's claim; its record and loggers if it is to run."""
    cfg, run_dir = job.cfg, job.run_dir
    elsewhere = sweeps.running_elsewhere(run_dir)
    if elsewhere is not None:
        return Outcome(elsewhere, "skipped", f"skipped: another process is running this job in {elsewhere}")
    try:
        checks.check(cfg)
        scale_plan(cfg)
        precision = speed.resolve(cfg.speed.precision.value, devices.device_of(cfg))
        speed.check_precision(precision, devices.device_of(cfg))
        needs = memory.check_fits(cfg, batch_size)
    except UserError as error:
        if claims.claim(run_dir):  # not over a completed run that today's checks would refuse
            failed = {"status": "failed", "message": str(error), "exit_code": outcome.EXIT_USAGE}
            rundir.write_summary(run_dir, {**failed, "overrides": job.overrides})
        return Outcome(run_dir, "failed", str(error), error)
    identity = rundir.config_identity(cfg)
    if sweeps.is_multirun() and rundir.completed_identity(run_dir) == identity:
        done = f"skipped: {run_dir} holds a completed run of this config"
        return Outcome(run_dir, "skipped", done, objective=rundir.objective(cfg, rundir.read_summary(run_dir)))
    if not claims.claim(run_dir):
        error = UserError(f"{run_dir} already holds a run or another process works there; choose a new folder")
        return Outcome(run_dir, "failed", str(error), error)
    if threads := devices.cpu_threads(cfg.threads):
        torch.set_num_threads(threads)
    mode = mode_of(cfg.content, cfg.style)
    record = {
        "config_sha256": identity, "choices": job.choices, "overrides": job.overrides, "seed": cfg.seed, "mode": mode,
        "threads": torch.get_num_threads(), "precision": precision,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": rundir.versions(),
        "memory_estimate_mb": {"held": needs.held_mb, "need": needs.need_mb, "available": needs.available_mb},
    }  # fmt: skip
    return Element.admitted(job, record, mode)


def optimise(elements: list[Element], label: str) -> list[Outcome]:
    """Optimise the admitted ``elements`` together, scale by scale; record how each ended (``label``: see
    ``run_batch``)."""
    cfg = elements[0].job.cfg  # the batch's shared settings
    device = devices.device_of(cfg)
    devices.reset_peak_memory(device)
    console = cfg.verbose or not sweeps.is_multirun()  # a sweep's job has its one line when it ends
    targets, started = {"computed": 0, "reused": 0, "seconds": 0.0}, time.perf_counter()
    try:
        with signals.sigterm_as_interrupt(), memory.capped(device):
            live = _read_inputs(elements)
            network = prepare(cfg, [element.spec for element in live]) if live else None
            for element in live if console else []:
                outcome.announce(element.record["mode"], element.job.run_dir)
            for scale, (size, _) in enumerate(scale_plan(cfg)):
                taking = [element for element in live if element.takes_part(scale)]
                if not taking:
                    continue
                built = build([e.job.cfg for e in taking], network, size, [e.start(scale) for e in taking])
                # A weight means the same at every scale: relative terms keep their units.
                built.module.use_units(fitting.carried_units([element.units(scale) for element in taking]))
                for element, facts in zip(taking, built.facts):
                    element.record.update(facts)
                for key in targets:
                    targets[key] = round(targets[key] + built.targets[key], 4)
                lanes = [element.lane(scale) for element in taking]
                scales, ended = fitting.fit(built.module, lanes, size, cfg, console, label)
                for element, result in zip(taking, scales):
                    element.scales.append(result)
                    element.resume = None
                    if result.failure is not None:
                        element.end("nan")
                if ended is not None:
                    raise ended
                live = [element for element in live if element.status is None]
                for element in live if scale + 1 < len(scale_plan(cfg)) else []:
                    checkpoints.save(element.job.run_dir, element.between_scales(scale + 1))
        for element in elements:
            element.end("completed")
    except (KeyboardInterrupt, SystemExit, signals.Preempted):
        for element in elements:
            element.end("interrupted")
    except Exception as caught:  # the batch as a whole failed (out of memory, a bug): recorded, the sweep goes on
        for element in elements:
            element.end("failed", caught)
    optimised = time.perf_counter() - started
    with signals.held():
        return [_record(element, device, targets, optimised) for element in elements]


def _read_inputs(elements: list[Element]) -> list[Element]:
    """Each element's input images into its folder and loggers, and its spec at the final size; the elements
    whose inputs could be read (one that cannot fails alone)."""
    for element in elements:
        cfg, run_dir = element.job.cfg, element.job.run_dir
        try:
            rundir.save_inputs(run_dir, *load_images(cfg, cfg.size))
            element.spec = spec_of(cfg, cfg.size)
            tracking.log_inputs(element.loggers, run_dir)
        except Exception as caught:
            element.end("failed", caught)
    return [element for element in elements if element.status is None]


def _record(element: Element, device: torch.device, targets: dict[str, Any], optimised: float) -> Outcome:
    """Write how ``element`` ended: its final image, summary, measures and last log lines; then close its loggers.

    Its wall time is the batch's optimisation (``optimised`` seconds) and its own measuring.
    """
    cfg, run_dir, scales, started = element.job.cfg, element.job.run_dir, element.scales, time.perf_counter()
    final = save_image(scales[-1].output, run_dir / rundir.FINAL) if scales else None
    failure = scales[-1].failure if scales else None
    message = outcome.message(element.status, element.error, element.steps, final, failure, cfg.size)
    summary = {"status": element.status, "message": message, **element.record}
    if scales:
        summary.update(fitting.summary(scales, sum(cap for _, cap in scale_plan(cfg)), targets, device))
    if final is not None:
        summary.update(rundir.measure(run_dir, cfg, device))
    summary["wall_time_s"] = round(optimised + time.perf_counter() - started, 3)
    if checkpoints.kept(run_dir, element.status):
        summary["message"] = message = f"{message}; its saved state lets styleexp-resume (or a requeue) go on"
    rundir.write_summary(run_dir, summary)
    last = dict(summary.get("losses") or {}) if scales and scales[-1].logged_step != element.steps else {}
    last.update({f"measure/{key}": value for key, value in summary.get("measures", {}).items()})
    if last and scales:
        last["scale"] = scales[-1].size
    tracking.finish(element.loggers, element.steps, last, run_dir, summary)
    objective = rundir.objective(cfg, summary) if element.status == "completed" else None
    return Outcome(run_dir, element.status, message, element.error, objective, summary)
