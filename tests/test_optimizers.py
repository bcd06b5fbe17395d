"""The image's optimisers: L-BFGS on losses large enough to overflow torch's line search."""

from __future__ import annotations

import numpy as np
import torch

from styleexp.optimizers import MAX_GRADIENT_NORM, ScaledLBFGS, loss_scale


def _descend(kind: type[torch.optim.LBFGS], weight: float, steps: int = 3) -> tuple[torch.Tensor, torch.optim.LBFGS]:
    """``steps`` L-BFGS steps, as a run takes them, on ``weight`` times a squared distance whose value is a little off
    its gradient's account of it, as bfloat16's rounding leaves a style loss."""
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 8, 8, generator=generator)
    image = torch.rand(1, 3, 8, 8, generator=generator).requires_grad_()
    optimizer = kind([image], lr=1, max_iter=1, max_eval=26, history_size=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        distance = ((image - target) ** 2).sum()
        jitter = 0.002 * distance.detach() * torch.cos(1e4 * image.detach().sum())
        (weight * (distance + jitter)).backward()
        return weight * (distance + jitter).detach()

    for _ in range(steps):
        optimizer.step(closure)
    return image.detach(), optimizer


def test_l_bfgs_stays_finite_on_huge_losses_and_takes_the_unscaled_losss_steps_wherever_that_is_finite():
    # torch's cubic interpolation squares gradient products: here, with torch 2.14, weights from 3.5e8 to 3.9e8 overflow
    # float32 there and turn the image NaN (above, both products overflow and torch falls back to bisection).
    for weight in [*np.geomspace(1e8, 1e10, 120), 1e12]:
        plain, _ = _descend(torch.optim.LBFGS, weight)
        scaled, optimizer = _descend(ScaledLBFGS, weight)
        assert torch.isfinite(scaled).all(), weight
        if torch.isfinite(plain).all():
            assert torch.equal(scaled, plain), weight  # a power of two is exact: the very same steps
    assert optimizer.param_groups[0]["loss_scale"] < 1  # the largest weight's loss was scaled


def test_the_loss_scale_is_a_power_of_two_fixed_at_the_first_evaluation_and_kept_with_the_state():
    assert loss_scale(MAX_GRADIENT_NORM) == 1 and loss_scale(float("inf")) == 1 and loss_scale(0.0) == 1
    assert loss_scale(3 * MAX_GRADIENT_NORM) == 0.25
    _, optimizer = _descend(ScaledLBFGS, 1e11)
    scale = optimizer.param_groups[0]["loss_scale"]
    assert 0 < scale < 1 and np.log2(scale) == round(np.log2(scale))
    resumed = ScaledLBFGS([torch.zeros(1, 3, 8, 8, requires_grad=True)], max_iter=1)
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.param_groups[0]["loss_scale"] == scale  # a resumed run goes on in its units
    older = optimizer.state_dict()
    del older["param_groups"][0]["loss_scale"]  # saved before losses were scaled: its history is unscaled
    resumed.load_state_dict(older)
    assert resumed.param_groups[0]["loss_scale"] == 1
