"""A job admitted to its batch (``run.py``): what it carries from scale to scale, and from a job that saved it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from styleexp import checkpoints, outcome, tracking
from styleexp.build import scale_plan
from styleexp.checkpoints import Resume
from styleexp.fitting import Lane, Scale
from styleexp.job import Job
from styleexp.spec import Spec


@dataclass
class Element:
    """A job admitted to its batch: what its summary holds from the start, its loggers, where an earlier job left
    it (if one saved a point), its spec once its inputs are read, what it did at each scale, and how it ended
    (set once, by ``end``)."""

    job: Job
    record: dict[str, Any]
    loggers: list
    resume: Resume | None = None  # cleared once the scale it was saved at is done
    spec: Spec | None = None
    scales: list[Scale] = field(default_factory=list)
    status: str | None = None
    error: BaseException | None = None

    @classmethod
    def admitted(cls, job: Job, record: dict[str, Any], mode: str) -> Element:
        """``job`` with its loggers, going on from the point a job before it saved in its folder, if one did."""
        resume = checkpoints.load(job.run_dir, record["config_sha256"])
        record["resumed_from_step"] = resume.total_step if resume else None
        loggers = tracking.loggers(job.cfg, tracking.wandb_run(job, mode, resume.wandb_id if resume else None))
        record["wandb"] = tracking.wandb_identity(loggers)
        if resume:
            tracking.resume_metrics(loggers, job.run_dir, resume.total_step)
        return cls(job, record, loggers, resume, scales=list(resume.earlier) if resume else [])

    def end(self, status: str, error: BaseException | None = None) -> None:
        if self.status is None:
            self.status, self.error = status, error
            self.record["exit_code"] = outcome.exit_code(status, error)

    @property
    def steps(self) -> int:
        return sum(scale.steps for scale in self.scales)

    def takes_part(self, scale: int) -> bool:
        """Whether it optimises at ``scale``: a resumed element sits out the scales it had done."""
        return self.resume is None or self.resume.scale <= scale

    def start(self, scale: int) -> torch.Tensor | None:
        """Where it starts at ``scale``: where it was resumed, the last scale's result, or (None) its init."""
        if self.resume is not None:
            return self.resume.image
        return self.scales[-1].image if scale else None

    def units(self, scale: int) -> dict[str, float]:
        """The relative terms' units it starts ``scale`` with; none (NaN) at a fresh first scale."""
        if self.resume is not None:
            return self.resume.units
        return self.scales[-1].units if scale else {}

    def lane(self, scale: int) -> Lane:
        """What the fit at ``scale`` needs to know of it; a point saved between scales is only where it starts."""
        cfg, resume = self.job.cfg, self.resume
        return Lane(
            run_dir=self.job.run_dir,
            loggers=self.loggers,
            stop=cfg.stop,
            cap=scale_plan(cfg)[scale][1],
            offset=self.steps,
            scale=scale,
            earlier=list(self.scales),
            identity=self.record["config_sha256"],
            resume=resume if resume and resume.step else None,
        )

    def between_scales(self, scale: int) -> Resume:
        """Its point once the scales before ``scale`` are done: the next one starts from their result."""
        done = self.scales[-1]
        return Resume(
            identity=self.record["config_sha256"],
            scale=scale,
            step=0,
            image=done.image,
            optimizer=None,
            history=[],
            units=done.units,
            initial_losses={},
            evaluations=0,
            earlier=list(self.scales),
            wandb_id=tracking.wandb_id(self.loggers),
        )
