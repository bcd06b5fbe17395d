"""The step clock, the NaN guard and the stop rule, driven by a stand-in trainer and batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from styleexp import callbacks
from styleexp.callbacks import NaNGuard, StepClock, StopRule


class _Module:
    """A stand-in batch of ``len(losses)`` 2x2 images with those total losses."""

    def __init__(self, *losses: float):
        self.image = torch.nn.Parameter(torch.full((len(losses), 3, 2, 2), 0.5))
        self.last_losses = {"loss/total": torch.tensor(losses)}
        self.active = [True] * len(losses)
        self.finished_at: list[int | None] = [None] * len(losses)

    def finish(self, index: int, step: int) -> None:
        self.active[index], self.finished_at[index] = False, step


def _module(loss: float) -> _Module:
    return _Module(loss)


def test_the_step_clock_takes_the_median_interval_after_warm_up(monkeypatch):
    clock, module = StepClock(every=2), _module(1.0)
    trainer = SimpleNamespace(global_step=0, max_steps=8)
    # Step 1 is slow (warm-up); then 2 s per step, except one slow interval.
    times = {1: 10.0, 2: 12.0, 4: 16.0, 6: 26.0, 8: 30.0}
    for step in range(1, 9):
        trainer.global_step = step
        monkeypatch.setattr(callbacks.time, "perf_counter", lambda step=step: times.get(step, 0.0))
        clock.on_train_batch_end(trainer, module)
    assert [s for s, _ in clock.marks] == [1, 2, 4, 6, 8]
    assert clock.seconds_per_step == pytest.approx(2.0)  # intervals 2, 5, 2 s/step after warm-up
    assert clock.mean_seconds_per_step == pytest.approx(3.0)  # the slow interval counts: 18 s over steps 2 to 8
    assert StepClock(every=10).seconds_per_step is None and StepClock(every=10).mean_seconds_per_step is None


def test_the_nan_guard_stops_only_the_element_that_went_bad_and_puts_back_its_last_finite_image():
    guard, module = NaNGuard(), _Module(1.0, 1.0)
    trainer = SimpleNamespace(global_step=1, max_steps=10, should_stop=False)
    guard.on_train_start(trainer, module)
    guard.on_train_batch_end(trainer, module)
    assert guard.failures == [None, None] and module.active == [True, True]
    with torch.no_grad():
        module.image.fill_(0.25)
    guard.on_train_batch_end(trainer, module)  # finite: becomes the image to restore
    with torch.no_grad():
        module.image[1].fill_(float("nan"))
        module.image[0].fill_(0.75)
    trainer.global_step = 2
    module.last_losses["loss/total"] = torch.tensor([0.5, float("inf")])
    guard.on_train_batch_end(trainer, module)
    assert module.active == [True, False] and module.finished_at[1] == 2
    assert guard.failures[0] is None and "by step 2" in guard.failures[1]
    assert torch.equal(module.image.detach()[1], torch.full((3, 2, 2), 0.25))
    assert torch.equal(module.image.detach()[0], torch.full((3, 2, 2), 0.75))  # the other element goes on


def test_the_nan_guard_stops_an_element_at_the_step_its_loss_stops_being_finite():
    guard, module = NaNGuard(), _Module(float("nan"), 1.0)
    trainer = SimpleNamespace(global_step=3, max_steps=7, should_stop=False)  # not a logging step
    guard.on_train_start(trainer, module)
    guard.on_train_batch_end(trainer, module)
    assert "by step 3" in guard.failures[0] and module.finished_at[0] == 3
    assert guard.failures[1] is None and module.active[1]


def test_the_stop_rule_ends_each_element_at_its_own_cap_or_convergence():
    rule, module = StopRule([0.1, None], [2, None], caps=[10, 3]), _Module(1.0, 1.0)
    trainer = SimpleNamespace(global_step=0, max_steps=10, should_stop=False)
    for step, losses in enumerate([(1.0, 5.0), (0.5, 4.0), (0.48, 3.0), (0.47, 2.0)], start=1):
        trainer.global_step = step
        module.last_losses["loss/total"] = torch.tensor(losses)
        rule.on_train_batch_end(trainer, module)
    # Element 0 improved by under 10 % over the last two steps (0.5 -> 0.47); element 1 reached its cap of 3.
    assert rule.converged == [True, False] and module.finished_at == [4, 3]


def test_the_image_rule_ends_an_element_whose_image_stopped_changing_at_the_end_of_its_window():
    rule, module = StopRule([None, None], [2, 2], caps=[10, 10], changes=[1.0, 1.0]), _Module(1.0, 1.0)
    trainer = SimpleNamespace(global_step=0, max_steps=10, should_stop=False)
    rule.on_train_start(trainer, module)
    for step in range(1, 5):
        trainer.global_step = step
        with torch.no_grad():
            module.image[1] += 0.01  # 2.55 levels a step: 5.1 over a window
        rule.on_train_batch_end(trainer, module)
    assert rule.converged == [True, False] and module.finished_at == [2, None]
