"""One scale of a batch: the Lightning trainer and its callbacks, and what each element did at that scale."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from styleexp import devices, tracking, trainer_args
from styleexp.callbacks import LossLogger, NaNGuard, StepClock, StopRule, configured
from styleexp.checkpoints import HELD, Checkpointer, Resume
from styleexp.module import StyleTransfer


@dataclass
class Lane:
    """What a scale needs to know of one element: its folder and loggers, its stop rule, its step cap at this
    scale, and the steps it took at the scales before (its logged steps go on from there). For its
    resume points: the scale's index, what the scales before did, its config's identity, and the
    point it goes on from at this scale, if an earlier job saved one (``checkpoints.py``)."""

    run_dir: Path
    loggers: list
    stop: DictConfig
    cap: int
    offset: int
    scale: int = 0
    earlier: list[Scale] = field(default_factory=list)
    identity: str = ""
    resume: Resume | None = None


@dataclass
class Scale:
    """What one element did at one scale."""

    size: int
    steps: int
    converged: bool
    seconds_per_step: float | None  # the batch's, after warm-up: the median between logging steps
    first_step_process_s: float | None  # the process's age when the scale's first step ended
    wall_time_s: float
    evaluations: int  # network passes that evaluated this element
    initial_losses: dict[str, float]
    losses: dict[str, float]  # at its last evaluation; {} if it had none
    logged_step: int | None  # the last step its loggers got, counted over every scale
    image: torch.Tensor  # [3, H, W], as optimised: where the next scale starts
    output: torch.Tensor  # [1, 3, H, W], as saved (with the content's colours under colors=luminance)
    failure: str | None  # why its loss stopped it (NaN or infinite), if it did
    units: dict[str, float]  # its relative terms' units, which later scales keep
    style_layers: list[str] = field(default_factory=list)  # those its style loss read at this scale
    # The batch's, after warm-up: the mean, logging and image steps included (None in a point saved before it was kept).
    mean_seconds_per_step: float | None = None

    def record(self) -> dict[str, Any]:
        """What ``summary.json`` keeps of the scale."""
        return {"size": self.size, "steps": self.steps, "converged": self.converged,
                "seconds_per_step": self.seconds_per_step, "wall_time_s": self.wall_time_s,
                "style_layers": self.style_layers}  # fmt: skip


HELD.append(Scale)  # a saved point holds its earlier scales, which torch's safe loader must be told of


def fit(
    module: StyleTransfer, lanes: Sequence[Lane], size: int, cfg: DictConfig, console: bool, label: str
) -> tuple[list[Scale], BaseException | None]:
    """Optimise ``module`` (one row per lane) until every element has converged, reached its cap or failed.

    ``cfg`` holds the batch's shared settings (trainer, precision, logging). With ``console`` a
    progress bar shows how it goes, else (a sweep's job) a line now and then names it by ``label``.
    Returns what each element did, and what ended the scale for all of them, if anything did: an
    interruption (Ctrl-C, SIGTERM) or an error of the batch as a whole (out of memory). Each
    element's images and losses so far are in its ``Scale`` either way.
    """
    started = time.perf_counter()
    done = [lane.resume.step if lane.resume else 0 for lane in lanes]  # a resumed element goes on from there
    offsets = [lane.offset + steps for lane, steps in zip(lanes, done)]
    logger = LossLogger([lane.loggers for lane in lanes], cfg.log_every, size, offsets)
    run_dirs = [lane.run_dir for lane in lanes]
    chosen = configured(
        cfg.callbacks, console, run_dirs=run_dirs, loggers=[lane.loggers for lane in lanes], size=size,
        offsets=offsets, label=label,
    )  # fmt: skip
    stop = StopRule(
        [lane.stop.rtol for lane in lanes],
        [lane.stop.window for lane in lanes],
        [lane.cap - steps for lane, steps in zip(lanes, done)],
        [lane.resume.history if lane.resume else [] for lane in lanes],
        [lane.stop.image_change for lane in lanes],
    )
    module.optimizer_states = [lane.resume.optimizer if lane.resume else None for lane in lanes]
    every_s = math.inf if cfg.checkpoint_every_s is None else cfg.checkpoint_every_s
    points = [_points(module, i, lane, steps) for i, (lane, steps) in enumerate(zip(lanes, done))]
    checkpointer = Checkpointer(run_dirs, points, stop.history, cfg.log_every, every_s)
    clock, guard = StepClock(cfg.log_every), NaNGuard()
    cap, device = max(stop.caps), devices.device_of(cfg)  # where it will run
    trainer = trainer_args.make(cfg, cap, device, [logger, *chosen, stop, clock, guard, checkpointer])
    ended = None
    try:
        with tracking.quiet_fit():
            trainer.fit(module, DataLoader(range(cap), batch_size=None))
    except (KeyboardInterrupt, SystemExit, Exception) as caught:  # Lightning answers Ctrl-C with sys.exit(1)
        ended = trainer_args.explained(caught)
    outputs, wall_time = module.output(), round(time.perf_counter() - started, 3)
    failures = guard.failures or [None] * len(lanes)
    units = module.units()
    scales = [
        Scale(
            size=size,
            steps=done[i] + module.steps_of(i, trainer.global_step),
            converged=stop.converged[i],
            seconds_per_step=clock.seconds_per_step,
            mean_seconds_per_step=clock.mean_seconds_per_step,
            first_step_process_s=clock.first_step_process_s,
            wall_time_s=wall_time,
            evaluations=_evaluations(module, i, lane.resume),
            initial_losses=_initial_losses(module, i, lane.resume),
            losses={key: float(value[i]) for key, value in module.last_losses.items()},
            logged_step=logger.last_step[i],
            image=module.image.detach()[i].clone(),
            output=outputs[i : i + 1],
            failure=failures[i],
            units={name: float(unit[i]) for name, unit in units.items()},
            style_layers=[
                layer for term in module.terms if term.name == "style" and i in term.elements for layer in term.layers
            ],  # fmt: skip
        )
        for i, lane in enumerate(lanes)
    ]
    return scales, ended


def _evaluations(module: StyleTransfer, i: int, resume: Resume | None) -> int:
    """Element ``i``'s network passes at this scale (those before a resumption too, if it was resumed)."""
    return module.element_evaluations[i] + (resume.evaluations if resume else 0)


def _initial_losses(module: StyleTransfer, i: int, resume: Resume | None) -> dict[str, float]:
    """Element ``i``'s losses at its first evaluation at this scale (before a resumption, if it was resumed)."""
    return resume.initial_losses if resume else {key: float(value[i]) for key, value in module.initial_losses.items()}


def _points(
    module: StyleTransfer, i: int, lane: Lane, done: int
) -> Callable[[int, dict[str, Any], list[float]], Resume]:
    """How element ``i`` (of ``lane``, ``done`` steps into this scale when the fit began) stands once the fit has taken
    ``step`` steps, given its optimiser's state and its stop rule's window."""

    def point(step: int, optimizer: dict[str, Any], history: list[float]) -> Resume:
        return Resume(
            identity=lane.identity,
            scale=lane.scale,
            step=done + module.steps_of(i, step),
            image=module.image.detach()[i].clone(),
            optimizer=optimizer,
            history=history,
            units={name: float(unit[i]) for name, unit in module.units().items()},
            initial_losses=_initial_losses(module, i, lane.resume),
            evaluations=_evaluations(module, i, lane.resume),
            earlier=lane.earlier,
            wandb_id=tracking.wandb_id(lane.loggers),
        )

    return point


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


def carried_units(units: Sequence[dict[str, float]]) -> dict[str, torch.Tensor]:
    """The relative terms' units of each element (NaN: not yet set), as the next scale's module takes them."""
    names = list(dict.fromkeys(name for element in units for name in element))
    return {name: torch.tensor([element.get(name, math.nan) for element in units]) for name in names}


def summary(scales: Sequence[Scale], max_steps: int, targets: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """What an element's ``scales`` did, for its summary: steps, passes, losses, convergence, time and memory."""
    return {
        "steps": sum(scale.steps for scale in scales),
        "max_steps": max_steps,
        "converged": scales[-1].converged,
        "scales": [scale.record() for scale in scales],
        "evaluations": sum(scale.evaluations for scale in scales),
        "losses": next((scale.losses for scale in reversed(scales) if scale.losses), {}),
        "initial_losses": next((scale.initial_losses for scale in scales if scale.initial_losses), {}),
        "targets": targets,
        "seconds_per_step": scales[-1].seconds_per_step,
        "mean_seconds_per_step": scales[-1].mean_seconds_per_step,
        # From the command to the first step (imports, weights, targets); in a sweep's process, the jobs before too.
        "process_seconds_at_first_step": _rounded(scales[0].first_step_process_s),
        "peak_memory_mb": round(devices.peak_memory_mb(device), 1),
        "peak_memory_kind": "cuda max allocated" if device.type == "cuda" else "process max resident",
        "device": devices.device_name(device),
        "image_size": list(scales[-1].output.shape[2:]),
    }
