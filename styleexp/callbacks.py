"""Lightning callbacks that watch the optimisation: losses to the loggers, images, a NaN guard, a step clock; and
the configurable ones, ``callbacks.<name>``.

Configurable (``conf/callbacks/default.yaml``): ``images`` (``ImageSaver``), ``progress`` (the progress bar) and
``heartbeat`` (a sweep job's progress line), and any a user adds. Kept out of the config, because they are the
run's contract (its ``summary.json``, ``metrics.csv``, status and resume point): the loss logger, the stop rule,
the NaN guard, the step clock and the checkpointer (``fitting.py``).
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ProgressBar

from styleexp import devices, rundir
from styleexp.images import save_image
from styleexp.module import StyleTransfer
from styleexp.tracking import Heartbeat, log_image, log_metrics


def configured(nodes: DictConfig | Mapping[str, Any], console: bool, **runtime: Any) -> list[pl.Callback]:
    """The callbacks of ``callbacks.<name>`` (a null one left out), each given those of the scale's ``runtime``
    objects (``run_dirs``, ``loggers``, ``size``, ``offsets``, ``label``) that its constructor names and its node does
    not set.

    A progress bar shows on a single run's ``console`` only (a sweep's jobs would share one console);
    a heartbeat only where there is no bar, and only with ``every_s`` set.
    """
    made = []
    for node in nodes.values():
        if node is None:
            continue
        takes = inspect.signature(get_object(node["_target_"])).parameters
        given = {key: value for key, value in runtime.items() if key in takes and key not in node}
        callback = instantiate(node, **given)
        if isinstance(callback, ProgressBar) and not console:
            continue
        if isinstance(callback, Heartbeat) and (console or callback.every_s is None):
            continue
        made.append(callback)
    return made


def logged_losses(module: StyleTransfer, index: int) -> dict[str, float]:
    """Element ``index``'s last losses as logged: one number per key."""
    return {key: float(value[index]) for key, value in module.last_losses.items()}


class LossLogger(pl.Callback):
    """At the first step and every ``every`` steps: each active element's losses and the scale to its ``loggers``.

    Steps continue over the scales of a coarse-to-fine run: ``offsets`` are each element's steps in
    the scales before. ``last_step`` is each element's last step logged; the run logs each final
    step itself, however it ended.
    """

    def __init__(self, loggers: list[list], every: int, scale: int, offsets: list[int]):
        self.loggers, self.every, self.scale, self.offsets = loggers, max(1, every), scale, offsets
        self.last_step: list[int | None] = [None] * len(loggers)

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if trainer.global_step % self.every == 0 or trainer.global_step == 1:
            for i, loggers in enumerate(self.loggers):
                if module.active[i]:
                    self.last_step[i] = self.offsets[i] + trainer.global_step
                    log_metrics(loggers, {**logged_losses(module, i), "scale": self.scale}, self.last_step[i])


class ImageSaver(pl.Callback):
    """Every ``every`` optimiser steps: write each active element's ``images/step_NNNNNN.png`` and log it as
    ``images/output``.

    Steps continue over the scales (``offsets``, per element), and each scale's last image is
    ``images/scale_<size>.png``. Element i's files go into ``run_dirs[i]``, its images to ``loggers[i]``.
    """

    def __init__(self, run_dirs: list[Path], loggers: list[list], every: int, size: int, offsets: list[int]):
        self.run_dirs = list(run_dirs)
        self.loggers, self.every, self.size, self.offsets = loggers, every, size, offsets

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0:
            output = module.output()
            for i, run_dir in enumerate(self.run_dirs):
                if module.active[i] or module.finished_at[i] == trainer.global_step:
                    step = self.offsets[i] + trainer.global_step
                    saved = save_image(output[i : i + 1], rundir.step_image(run_dir, step))
                    log_image(self.loggers[i], "images/output", saved, step)

    def on_train_end(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        output = module.output()
        for i, run_dir in enumerate(self.run_dirs):
            save_image(output[i : i + 1], rundir.scale_image(run_dir, self.size))


class StopRule(pl.Callback):
    """End each element at its step cap, or converged once its total loss improved by less than its ``rtol``
    (relative) over its ``window`` steps, or once its image moved by less than ``change`` 8-bit levels (mean absolute
    change of its pixels) over its last ``window`` steps, checked every ``window`` steps.

    ``converged`` says, per element, whether a rule fired. Reading the losses each step waits for
    the device, which on a GPU costs little next to a step.
    """

    def __init__(
        self,
        rtols: list[float | None],
        windows: list[int | None],
        caps: list[int],
        histories: list[list[float]] | None = None,
        changes: list[float | None] | None = None,
    ):
        self.rtols, self.windows, self.caps = rtols, windows, caps
        self.changes = changes or [None] * len(caps)
        # Each element's total losses so far (``histories``: where a resumed element's window stood).
        self.history: list[list[float]] = [list(h) for h in histories] if histories else [[] for _ in caps]
        self.converged = [False] * len(caps)
        # Each element's image when its current window began (one copy, not one per step).
        self.snapshots: list[torch.Tensor | None] = [None] * len(caps)

    def on_train_start(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        self.snapshots = [module.image.detach()[i].clone() if change else None for i, change in enumerate(self.changes)]

    def on_train_end(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        self.snapshots = [None] * len(self.caps)  # copies on the fit's device: not kept past it

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        step = trainer.global_step
        totals = module.last_losses["loss/total"].tolist()
        for i, (rtol, window, history) in enumerate(zip(self.rtols, self.windows, self.history)):
            if not module.active[i]:
                continue
            if rtol and window:
                history.append(totals[i])
                if len(history) > window and history[-1 - window] - history[-1] < rtol * abs(history[-1 - window]):
                    self.converged[i] = True
            if self.changes[i] and window and step % window == 0:
                image = module.image.detach()[i]
                moved = float((image - self.snapshots[i]).abs().mean()) * 255
                self.converged[i] |= moved < self.changes[i]
                self.snapshots[i] = image.clone()
            if self.converged[i] or step >= self.caps[i]:
                module.finish(i, step)


class NaNGuard(pl.Callback):
    """Stop each element whose loss is no longer finite, at the step it stops being finite, putting back its last
    image checked finite.

    Checks every step: the stop rule reads the losses each step anyway, so the check adds no wait for
    the device; an element whose loss turned non-finite during a step already ended that step there
    (``lockstep.py``). ``failures`` holds each element's reason once it fired, None for the others.
    """

    def __init__(self) -> None:
        self.last_finite: torch.Tensor | None = None
        self.failures: list[str | None] = []

    def on_train_start(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        self.last_finite = module.image.detach().clone()
        self.failures = [None] * len(self.last_finite)

    def on_train_end(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        self.last_finite = None  # a copy of the image on the fit's device: not kept past it

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        step = trainer.global_step
        rows = [i for i, active in enumerate(module.active) if active or module.finished_at[i] == step]
        if rows:
            self.check(trainer, module, rows)

    def check(self, trainer: pl.Trainer, module: StyleTransfer, rows: list[int]) -> None:
        with torch.no_grad():
            image = module.image.detach()
            finite = (
                torch.isfinite(module.last_losses["loss/total"]) & torch.isfinite(image).flatten(1).all(1)
            ).tolist()
            for i in rows:
                if finite[i]:
                    self.last_finite[i].copy_(image[i])
                    continue
                module.image[i].copy_(self.last_finite[i])
                self.failures[i] = (
                    f"the loss became NaN or infinite by step {trainer.global_step}; lower the learning rate or loss "
                    "weights"
                )
                module.finish(i, trainer.global_step)


class StepClock(pl.Callback):
    """Seconds per optimiser step: the median over intervals of ``every`` steps, the first interval left out, and
    the mean over those intervals; and how long the process had been running when the first step ended (its
    start-up, for a run's command).

    Timing waits for the device only at those steps, so the steps between run unsynchronised.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, every)
        self.marks: list[tuple[int, float]] = []
        self.first_step_process_s: float | None = None  # the process's age when the first step ended

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if trainer.global_step % self.every == 0 or trainer.global_step in (1, trainer.max_steps):
            if module.image.is_cuda:
                torch.cuda.synchronize(module.image.device)
            self.marks.append((trainer.global_step, time.perf_counter()))
            if trainer.global_step == 1:
                self.first_step_process_s = devices.process_age_s()

    @property
    def seconds_per_step(self) -> float | None:
        """Warm-up (the first step, and the interval after it) excluded; None if too few steps ran."""
        rates = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(self.marks[1:], self.marks[2:])]
        if not rates and len(self.marks) == 2:
            (s0, t0), (s1, t1) = self.marks
            rates = [(t1 - t0) / (s1 - s0)]
        return statistics.median(rates) if rates else None

    @property
    def mean_seconds_per_step(self) -> float | None:
        """From the end of the first interval to the last timed step: every step's share of what happens at logging
        and image steps, with no process start or end in it; None if too few steps ran."""
        marks = self.marks[1:] if len(self.marks) > 2 else self.marks
        if len(marks) < 2:
            return None
        (s0, t0), (s1, t1) = marks[0], marks[-1]
        return (t1 - t0) / (s1 - s0)
