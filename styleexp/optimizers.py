"""The optimisers of the image, in ``OPTIMIZERS``: each its settings (the ``optim.*`` keys), how to build it, the
rules its settings follow and the state it keeps."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from styleexp.registry import Registry
from styleexp.rules import positive, whole

LINE_SEARCH_EVALS = 25  # torch's default budget for one strong-Wolfe line search
MAX_GRADIENT_NORM = 2.0**26  # what L-BFGS sees: its line search squares gradient products, which float32 holds to 3e38


@dataclass(frozen=True)
class Optimizer:
    """An optimiser choice: ``settings`` is the dataclass of its config keys and defaults, ``build`` makes it.

    ``quasi_newton`` optimisers keep curvature pairs between steps: clamping pixels between steps
    would invalidate them, so only saved images are clamped, and their line search ends on points it
    has evaluated, which the module then answers from memory. ``state(settings, steps)`` is how many
    image-sized float32 tensors it keeps when capped at ``steps`` (``memory.py``). A setting's field
    carries the rule its value follows (``metadata={"rule": ...}``, ``rules.py``; ``checks.py`` applies it).
    """

    settings: type
    build: Callable[[Sequence[torch.Tensor], Any], torch.optim.Optimizer]
    quasi_newton: bool
    state: Callable[[Any, int], int]

    def settings_of(self, node: Mapping[str, Any]) -> Any:
        """The settings in a config's ``optim`` node (its ``name`` aside)."""
        return self.settings(**{key: value for key, value in node.items() if key != "name"})


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")


@dataclass
class LBFGSSettings:
    lr: float = field(default=1.0, metadata={"rule": positive("optim.lr=1")})
    history_size: int = field(default=100, metadata={"rule": whole(1, "optim.history_size=100")})


@dataclass
class AdamSettings:
    # Pixels are in [0, 1]: 0.02 here is about a step of 5 in the 0-255 range of Caffe-style code.
    lr: float = field(default=0.02, metadata={"rule": positive("optim.lr=0.02")})
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = field(default=1e-8, metadata={"rule": positive("optim.eps=1e-8")})


def loss_scale(gradient_norm: float) -> float:
    """The largest power of two, 1 at most, that brings ``gradient_norm`` to ``MAX_GRADIENT_NORM`` or below (1 for a
    norm that is not finite: the step that sees it ends anyway)."""
    if not math.isfinite(gradient_norm) or gradient_norm <= MAX_GRADIENT_NORM:
        return 1.0
    return 2.0 ** -math.ceil(math.log2(gradient_norm / MAX_GRADIENT_NORM))


class ScaledLBFGS(torch.optim.LBFGS):
    """torch's L-BFGS on the loss times a power of two, fixed at its first evaluation, that keeps the gradient's norm
    at most ``MAX_GRADIENT_NORM``.

    Its strong-Wolfe line search squares products of gradients: past a norm of about 4e9 (a style loss of 1e9 and
    more, as ``loss.style=1`` gives) they overflow float32, and its cubic step turns the next image NaN or gives way to
    bisection. Scaling by a power of two is exact, so wherever nothing overflows every step is the one the unscaled
    loss takes. The scale is kept in the saved state (``loss_scale``), so a resumed run goes on in its units.
    """

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        group = self.param_groups[0]

        def scaled() -> torch.Tensor:
            loss = closure()
            if "loss_scale" not in group:
                group["loss_scale"] = loss_scale(
                    math.sqrt(sum(float(p.grad.double().square().sum()) for p in group["params"]))
                )
            for p in group["params"]:
                p.grad.mul_(group["loss_scale"])
            return loss * group["loss_scale"]

        return super().step(scaled)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.param_groups[0].setdefault("loss_scale", 1.0)  # saved before losses were scaled: in the loss's units


def _lbfgs(params: Sequence[torch.Tensor], settings: LBFGSSettings) -> torch.optim.Optimizer:
    # One L-BFGS iteration per step, so `steps` counts iterations and per-step hooks (logging,
    # images, NaN checks) see every one; the history carries over. torch derives
    # max_eval = max_iter * 5 // 4, which for max_iter=1 leaves the line search no evaluations at
    # all, so it gets its own budget.
    return ScaledLBFGS(
        params,
        lr=settings.lr,
        max_iter=1,
        max_eval=1 + LINE_SEARCH_EVALS,
        history_size=settings.history_size,
        line_search_fn="strong_wolfe",
    )


def _adam(params: Sequence[torch.Tensor], settings: AdamSettings) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=settings.lr, betas=tuple(settings.betas), eps=settings.eps)


# L-BFGS: a step and a gradient change per remembered step, and its buffers; Adam: two moments and the gradient.
OPTIMIZERS.add("lbfgs", Optimizer(LBFGSSettings, _lbfgs, True, lambda s, steps: 2 * min(s.history_size, steps) + 4))
OPTIMIZERS.add("adam", Optimizer(AdamSettings, _adam, False, lambda s, steps: 3))
