"""Sweeps: Hydra multirun through the real CLI (basic and joblib launchers), resume, reproduce."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, read_write

from styleexp import outcome
from styleexp.claims import release
from styleexp.cli import CONFIG_DIR, EXPERIMENTS_DIR
from styleexp.images import load_image
from styleexp.report import load_runs
from styleexp.reproduce import check_resumable
from styleexp.reproduce import reproduce_main as reproduce
from styleexp.reproduce import resume_main as resume
from styleexp.rundir import LATER_KEYS, completed_identity, config_identity
from styleexp.sweeps import SweepRecord, job_dir, job_name, naming_keys, running_elsewhere

from .conftest import (
    BIN,
    job_folders,
    require_weights,
    styleexp,
    summary,
    wandb_records,
    wandb_run_record,
    wandb_summary,
)

FAST = ["size=32", "steps=3", "measures.networks=[]"]


@pytest.fixture
def weights() -> None:
    require_weights("vgg19", "caffe")


@pytest.mark.slow
def test_a_three_job_sweep_on_two_cores_gives_three_grouped_wandb_runs_and_shares_targets(tmp_path, weights):
    sweep_dir = tmp_path / "sweep"
    done = styleexp(
        "-m",
        "init=noise,content,style",
        *FAST,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert done.returncode == 0, done.stderr
    assert "3 jobs, 3 completed" in done.stdout
    assert job_folders(sweep_dir) == ["init=content", "init=noise", "init=style"]

    records = {name: wandb_run_record(sweep_dir / name) for name in job_folders(sweep_dir)}
    assert len({record["run_id"] for record in records.values()}) == 3
    for name, record in records.items():
        assert record["display_name"] == f"sweep/{name}" and record["run_group"] == "sweep"
        config = record["config"]["update"]
        assert (
            config["init"]["name"] == name.removeprefix("init=")
            and config["overrides"]["init"] == config["init"]["name"]
        )

    # Five style layers and one content layer, each computed once by whichever job needed it first (two run at
    # once), then loaded by the others: 6 computed and 12 loaded among the three jobs.
    targets = [summary(sweep_dir / name)["targets"] for name in job_folders(sweep_dir)]
    assert sum(t["computed"] for t in targets) == 6 and sum(t["reused"] for t in targets) == 12
    assert all(t["computed"] + t["reused"] == 6 for t in targets)
    assert len(list((sweep_dir / ".targets").glob("*.pt"))) == 6
    # Two parallel jobs on two cores: one thread each.
    assert {summary(sweep_dir / name)["threads"] for name in job_folders(sweep_dir)} == {1}


@pytest.mark.slow
def test_a_failed_job_is_listed_the_sweep_goes_on_and_a_relaunch_reruns_only_it(tmp_path, weights, cli):
    sweep_dir = tmp_path / "sweep"
    first = cli("-m", "content=missing.jpg,astronaut", "logger=none", *FAST, f"hydra.sweep.dir={sweep_dir}")
    assert first.returncode == 2  # its one failure is a user's mistake
    assert (
        "2 jobs, 1 completed" in first.stderr
        and "content=missing.jpg: failed: missing.jpg: no such file" in first.stderr
    )
    assert summary(sweep_dir / "content=missing.jpg")["status"] == "failed"
    completed = sweep_dir / "content=astronaut"
    assert summary(completed)["status"] == "completed"
    final_before = (completed / "final.png").read_bytes()

    again = cli(str(sweep_dir), main=resume)
    assert again.returncode == 2
    assert f"skipped: {completed} holds a completed run" in again.stdout
    assert "(1 skipped as done before), 1 failed" in again.stderr
    assert job_folders(sweep_dir) == ["content=astronaut", "content=missing.jpg", "content=missing.jpg~attempt2"]
    assert (completed / "final.png").read_bytes() == final_before
    assert summary(sweep_dir / "content=missing.jpg")["status"] == "failed"  # the earlier attempt, kept


@pytest.mark.slow
def test_two_identical_sweeps_launched_together_run_each_job_once_with_its_measures_on_wandb(tmp_path, weights):
    sweep_dir = tmp_path / "twin"
    launch = [
        BIN / "styleexp",
        "study=gram_variants",
        "hydra.sweeper.params.style=checkers",
        "hydra.sweeper.params.gram='gram,centered'",
        "size=32",
        "steps=3",
        "measures.networks=[portilla_simoncelli]",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    twins = [subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [twin.communicate(timeout=300) for twin in twins]
    for twin, (stdout, stderr) in zip(twins, outputs):
        assert twin.returncode == 0, stderr
        assert "2 jobs, 2 completed" in stdout  # each waits for the jobs the other runs
        # A line per job, the record, at most a warning and a line saying what it waits for.
        assert len([line for line in (stdout + stderr).split("\n") if line.strip()]) <= 5, stdout + stderr
    jobs = job_folders(sweep_dir)
    assert len(jobs) == 2 and not any("~attempt" in job for job in jobs)
    assert sum(stdout.count(": done: ") for stdout, _ in outputs) == 2
    for job in jobs:
        saved = summary(sweep_dir / job)
        assert saved["status"] == "completed"
        steps = [line.split(",")[-1] for line in (sweep_dir / job / "metrics.csv").read_text().splitlines()[1:]]
        assert len(steps) == len(set(steps))  # no doubled rows
        assert len(list((sweep_dir / job / "wandb").glob("offline-run-*"))) == 1
        run = next(r["run"] for r in wandb_records(sweep_dir / job) if r["type"] == "run")
        assert (
            run["display_name"] == f"twin/{job}"
            and run["job_type"] == "sweep-job"
            and run["tags"][0] == "study:gram_variants"
            and "mode:synthesis" in run["tags"]
        )
        final = wandb_summary(sweep_dir / job)["summary"]
        assert (final["steps"], final["converged"]) == (saved["steps"], saved["converged"])
        assert saved["measures"]
        for key, value in saved["measures"].items():
            assert final[f"measure/{key}"] == pytest.approx(value), key


def test_a_sweep_exits_2_only_when_each_job_that_did_not_complete_was_a_users_mistake(tmp_path, capsys):
    done, mistake = {"status": "completed"}, {"status": "failed", "message": "x.jpg: no such file", "exit_code": 2}
    crashed = {"status": "failed", "message": "RuntimeError: boom", "exit_code": 1}
    for summaries, code in [
        ({"a": done, "b": mistake, "c": mistake}, 2),
        ({"a": mistake, "b": crashed}, 1),
        ({"a": mistake, "b": {"status": "failed", "message": "written before exit codes"}}, 1),
        ({"a": mistake, "b": None}, 1),  # a missing job is no mistake of the command line's
    ]:
        with pytest.raises(SystemExit) as exit_:
            outcome.sweep_record(tmp_path, summaries, skipped=0)
        assert exit_.value.code == code, summaries
    assert "b: failed: RuntimeError: boom" in capsys.readouterr().err


def test_a_job_without_folder_is_missing_in_the_sweep_record_and_the_report(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "multirun.yaml").write_text(
        yaml.safe_dump(
            {"hydra": {"sweeper": {"params": None}, "overrides": {"task": ["gram=gram,both", "size=32"], "hydra": []}}}
        )
    )
    done = sweep_dir / "gram=gram"
    (done / ".hydra").mkdir(parents=True)
    (done / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["gram=gram", "size=32"]))
    (done / "summary.json").write_text(json.dumps({"status": "completed", "mode": "transfer"}))
    record = SweepRecord()
    record.started = time.time() + 5  # a relaunch, after the completed job was written
    with pytest.raises(SystemExit) as exit_:
        record.on_multirun_end(
            OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "output_subdir": ".hydra"}})
        )
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "2 jobs, 1 completed (1 skipped as done before), 0 failed, 1 missing" in err
    assert f"gram=both: missing: no job folder (deleted?); styleexp-resume {sweep_dir} runs it again" in err
    runs, keys = load_runs(sweep_dir)
    assert {run.name: run.status for run in runs} == {"gram=gram": "completed", "gram=both": "missing"}
    assert keys == {"gram": ["gram", "both"]}


def test_a_study_whose_swept_keys_the_command_line_fixed_finds_its_job_in_the_record_and_the_report(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    study = {"params": {"gram": "gram,both", "seed": "0"}}  # as study=... sets them, then gram=gram on the command line
    (sweep_dir / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"sweeper": study, "overrides": {"task": ["gram=gram", "size=32"], "hydra": []}}})
    )
    assert naming_keys(sweep_dir) == naming_keys(sweep_dir, OmegaConf.create(study["params"])) == {"gram", "seed"}
    done = sweep_dir / "gram=gram,seed=0"  # the job's folder, named by the study's keys
    (done / ".hydra").mkdir(parents=True)
    (done / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["gram=gram", "seed=0", "size=32"]))
    (done / "summary.json").write_text(json.dumps({"status": "completed", "mode": "synthesis"}))
    record = SweepRecord()
    record.started = time.time() + 5
    record.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "output_subdir": ".hydra"}}))
    assert "1 jobs, 1 completed (1 skipped as done before), 0 failed" in capsys.readouterr().out
    runs, _ = load_runs(sweep_dir)
    assert {run.name: run.status for run in runs} == {"gram=gram,seed=0": "completed"}


def test_resume_refuses_overrides_that_change_what_the_jobs_compute(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"task": ["gram=gram,both"], "hydra": []}}})
    )
    with pytest.raises(SystemExit) as exit_:
        resume([str(sweep_dir), "steps=10", "threads=1"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"styleexp: error: steps=10 would change the jobs of {sweep_dir}, and its report would mix two configurations; "
        f"run the changed sweep into a new folder with: styleexp-reproduce {sweep_dir} steps=10 threads=1"
    ]
    check_resumable(sweep_dir, ["threads=1", "logger=none", "hydra.launcher.n_jobs=2", "hydra/launcher=joblib"])


@pytest.mark.slow
def test_a_sweep_whose_weights_cannot_be_had_stops_at_its_first_job_with_one_line(tmp_path, cli):
    sweep_dir = tmp_path / "sweep"
    done = cli(
        "-m",
        "seed=0,1,2",
        "network.download=false",
        f"weights_dir={tmp_path / 'empty'}",
        "logger=none",
        *FAST,
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        f"styleexp: error: vgg19 caffe weights not found: expected vgg19_imagenet_caffe.pth in {tmp_path / 'empty'} "
        "and downloads are switched off; copy the file there, or point STYLEEXP_WEIGHTS_DIR (or weights_dir=) "
        "at a directory that holds it"
    ]
    assert job_folders(sweep_dir) == ["seed=0"]


@pytest.mark.slow
def test_reproduce_gives_the_same_image_a_changed_choice_the_step_of_an_interruption_and_refuses_a_changed_config(
    tmp_path, weights, cli
):
    original = tmp_path / "original"
    assert cli("logger=none", *FAST, "steps=10", "seed=5", "image_every=5", f"hydra.run.dir={original}").returncode == 0
    again = tmp_path / "again"
    done = cli(str(original), f"hydra.run.dir={again}", main=reproduce)
    assert done.returncode == 0, done.stderr
    assert "largest pixel difference 0/255" in done.stdout
    assert torch.equal(load_image(original / "final.png"), load_image(again / "final.png"))
    assert summary(again)["seed"] == 5 and summary(again)["config_sha256"] == summary(original)["config_sha256"]

    changed = tmp_path / "changed"
    done = cli(str(original), "gram=both", f"hydra.run.dir={changed}", main=reproduce)
    assert done.returncode == 0, done.stderr
    assert summary(changed)["choices"]["gram"] == "both" and summary(changed)["seed"] == 5

    # As if stopped by Ctrl-C at step 5: its reproduction runs 5 steps and compares there.
    stopped = tmp_path / "stopped"
    shutil.copytree(original, stopped)
    facts = summary(original)
    (stopped / "summary.json").write_text(
        json.dumps({**facts, "status": "interrupted", "steps": 5, "scales": [{**facts["scales"][0], "steps": 5}]})
    )
    shutil.copy(original / "images" / "step_000005.png", stopped / "final.png")
    resumed = tmp_path / "resumed"
    done = cli(str(stopped), f"hydra.run.dir={resumed}", main=reproduce)
    assert done.returncode == 0, done.stderr
    assert "the original run was interrupted at step 5 of 10; reproduced up to that step (steps=5)" in done.stdout
    assert "largest pixel difference 0/255" in done.stdout and summary(resumed)["steps"] == 5

    # As if conf/ had changed since the run: refused before anything runs, naming the key.
    (stopped / "summary.json").write_text(json.dumps({**facts, "config_sha256": "0" * 64}))
    (stopped / ".hydra" / "config.yaml").write_text(
        (stopped / ".hydra" / "config.yaml").read_text().replace("seed: 5", "seed: 9")
    )
    for folder, line in [
        (
            stopped,
            f"styleexp: error: the config under conf/ has changed since {stopped} was made (seed); "
            "check out the commit in its summary.json (versions.styleexp_commit), or add overrides to run it changed",
        ),
        (
            tmp_path,
            f"styleexp: error: {tmp_path} is not a run folder: it has no .hydra/overrides.yaml; give the folder of a "
            "finished run",
        ),
    ]:
        refused = cli(str(folder), main=reproduce)
        assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [line]


def test_job_names_read_as_the_swept_values_and_paths_never_nest_folders():
    assert job_name(["gram=centered", "seed=1", "size=64"], swept={"gram", "seed"}) == "gram=centered,seed=1"
    assert job_name([]) == "defaults"
    a, b = job_name(["content=/photos/a/cat.jpg"]), job_name(["content=/photos/b/cat.jpg"])
    assert a.startswith("content=cat.jpg-") and "/" not in a and a != b
    assert len(job_name([f"style_layers.layers=[{','.join(['relu1_1'] * 40)}]"])) < 140
    assert job_name(["content='/photos/a/scream.jpg'"]).startswith("content=scream.jpg-")


def compose_job(sweep_dir: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    with read_write(cfg.hydra):
        cfg.hydra.sweep.dir = str(sweep_dir)
    return cfg


def test_a_job_claims_a_new_folder_and_reuses_one_only_for_a_completed_run_of_the_same_config(tmp_path):
    cfg = compose_job(tmp_path, "gram=both")
    identity = config_identity(cfg)
    assert job_dir(cfg) == "gram=both"
    folder = tmp_path / "gram=both"
    assert json.loads((folder / ".claim").read_text())["config_sha256"] == identity
    release(folder)
    (folder / "summary.json").write_text(json.dumps({"status": "failed", "config_sha256": identity}))
    assert job_dir(cfg) == "gram=both~attempt2"
    release(tmp_path / "gram=both~attempt2")
    (tmp_path / "gram=both~attempt2" / "summary.json").write_text(
        json.dumps({"status": "completed", "config_sha256": identity})
    )
    assert completed_identity(tmp_path / "gram=both~attempt2") == identity
    assert job_dir(cfg) == "gram=both~attempt2"
    assert job_dir(compose_job(tmp_path, "gram=both", "steps=7")).startswith("gram=both,steps=7")


def test_a_job_another_process_is_running_goes_to_a_scratch_folder_and_skips(tmp_path):
    cfg = compose_job(tmp_path, "gram=both")
    folder = tmp_path / "gram=both"
    folder.mkdir()
    (folder / ".claim").write_text(json.dumps({"config_sha256": config_identity(cfg)}))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder / ".claim")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        scratch = Path(job_dir(cfg))
        assert scratch.is_absolute() and not scratch.is_relative_to(tmp_path)
        assert running_elsewhere(scratch) == folder and not scratch.exists()
        assert job_dir(compose_job(tmp_path, "gram=both", "seed=3")).startswith(
            "gram=both,seed=3"
        )  # other config: its own folder
    finally:
        holder.kill()
        holder.wait()
    assert job_dir(cfg) == "gram=both~attempt2"  # the holder died without completing: a new attempt


HOLD = (
    "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); "
    "print('held', flush=True); time.sleep(60)"
)


def test_config_identity_follows_what_is_computed_not_where_it_is_logged():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        base = config_identity(compose("config"))
        assert config_identity(compose("config", overrides=["logger=none", "threads=1"])) == base
        assert config_identity(compose("config", overrides=["seed=1"])) != base
        assert config_identity(compose("config", overrides=["style_layers=all_relu"])) != base


def test_a_run_saved_before_the_write_up_switches_keeps_its_identity_and_a_switch_changes_it():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        today = compose("config", overrides=["logger=none"])
        switched = compose("config", overrides=["logger=none", "renormalise=running", "network.normalisation=gatys"])
    saved = OmegaConf.to_container(today, resolve=True)  # as a run saved before the keys existed holds it
    for *parents, key in LATER_KEYS:
        section = saved
        for parent in parents:
            section = section[parent]
        del section[key]
    assert config_identity(OmegaConf.create(saved)) == config_identity(today)
    assert config_identity(switched) != config_identity(today)


def test_the_slurm_launcher_config_composes_with_a_partition():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.array_parallelism) == ("gpu", 1, 64)


def test_the_batched_slurm_launcher_gives_submitit_the_resources_of_its_config():
    from hydra_plugins.styleexp_batched.batched_launcher import executor_parameters

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=batched_slurm", "hydra.launcher.submitit.partition=gpu", "hydra.sweep.dir=/s"],
            return_hydra_config=True,
        )
    made, parameters = executor_parameters(OmegaConf.to_container(cfg.hydra.launcher.submitit, resolve=True))
    assert made == {"cluster": "slurm", "folder": "/s/.submitit/%j", "slurm_max_num_timeout": 3}
    assert parameters["gpus_per_node"] == 1 and parameters["timeout_min"] == 60  # submitit's own names
    assert parameters["slurm_partition"] == "gpu" and parameters["slurm_signal_delay_s"] == 90  # SLURM's


def test_the_wandb_sweep_file_passes_values_that_compose_as_overrides():
    sweep = yaml.safe_load((Path(EXPERIMENTS_DIR) / "wandb_sweep.yaml").read_text())
    assert "${args_no_hyphens}" in sweep["command"]
    assert sweep["metric"]["name"].startswith("measure/style/") and sweep["metric"]["goal"] == "minimize"
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for key, spec in sweep["parameters"].items():
            for value in spec.get("values", [spec.get("value")]):
                cfg = compose("config", overrides=[f"{key}={value}"], return_hydra_config=True)
                assert str(value) in (str(OmegaConf.select(cfg, key)), cfg.hydra.runtime.choices.get(key)), (key, value)
