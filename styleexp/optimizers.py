"""The optimisers of the image, in ``OPTIMIZERS``: each its settings (the ``optim.*`` keys) and how to build it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from styleexp.registry import Registry

LINE_SEARCH_EVALS = 25  # torch's default budget for one strong-Wolfe line search


@dataclass(frozen=True)
class Optimizer:
    """An optimiser choice: ``settings`` is the dataclass of its config keys and defaults, ``build`` makes it.

    ``quasi_newton`` optimisers keep curvature pairs between steps: clamping pixels between steps
    would invalidate them, so only saved images are clamped, and their line search ends on points it
    has evaluated, which the module then answers from memory.
    """

    settings: type
    build: Callable[[Sequence[torch.Tensor], Any], torch.optim.Optimizer]
    quasi_newton: bool


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")


@dataclass
class LBFGSSettings:
    lr: float = 1.0
    history_size: int = 100


@dataclass
class AdamSettings:
    # Pixels are in [0, 1]: 0.02 here is about a step of 5 in the 0-255 range of Caffe-style code.
    lr: float = 0.02
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


def _lbfgs(params: Sequence[torch.Tensor], settings: LBFGSSettings) -> torch.optim.Optimizer:
    # One L-BFGS iteration per step, so `steps` counts iterations and per-step hooks (logging,
    # images, NaN checks) see every one; the history carries over. torch derives
    # max_eval = max_iter * 5 // 4, which for max_iter=1 leaves the line search no evaluations at
    # all, so it gets its own budget.
    return torch.optim.LBFGS(
        params,
        lr=settings.lr,
        max_iter=1,
        max_eval=1 + LINE_SEARCH_EVALS,
        history_size=settings.history_size,
        line_search_fn="strong_wolfe",
    )


def _adam(params: Sequence[torch.Tensor], settings: AdamSettings) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=settings.lr, betas=tuple(settings.betas), eps=settings.eps)


OPTIMIZERS.add("lbfgs", Optimizer(LBFGSSettings, _lbfgs, quasi_newton=True))
OPTIMIZERS.add("adam", Optimizer(AdamSettings, _adam, quasi_newton=False))
