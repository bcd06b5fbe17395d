"""Batched sweeps: jobs optimised together as one [N, 3, H, W] problem, each still a run of its own."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from styleexp import memory
from styleexp.batching import batches
from styleexp.reproduce import resume_main
from styleexp.run import run, run_batch

from .conftest import BIN, compose_config, job_folders, job_in, require_weights, summary, wandb_run_record

# Three pure-style jobs that differ in statistic, style image and seed.
JOBS = [("checkers", "gram", 0), ("dark_circle", "centered", 1), ("rainbow_circles", "both", 2)]
TINY = ["content=null", "size=32", "network=vgg16", "logger=csv", "measures.networks=[]"]


@pytest.fixture
def weights() -> None:
    require_weights("vgg16", "caffe")


def _pixels(run_dir) -> np.ndarray:
    return np.asarray(Image.open(run_dir / "final.png"), dtype=float)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, steps", [("lbfgs", 3), ("adam", 10)])
def test_a_batch_gives_each_job_the_result_of_its_solo_run(tmp_path, weights, optimizer, steps):
    settings = [*TINY, f"optim={optimizer}", f"steps={steps}"]
    jobs = [[*settings, f"style={style}", f"gram={gram}", f"seed={seed}"] for style, gram, seed in JOBS]
    batched = run_batch([job_in(tmp_path / f"batched{i}", *overrides) for i, overrides in enumerate(jobs)])
    for i, overrides in enumerate(jobs):
        solo = run(job_in(tmp_path / f"solo{i}", *overrides).cfg)
        together = batched[i]
        assert together.status == solo.status == "completed"
        assert together.summary["batch"] == ["batched0", "batched1", "batched2"] and solo.summary["batch"] is None
        assert together.summary["steps"] == solo.summary["steps"] == steps
        for key in ("loss/total", "loss/style"):
            assert together.summary["losses"][key] == pytest.approx(solo.summary["losses"][key], rel=0.01), (i, key)
        assert np.abs(_pixels(together.run_dir) - _pixels(solo.run_dir)).mean() < 1.0, i
        # The folder holds what a solo run leaves.
        assert {path.name for path in together.run_dir.iterdir()} == {path.name for path in solo.run_dir.iterdir()}
        assert (together.run_dir / "metrics.csv").read_text().count("\n") == (
            solo.run_dir / "metrics.csv"
        ).read_text().count("\n")


@pytest.mark.slow
def test_a_nan_in_one_element_fails_only_its_job(tmp_path, weights):
    # Checked every step: the overflowing element leaves the batch at once.
    jobs = [
        job_in(tmp_path / "fine", *TINY, "style=checkers", "steps=6", "log_every=1"),
        job_in(tmp_path / "overflowing", *TINY, "style=checkers", "steps=6", "log_every=1", "loss.style=1e39"),
    ]
    fine, overflowing = run_batch(jobs)
    assert overflowing.status == "nan" and "NaN or infinite" in overflowing.message
    assert (overflowing.run_dir / "final.png").is_file()  # its last finite image, its initial noise
    assert fine.status == "completed" and fine.summary["steps"] == 6
    assert fine.summary["losses"]["loss/style"] < 0.5 * fine.summary["initial_losses"]["loss/style"]


def test_jobs_share_a_batch_only_with_the_same_network_optimiser_and_image_shape():
    base = ["content=null", "style=checkers", "logger=none"]
    cfgs = [
        compose_config(*base, "size=32"),
        compose_config(*base, "size=32", "gram=centered", "seed=3", "style_layers.first=2", "loss.tv=0", "steps=7"),
        compose_config(*base, "size=48"),
        compose_config(*base, "size=32", "optim=adam"),
        compose_config(*base, "size=32", "network=vgg16"),
        compose_config(
            *base, "size=32", "content=astronaut"
        ),  # a transfer takes the photograph's shape... the same square
        compose_config(*base, "size=32", "content=missing.jpg"),  # unreadable: alone, to fail with its own message
        compose_config(*base, "size=32", "pooling=avg"),
    ]
    assert batches(cfgs, None) == [[0, 1, 5], [2], [3], [4], [6], [7]]
    assert batches(cfgs, 2) == [[0, 1], [5], [2], [3], [4], [6], [7]]


@pytest.mark.slow
def test_a_batched_sweep_writes_a_run_per_job_resumes_and_runs_a_batch_of_one_like_a_solo_job(tmp_path, weights, cli):
    sweep_dir, solo_dir = tmp_path / "batched", tmp_path / "basic"
    sweep = [
        "-m",
        "content=null",
        "style=checkers,dark_circle",
        "gram=gram,centered",
        "size=32",
        "steps=4",
        "network=vgg16",
        "measures.networks=[]",
    ]
    done = cli(*sweep, "hydra/launcher=batched", f"hydra.sweep.dir={sweep_dir}", "progress_every_s=1e-9")
    assert done.returncode == 0, done.stderr
    assert "4 jobs, 4 completed" in done.stdout and done.stdout.count(": done: ") == 4
    # Progress as it goes (here at every step): the batch, of how many, its step, loss and ended elements.
    assert "styleexp: batch 1 of 1 (4 jobs): 32 px, step 2/4, median loss " in done.stdout
    assert "/4 ended" in done.stdout
    jobs = job_folders(sweep_dir)
    assert len(jobs) == 4
    runs = {job: wandb_run_record(sweep_dir / job) for job in jobs}
    assert len({record["run_id"] for record in runs.values()}) == 4
    for job, record in runs.items():
        saved = summary(sweep_dir / job)
        assert saved["status"] == "completed" and sorted(saved["batch"]) == jobs
        assert record["display_name"] == f"batched/{job}" and record["run_group"] == "batched"
        assert record["config"]["update"]["overrides"]["style"] in job
        assert (sweep_dir / job / ".hydra" / "overrides.yaml").is_file() and (sweep_dir / job / "metrics.csv").is_file()

    again = cli(str(sweep_dir), main=resume_main)
    assert again.returncode == 0, again.stderr
    assert "4 completed (4 skipped as done before)" in again.stdout

    # Two sizes: two batches of one, each bit-identical to the same job under Hydra's basic launcher.
    sizes = [
        "-m",
        "content=null",
        "style=checkers",
        "size=32,40",
        "steps=4",
        "network=vgg16",
        "measures.networks=[]",
        "logger=none",
        "progress_every_s=1e-9",
    ]
    split = cli(*sizes, "hydra/launcher=batched", f"hydra.sweep.dir={sweep_dir}-sizes")
    basic = cli(*sizes, f"hydra.sweep.dir={solo_dir}")
    assert split.returncode == 0 and basic.returncode == 0, split.stderr + basic.stderr
    assert "styleexp: batch 2 of 2 (1 job): 40 px, step 3/4, loss " in split.stdout
    assert "styleexp: size=40: 40 px, step 3/4, loss " in basic.stdout  # a solo job of a sweep, by its name
    for job in ("size=32", "size=40"):
        assert summary(tmp_path / "batched-sizes" / job)["batch"] is None
        assert (tmp_path / "batched-sizes" / job / "final.png").read_bytes() == (
            solo_dir / job / "final.png"
        ).read_bytes()


def test_a_batch_that_no_longer_fits_when_it_starts_is_split_not_failed(tmp_path, weights, cli, monkeypatch):
    calls = []

    def shrinking(cfg, wanted):  # the plan sees memory for all four; by the batch's start, others took half of it
        calls.append(wanted)
        return wanted if len(calls) == 1 else min(wanted, 2)

    monkeypatch.setattr(memory, "batch_that_fits", shrinking)
    sweep_dir = tmp_path / "sweep"
    done = cli("-m", "content=null", "style=checkers", "seed=0,1,2,3", "size=32", "steps=2", "network=vgg16",
               "measures.networks=[]", "logger=none", "hydra/launcher=batched",
               f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "styleexp: batch 1 of 2 (2 jobs)" in done.stdout and "styleexp: batch 2 of 2 (2 jobs)" in done.stdout
    assert all(summary(sweep_dir / job)["status"] == "completed" for job in job_folders(sweep_dir))


@pytest.mark.slow
def test_ctrl_c_in_a_batch_keeps_every_jobs_latest_image(tmp_path, weights):
    sweep_dir = tmp_path / "sweep"
    # SIG_DFL: a suite started in the background ignores SIGINT, and the child would inherit that.
    process = subprocess.Popen(
        [
            BIN / "styleexp",
            "-m",
            "hydra/launcher=batched",
            "content=null",
            "style=checkers,dark_circle",
            "size=32",
            "network=vgg16",
            "steps=100000",
            "stop.rtol=null",
            "image_every=2",
            "logger=none",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    jobs = [sweep_dir / "style=checkers", sweep_dir / "style=dark_circle"]
    deadline = time.monotonic() + 120
    while not all((job / "images" / "step_000004.png").exists() for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 130, stderr
    for job in jobs:
        facts = summary(job)
        assert facts["status"] == "interrupted" and 4 <= facts["steps"] < 100000
        assert "interrupted at step" in facts["message"] and (job / "final.png").is_file()
    assert not np.array_equal(_pixels(jobs[0]), _pixels(jobs[1]))


def test_the_batched_launcher_config_composes_and_hydra_can_instantiate_it():
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext

    cfg = compose_config("hydra/launcher=batched", "hydra.launcher.batch_size=4", hydra=True)
    context = HydraContext(config_loader=None, callbacks=None)
    launcher = Plugins.instance().instantiate_launcher(
        hydra_context=context, task_function=lambda cfg: None, config=cfg
    )
    assert type(launcher).__name__ == "BatchedLauncher" and launcher.batch_size == 4
