"""Where an unfinished run stands, kept in its folder (``resume.pt``): a requeued or resumed job goes on from there.

A cluster may preempt a job or end it at its time limit; submitit warns it first (``signals.py``)
and requeues it, and ``styleexp-resume`` relaunches an interrupted sweep. Each element of a batch
keeps its own point, in its own folder: its scale and step, its image, its optimiser's state
(L-BFGS history, Adam moments, step counter), its stop rule's window and its relative terms'
units. The job that finds the point builds its batch as before and puts the element back where it
was, whatever batch it lands in; it logs on the same step axis to the same W&B run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from styleexp import signals
from styleexp.rundir import RESUME


@dataclass
class Resume:
    """One element's point: at scale ``scale`` (an index of its scale plan) it had taken ``step`` steps.

    ``optimizer`` is None between scales (each scale starts a new optimiser). ``earlier`` holds
    what the scales before did (``fitting.Scale``); ``evaluations`` and ``initial_losses`` are
    this scale's so far. ``identity`` is the run's config SHA-256, ``wandb_id`` its W&B run.
    """

    identity: str
    scale: int
    step: int
    image: torch.Tensor  # [3, H, W], as optimised
    optimizer: dict[str, Any] | None
    history: list[float]  # the stop rule's window of total losses
    units: dict[str, float]  # NaN: not yet set
    initial_losses: dict[str, float]
    evaluations: int
    earlier: list[Any] = field(default_factory=list)
    wandb_id: str | None = None

    @property
    def total_step(self) -> int:
        """The step on the run's axis (counted over every scale)."""
        return sum(scale.steps for scale in self.earlier) + self.step


# The classes a saved point holds: Resume, and fitting.Scale, which adds itself (it imports this module).
HELD: list[type] = [Resume]


def save(run_dir: Path, point: Resume) -> None:
    """Write ``point`` atomically: a job that dies while writing leaves the previous point whole."""
    path = Path(run_dir) / RESUME
    partial = path.with_name(f".{RESUME}.{os.getpid()}.partial")
    torch.save(replace(point, image=point.image.detach().cpu()), partial)
    os.replace(partial, path)


def load(run_dir: Path, identity: str) -> Resume | None:
    """The point saved in ``run_dir`` for the config ``identity``, or None (no point, or another config's).

    Torch's safe loader builds tensors and the classes of ``HELD``, and refuses anything else a planted file would
    have it run.
    """
    path = Path(run_dir) / RESUME
    if not path.is_file():
        return None
    try:
        with torch.serialization.safe_globals(HELD):
            point = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # cut short or written by another styleexp: the run starts over, said once
        print(
            f"styleexp: warning: {path} cannot be read ({type(error).__name__}); the run starts over", file=sys.stderr
        )
        return None
    return point if getattr(point, "identity", None) == identity else None


def kept(run_dir: Path, status: str) -> bool:
    """Whether ``run_dir`` keeps its point now that its run ended with ``status``: only an interrupted run goes on."""
    path = Path(run_dir) / RESUME
    if status != "interrupted":
        path.unlink(missing_ok=True)
    return path.is_file()


class Checkpointer(pl.Callback):
    """Save each active element's point at logging steps (``every`` steps, at most once per ``every_s`` seconds; 0:
    each time), and at the end of the step in which the process is warned of preemption, which then ends the fit.

    ``points[i](step, optimizer_state, history)`` makes element i's point once it has taken ``step`` steps at this
    scale; ``histories[i]`` is its stop rule's window.
    """

    def __init__(
        self,
        run_dirs: list[Path],
        points: list[Callable[[int, dict[str, Any], list[float]], Resume]],
        histories: list[list[float]],
        every: int,
        every_s: float,
    ):
        self.run_dirs, self.points, self.histories = run_dirs, points, histories
        self.every, self.every_s = max(1, every), every_s
        self.saved = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, *args: Any) -> None:
        step = trainer.global_step
        warned = signals.preempted()
        if warned or (step % self.every == 0 and time.monotonic() - self.saved >= self.every_s):
            lockstep = trainer.optimizers[0]
            for i, run_dir in enumerate(self.run_dirs):
                if module.active[i]:
                    state = lockstep.elements[i].optimizer.state_dict()
                    save(run_dir, self.points[i](step, state, list(self.histories[i])))
            self.saved = time.monotonic()
        if warned:
            raise signals.Preempted(f"preempted at step {step}")
