"""The step clock and the NaN guard, driven by a stand-in trainer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from styleexp import callbacks
from styleexp.callbacks import NaNGuard, StepClock


def _module(loss: float) -> SimpleNamespace:
    return SimpleNamespace(image=torch.nn.Parameter(torch.full((1, 3, 2, 2), 0.5)), last_losses={"loss/total": torch.tensor([loss])})


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
    assert StepClock(every=10).seconds_per_step is None


def test_the_nan_guard_stops_and_puts_back_the_last_finite_image():
    guard, module = NaNGuard(every=1), _module(1.0)
    trainer = SimpleNamespace(global_step=1, max_steps=10, should_stop=False)
    guard.on_train_start(trainer, module)
    guard.on_train_batch_end(trainer, module)
    assert guard.failure is None and not trainer.should_stop
    with torch.no_grad():
        module.image.fill_(0.25)
    guard.on_train_batch_end(trainer, module)  # finite: becomes the image to restore
    with torch.no_grad():
        module.image.fill_(float("nan"))
    trainer.global_step = 2
    module.last_losses["loss/total"] = torch.tensor([float("inf")])
    guard.on_train_batch_end(trainer, module)
    assert trainer.should_stop and "by step 2" in guard.failure
    assert torch.equal(module.image.detach(), torch.full((1, 3, 2, 2), 0.25))


def test_the_nan_guard_checks_only_every_few_steps_and_at_the_end():
    guard, module = NaNGuard(every=5), _module(float("nan"))
    trainer = SimpleNamespace(global_step=3, max_steps=7, should_stop=False)
    guard.on_train_start(trainer, module)
    guard.on_train_batch_end(trainer, module)
    assert guard.failure is None
    trainer.global_step = 7
    guard.on_train_batch_end(trainer, module)
    assert guard.failure is not None
