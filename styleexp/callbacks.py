"""Lightning callbacks that watch the optimisation: images, a NaN guard, a step clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from styleexp.images import save_image
from styleexp.module import StyleTransfer


def log_image(trainer: pl.Trainer, key: str, path: Path) -> None:
    """Send a saved PNG to every W&B logger of ``trainer`` at the current step."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)


class ImageSaver(pl.Callback):
    """Every ``every`` optimiser steps: write ``images/step_NNNNNN.png`` and log it as ``images/output``."""

    def __init__(self, run_dir: Path, every: int):
        self.folder = Path(run_dir) / "images"
        self.every = every

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0:
            path = save_image(module.image, self.folder / f"step_{trainer.global_step:06d}.png")
            log_image(trainer, "images/output", path)


class NaNGuard(pl.Callback):
    """Stop a run whose loss is no longer finite, putting back the last image whose loss was.

    ``failure`` holds the reason once it fired.
    """

    def __init__(self) -> None:
        self.last_finite: torch.Tensor | None = None
        self.failure: str | None = None

    def on_train_start(self, trainer: pl.Trainer, module: StyleTransfer) -> None:
        self.last_finite = module.image.detach().clone()

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        image_ok = torch.isfinite(module.image).all()
        if bool(torch.isfinite(module.last_losses["loss/total"]) & image_ok):
            self.last_finite.copy_(module.image.detach())
            return
        with torch.no_grad():
            module.image.copy_(self.last_finite)
        self.failure = f"the loss became NaN or infinite at step {trainer.global_step}; lower the learning rate or loss weights"
        trainer.should_stop = True


class StepClock(pl.Callback):
    """Seconds per optimiser step, from the end of the first step (warm-up excluded) to the end of the last."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.steps_timed = 0

    def on_train_batch_end(self, trainer: pl.Trainer, module: StyleTransfer, *args) -> None:
        if module.image.is_cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        else:
            self.steps_timed += 1
        self.last = now

    @property
    def seconds_per_step(self) -> float | None:
        return (self.last - self.first) / self.steps_timed if self.steps_timed else None
