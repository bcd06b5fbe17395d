"""The memory guard: a run that cannot fit is refused before any work, one that outgrows its cap fails alone."""

from __future__ import annotations

import resource

from styleexp import memory

from .conftest import compose_config, run_in_process, summary


def test_the_largest_size_named_fits_and_a_larger_one_does_not(monkeypatch):
    monkeypatch.setattr(memory, "available_mb", lambda device: 2000.0)
    largest = memory.estimate(compose_config("size=64")).largest_size
    assert memory.estimate(compose_config(f"size={largest}")).fits
    assert not memory.estimate(compose_config(f"size={largest + 16}")).fits
    # An L-BFGS history is memory: a longer one fits a smaller image.
    assert memory.estimate(compose_config("size=64", "optim.history_size=5")).largest_size > largest


def test_a_run_that_outgrows_its_cap_is_recorded_as_out_of_memory_and_the_process_goes_on(tmp_path, monkeypatch):
    # The estimate is told everything is free, and the cap is 150 MB above what the process holds:
    # the network's activations at 1024 px need gigabytes, more than a test worker's earlier tests
    # leave mapped and free for reuse (at 512 px some orders of the suite let the run fit).
    monkeypatch.setattr(memory, "available_mb", lambda device: 150.0)
    monkeypatch.setattr(memory, "FIXED_MB", 0.0)
    monkeypatch.setattr(memory, "bytes_per_pixel", lambda cfg, steps: 1.0)
    before = resource.getrlimit(resource.RLIMIT_AS)
    result = run_in_process(tmp_path / "run", "logger=none", "size=1024", "steps=2", "measures.networks=[]")
    assert result.status == "failed" and result.exit_code == 1
    assert result.message.startswith("out of memory at size=1024")
    assert summary(tmp_path / "run")["status"] == "failed"
    assert resource.getrlimit(resource.RLIMIT_AS) == before
