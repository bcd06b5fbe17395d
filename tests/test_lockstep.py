"""Lockstep: per-element optimisers on the rows of one batch, stepped together, each as it would step alone."""

from __future__ import annotations

import pytest
import torch

from styleexp.lockstep import Lockstep

N, D = 3, 12


def _problem() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(N, D, D, generator=generator, dtype=torch.float64)
    return a @ a.transpose(1, 2) + 0.1 * torch.eye(D, dtype=torch.float64), torch.randn(
        N, D, generator=generator, dtype=torch.float64
    )


def _loss(x: torch.Tensor, rows: list[int], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A different non-quadratic problem per element: ``[len(rows)]``."""
    v = x.reshape(len(rows), -1)
    return 0.5 * torch.einsum("ni,nij,nj->n", v, a[rows], v) - (b[rows] * v).sum(1) + (v**4).sum(1)


def _lbfgs(params: list[torch.Tensor]) -> torch.optim.Optimizer:
    return torch.optim.LBFGS(params, lr=1, max_iter=1, max_eval=26, history_size=10, line_search_fn="strong_wolfe")


@pytest.mark.parametrize("make", [_lbfgs, lambda params: torch.optim.Adam(params, lr=0.05)], ids=["lbfgs", "adam"])
def test_elements_in_lockstep_take_exactly_their_solo_steps_and_evaluations(make):
    a, b = _problem()
    image = torch.nn.Parameter(torch.full((N, 3, 2, 2), 0.3, dtype=torch.float64))
    active = [True] * N
    lockstep = Lockstep(image, make, active)
    evaluations, rounds = [0] * N, 0

    def closure() -> torch.Tensor:
        nonlocal rounds
        rows, rounds = lockstep.requested, rounds + 1
        image.grad = None
        losses = _loss(image[rows], rows, a, b)
        losses.sum().backward()
        for i in rows:
            evaluations[i] += 1
        return torch.zeros(N, dtype=torch.float64).index_copy(0, torch.tensor(rows), losses.detach())

    for step in range(15):
        if step == 5:
            active[1] = False  # element 1 finishes: it no longer steps nor is evaluated
        lockstep.step(closure)
    for i in range(N):
        alone = torch.nn.Parameter(torch.full((1, 3, 2, 2), 0.3, dtype=torch.float64))
        optimizer, count = make([alone]), [0]

        def solo(alone=alone, optimizer=optimizer, count=count, i=i) -> torch.Tensor:
            count[0] += 1
            optimizer.zero_grad()
            loss = _loss(alone, [i], a, b).sum()
            loss.backward()
            return loss

        for _ in range(5 if i == 1 else 15):
            optimizer.step(solo)
        assert torch.equal(alone.detach(), image.detach()[i : i + 1]), i
        assert evaluations[i] == count[0], i
    assert rounds < sum(evaluations)  # one pass answers several elements


def test_an_error_in_the_evaluation_ends_every_elements_step_and_is_raised():
    image = torch.nn.Parameter(torch.zeros(2, 3, 2, 2))
    lockstep = Lockstep(image, _lbfgs, [True, True])

    def failing() -> torch.Tensor:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        lockstep.step(failing)
    assert not any(element.waiting for element in lockstep.elements)
