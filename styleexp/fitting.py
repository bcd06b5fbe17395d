"""One scale of a batch: the Lightning trainer and its callbacks, and what each element did at that scale."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from styleexp import devices, speed, tracking
from styleexp.callbacks import ImageSaver, LossLogger, NaNGuard, StepClock, StopRule
from styleexp.module import StyleTransfer


@dataclass
class Lane:
    """What a scale needs to know of one element: its folder and loggers, its stop rule, its step cap at this
    scale, and the steps it took at the scales before (its logged steps go on from there)."""

    run_dir: Path
    loggers: list
    stop: DictConfig
    cap: int
    offset: int


@dataclass
class Scale:
    """What one element did at one scale."""

    size: int
    steps: int
    converged: bool
    seconds_per_step: float | None  # the batch's, after warm-up
    wall_time_s: float
    evaluations: int  # network passes that evaluated this element
    initial_losses: dict[str, float]
    losses: dict[str, float]  # at its last evaluation; {} if it had none
    logged_step: int | None  # the last step its loggers got, counted over every scale
    image: torch.Tensor  # [3, H, W], as optimised: where the next scale starts
    output: torch.Tensor  # [1, 3, H, W], as saved (with the content's colours under colors=luminance)
    failure: str | None  # why its loss stopped it (NaN or infinite), if it did
    units: dict[str, float]  # its relative terms' units, which later scales keep

    def record(self) -> dict[str, Any]:
        """What ``summary.json`` keeps of the scale."""
        return {"size": self.size, "steps": self.steps, "converged": self.converged,
                "seconds_per_step": self.seconds_per_step, "wall_time_s": self.wall_time_s}  # fmt: skip


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
    offsets = [lane.offset for lane in lanes]
    logger = LossLogger([lane.loggers for lane in lanes], cfg.log_every, size, offsets)
    saver = ImageSaver(
        [lane.run_dir for lane in lanes], [lane.loggers for lane in lanes], cfg.image_every, size, offsets
    )
    stop = StopRule(
        [lane.stop.rtol for lane in lanes], [lane.stop.window for lane in lanes], [lane.cap for lane in lanes]
    )
    clock, guard = StepClock(cfg.log_every), NaNGuard(cfg.log_every)
    progress = [tracking.Progress(cfg.log_every, size)] if console else []
    heartbeat = [tracking.Heartbeat(label, cfg.progress_every_s, size)] if not console and cfg.progress_every_s else []
    cap = max(lane.cap for lane in lanes)
    trainer = pl.Trainer(
        **{**OmegaConf.to_container(cfg.trainer, resolve=True), "max_steps": cap},
        precision=speed.set_precision(cfg.speed.precision.value, devices.device_of(cfg)),  # where it will run
        logger=False,  # each element logs to its own loggers (callbacks.py)
        enable_progress_bar=bool(progress),
        callbacks=[logger, saver, stop, clock, guard, *progress, *heartbeat],
    )
    ended = None
    try:
        with tracking.quiet_fit():
            trainer.fit(module, DataLoader(range(cap), batch_size=None))
    except (KeyboardInterrupt, SystemExit, Exception) as caught:  # Lightning answers Ctrl-C with sys.exit(1)
        ended = caught
    outputs, wall_time = module.output(), round(time.perf_counter() - started, 3)
    failures = guard.failures or [None] * len(lanes)
    units = module.units()
    scales = [
        Scale(
            size=size,
            steps=module.steps_of(i, trainer.global_step),
            converged=stop.converged[i],
            seconds_per_step=clock.seconds_per_step,
            wall_time_s=wall_time,
            evaluations=module.element_evaluations[i],
            initial_losses={key: float(value[i]) for key, value in module.initial_losses.items()},
            losses={key: float(value[i]) for key, value in module.last_losses.items()},
            logged_step=logger.last_step[i],
            image=module.image.detach()[i].clone(),
            output=outputs[i : i + 1],
            failure=failures[i],
            units={name: float(unit[i]) for name, unit in units.items()},
        )
        for i in range(len(lanes))
    ]
    return scales, ended


def carried_units(scales: Sequence[Scale]) -> dict[str, torch.Tensor]:
    """The relative terms' units at the end of the elements' ``scales``, one per element: what the next scale keeps."""
    return {name: torch.tensor([scale.units[name] for scale in scales]) for name in scales[0].units}


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
        "peak_memory_mb": round(devices.peak_memory_mb(device), 1),
        "peak_memory_kind": "cuda max allocated" if device.type == "cuda" else "process max resident",
        "device": devices.device_name(device),
        "image_size": list(scales[-1].output.shape[2:]),
    }
