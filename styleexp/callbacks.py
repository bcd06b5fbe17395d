"""Lightning callbacks that watch the optimisation: losses to the loggers, images, a NaN guard, a step clock."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from styleexp.images import save_image
from styleexp.module import StyleTransfer
from styleexp.tracking import log_image, log_metrics


def logged_losses(module: StyleTransfer) -> dict[str, float]:
    """The module's last losses as logged: one number per key (a batch's sum over its elements)."""
    return {key: float(value.sum()) for key, value in module.last_losses.items()}


class LossLogger(pl.Callback):
    """At the first step and every ``every`` steps: the losses and the scale to every logger.

    Steps continue over the scales of a coarse-to-fine run: ``offset`` is the steps of the scales
    before. ``last_step`` is the last step logged; the run logs its final step itself, however it ends.
    """

    def __init__(self, every: int, scale: int, offset: int = 0):
        self.every, self.scale, self.offset = max(1, every), scale, offset
        self.last_step: int | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if trainer.global_step % self.every == 0 or trainer.global_step == 1:
            self.last_step = self.offset + trainer.global_step
            log_metrics(trainer.loggers, {**logged_losses(module), "scale": self.scale}, self.last_step)


class ImageSaver(pl.Callback):
    """Every ``every`` optimiser steps: write ``images/step_NNNNNN.png`` and log it as ``images/output``.

    Steps continue over the scales (``offset``), and each scale's last image is ``images/scale_<size>.png``.
    """

    def __init__(self, run_dir: Path, every: int, scale: int, offset: int = 0):
        self.folder = Path(run_dir) / "images"
        self.every, self.scale, self.offset = every, scale, offset

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0:
            step = self.offset + trainer.global_step
            path = save_image(module.output(), self.folder / f"step_{step:06d}.png")
            log_image(trainer.loggers, "images/output", path, step)

    def on_train_end(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        save_image(module.output(), self.folder / f"scale_{self.scale}.png")


class StopRule(pl.Callback):
    """End a scale, converged, once its total loss improved by less than ``rtol`` (relative) over ``window`` steps.

    ``converged`` says whether it fired. Reading the loss each step waits for the device, which on
    a GPU costs little next to a step.
    """

    def __init__(self, rtol: float | None, window: int | None):
        self.rtol, self.window = rtol, window
        self.history: list[float] = []
        self.converged = False

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if not self.rtol or not self.window:
            return
        self.history.append(float(module.last_losses["loss/total"].sum()))
        if len(self.history) > self.window:
            before, now = self.history[-1 - self.window], self.history[-1]
            if before - now < self.rtol * abs(before):
                self.converged = True
                trainer.should_stop = True


class NaNGuard(pl.Callback):
    """Stop a run whose loss is no longer finite, putting back the last image checked finite.

    Checks every ``every`` steps (a check waits for the device) and after the last; ``failure``
    holds the reason once it fired.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, every)
        self.last_finite: torch.Tensor | None = None
        self.failure: str | None = None

    def on_train_start(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        self.last_finite = module.image.detach().clone()

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if trainer.global_step % self.every == 0 or trainer.global_step >= trainer.max_steps or trainer.should_stop:
            self.check(trainer, module)

    def check(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        image_ok = torch.isfinite(module.image).all()
        if bool(torch.isfinite(module.last_losses["loss/total"]).all() & image_ok):
            self.last_finite.copy_(module.image.detach())
            return
        with torch.no_grad():
            module.image.copy_(self.last_finite)
        self.failure = f"the loss became NaN or infinite by step {trainer.global_step}; lower the learning rate or loss weights"
        trainer.should_stop = True


class StepClock(pl.Callback):
    """Seconds per optimiser step: the median over intervals of ``every`` steps, the first interval left out.

    Timing waits for the device only at those steps, so the steps between run unsynchronised.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, every)
        self.marks: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if trainer.global_step % self.every == 0 or trainer.global_step in (1, trainer.max_steps):
            if module.image.is_cuda:
                torch.cuda.synchronize()
            self.marks.append((trainer.global_step, time.perf_counter()))

    @property
    def seconds_per_step(self) -> float | None:
        """Warm-up (the first step, and the interval after it) excluded; None if too few steps ran."""
        rates = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(self.marks[1:], self.marks[2:])]
        if not rates and len(self.marks) == 2:
            (s0, t0), (s1, t1) = self.marks
            rates = [(t1 - t0) / (s1 - s0)]
        return statistics.median(rates) if rates else None
