"""Preemption: a job warned with SIGUSR2 saves its state as its step ends; its next launch goes on from there.

Also the batched launcher's submitit path (submitit's local executor), which a warned batch goes through.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleexp import checkpoints, signals
from styleexp.checkpoints import Checkpointer
from styleexp.reproduce import resume_main

from .conftest import BIN, job_folders, require_weights, summary

TINY = ["content=null", "style=checkers", "network=vgg16", "style_layers=gatys", "measures.networks=[]",
        "stop.rtol=null", "log_every=5", "image_every=5", "logger=csv", "checkpoint_every_s=0"]  # fmt: skip


@pytest.fixture
def weights() -> None:
    require_weights("vgg16", "caffe")


def _warn_at(monkeypatch: pytest.MonkeyPatch, step: int, scale: int = 0) -> None:
    """Send this process the preemption signal once, as the fit at scale index ``scale`` ends its ``step``."""
    original, sent = Checkpointer.on_train_batch_end, []

    def warned(self, trainer, module, *args):
        if trainer.global_step == step and not sent and self.points[0](step, {}, []).scale == scale:
            sent.append(step)
            signal.raise_signal(signals.preemption_signal())
        original(self, trainer, module, *args)

    monkeypatch.setattr(Checkpointer, "on_train_batch_end", warned)


def _pixels(run_dir: Path) -> np.ndarray:
    return np.asarray(Image.open(run_dir / "final.png"), dtype=float)


def _logged_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv") as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row["loss/total"]]


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting, warned_at",
    [
        # Adam across two scales, warned in the second: the resumed image is the uninterrupted one.
        (["optim=adam", "size=48", "scales=[32,48]", "steps=[8,12]"], (5, 1)),
        # L-BFGS, warned between logging steps: its history is restored and it reaches the same step count.
        (["optim=lbfgs", "size=32", "steps=14"], (7, 0)),
    ],
)
def test_a_warned_job_saves_its_state_and_its_resumed_sweep_goes_on_from_that_step(
    tmp_path, weights, cli, monkeypatch, setting, warned_at
):
    step, scale = warned_at
    sweep = ["-m", "seed=3", *TINY, *setting]
    steps = sum(int(s) for s in setting[-1].split("=")[1].strip("[]").split(","))
    whole = cli(*sweep, f"hydra.sweep.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr

    _warn_at(monkeypatch, step, scale)
    sweep_dir = tmp_path / "warned"
    stopped = cli(*sweep, f"hydra.sweep.dir={sweep_dir}")
    monkeypatch.undo()
    (name,) = job_folders(sweep_dir)
    run_dir, twin = sweep_dir / name, tmp_path / "whole" / name
    assert stopped.returncode == 130 and "its saved state lets styleexp-resume" in stopped.stdout + stopped.stderr
    cut = summary(run_dir)
    at = 8 * scale + step  # on the run's step axis
    assert cut["status"] == "interrupted" and cut["steps"] == at
    assert checkpoints.load(run_dir, cut["config_sha256"]).total_step == at

    resumed = cli(str(sweep_dir), main=resume_main)
    assert resumed.returncode == 0, resumed.stderr
    assert job_folders(sweep_dir) == [name]  # the same folder, not a second attempt
    done = summary(run_dir)
    assert done["status"] == "completed" and done["resumed_from_step"] == at and done["steps"] == steps
    assert [s["steps"] for s in done["scales"]] == [s["steps"] for s in summary(twin)["scales"]]
    assert not (run_dir / "resume.pt").exists()
    logged = _logged_steps(run_dir)
    assert logged == sorted(set(logged)) and logged[-1] == steps and at in logged  # one step axis, no step twice
    difference = np.abs(_pixels(run_dir) - _pixels(twin)).max()
    if "optim=adam" in setting:
        assert difference == 0
    print(f"{setting[0]}: warned at step {at}, resumed to {done['steps']}; largest pixel difference {difference}")


def test_a_point_of_another_config_or_unreadable_is_not_resumed(tmp_path, capsys):
    point = checkpoints.Resume("abc", 0, 3, torch.zeros(3, 4, 4), None, [], {}, {}, 3)
    checkpoints.save(tmp_path, point)
    assert checkpoints.load(tmp_path, "abc").step == 3 and checkpoints.load(tmp_path, "other") is None
    assert checkpoints.kept(tmp_path, "interrupted") and not checkpoints.kept(tmp_path, "completed")
    assert not (tmp_path / "resume.pt").exists()
    (tmp_path / "resume.pt").write_bytes(b"cut short")
    assert checkpoints.load(tmp_path, "abc") is None  # a point that cannot be read: the run starts over
    assert "cannot be read" in capsys.readouterr().err


def test_the_warning_reaches_the_handler_that_was_there_once_the_batch_has_ended(monkeypatch):
    received = []
    previous = signal.signal(signals.preemption_signal(), lambda signum, frame: received.append(signum))
    try:
        with signals.preemption():
            signal.raise_signal(signals.preemption_signal())
            assert signals.preempted() and received == []  # noted, for the step's end; not passed on mid-step
        assert received == [signals.preemption_signal()]  # then submitit's handler would checkpoint and requeue
    finally:
        signal.signal(signals.preemption_signal(), previous)


@pytest.mark.slow
def test_batches_run_as_submitit_jobs_and_a_warned_batch_is_requeued_and_goes_on(tmp_path, weights):
    sweep_dir = tmp_path / "sweep"
    cluster = ["hydra/launcher=batched_slurm", "hydra.launcher.submitit.cluster=local", "hydra.launcher.batch_size=2",
               "hydra.launcher.submitit.gpus_per_node=0", "hydra.launcher.submitit.cpus_per_task=1"]  # fmt: skip
    args = ["-m", "seed=0,1,2", *TINY, "optim=adam", "size=32", "steps=60", "log_every=10", *cluster]
    process = subprocess.Popen(
        [BIN / "styleexp", *args, f"hydra.sweep.dir={sweep_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    point = sweep_dir / "seed=0" / "resume.pt"
    deadline = time.monotonic() + 120
    while not point.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(json.loads((sweep_dir / "seed=0" / ".claim").read_text())["pid"], signal.SIGUSR2)  # the batch's process
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "batch 1 of 2 is local job" in out and "batch 2 of 2 is local job" in out
    assert job_folders(sweep_dir) == ["seed=0", "seed=1", "seed=2"]  # one folder per job, the requeued ones too
    facts = {name: summary(sweep_dir / name) for name in job_folders(sweep_dir)}
    assert all(fact["status"] == "completed" and fact["steps"] == 60 for fact in facts.values())
    assert (
        facts["seed=0"]["batch"] == facts["seed=1"]["batch"] == ["seed=0", "seed=1"]
        and facts["seed=2"]["batch"] is None
    )
    resumed = facts["seed=0"]["resumed_from_step"]
    assert (
        0 < resumed < 200
        and facts["seed=1"]["resumed_from_step"] == resumed
        and facts["seed=2"]["resumed_from_step"] is None
    )
    print(f"the warned batch went on from step {resumed} of 60")


def test_an_interrupted_run_goes_on_in_its_folder_and_its_wandb_run(tmp_path, weights, cli, monkeypatch):
    run_dir = tmp_path / "run"
    single = [*TINY, "logger=wandb", "optim=adam", "size=32", "steps=12", f"hydra.run.dir={run_dir}"]
    _warn_at(monkeypatch, 6)
    assert cli(*single).returncode == 130
    monkeypatch.undo()
    assert summary(run_dir)["steps"] == 6

    resumed = cli(str(run_dir), main=resume_main)
    assert resumed.returncode == 0, resumed.stderr
    done = summary(run_dir)
    assert done["status"] == "completed" and done["steps"] == 12 and done["resumed_from_step"] == 6
    # One W&B run id: the run goes on (two starts within a second share a folder name, so W&B adds a suffix).
    assert len({log.name for log in (run_dir / "wandb").glob("offline-run-*/run-*.wandb")}) == 1
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2
    assert _logged_steps(run_dir) == [1, 5, 6, 7, 11, 12]

    refused = cli(str(run_dir), main=resume_main)  # completed: nothing to go on from
    assert refused.returncode == 2 and "holds no saved state" in refused.stderr
