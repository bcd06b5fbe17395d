"""What users of lightning-hydra-template type first works, or answers in one line that names the fix:
``experiment=``, ``trainer=gpu``, ``trainer.*``, ``callbacks.<name>``, ``--version``; every launcher names
job folders by the swept keys; one warning per sweep; a quiet console and a full ``styleexp.log``."""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf, open_dict

from styleexp import __version__, devices, logs, trainer_args
from styleexp.callbacks import ImageSaver, configured
from styleexp.cli import aliased
from styleexp.errors import UserError
from styleexp.tracking import Heartbeat, Progress

from .conftest import compose_config, job_folders, require_weights, styleexp, summary

TINY = ["size=32", "steps=2", "logger=none", "measures.networks=[]"]
# Libraries whose INFO lines reached the console (Lightning's own handler when imported before logging is set up).
LIBRARIES = ("matplotlib.font_manager", "optuna.storages", "pytorch_lightning.utilities.rank_zero", "lightning_fabric")
# What a scale gives the configurable callbacks (callbacks.py).
RUNTIME = {"run_dirs": [Path("run")], "loggers": [[]], "size": 32, "offsets": [0], "label": "gram=gram"}


class Counting(pl.Callback):
    """A callback a user adds from the command line: counts the steps it sees, and takes the run's folders by name."""

    seen: list[tuple[list[Path], int]] = []

    def __init__(self, run_dirs: list[Path], every: int = 1) -> None:
        self.run_dirs, self.every, self.steps = run_dirs, every, 0

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        self.steps += 1

    def on_train_end(self, trainer: pl.Trainer, *args: object) -> None:
        Counting.seen.append((self.run_dirs, self.steps))


def _one_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    return lines[0]


# experiment= -------------------------------------------------------------------------------------------------------


def test_experiment_is_another_name_for_study():
    assert aliased("experiment=gram_variants") == "study=gram_variants"
    assert aliased("+experiment=gram_variants") == "+study=gram_variants"
    assert aliased("~experiment") == "~study"
    assert aliased("experiments_dir=x") == "experiments_dir=x" and aliased("-m") == "-m"


def test_experiment_composes_exactly_as_study_a_sweep(cli):
    def printed(*arguments: str) -> str:
        done = cli(*arguments, "--cfg", "all")
        assert done.returncode == 0, done.stderr
        return re.sub(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d+", "<now>", done.stdout)  # the sweep folder's time stamp

    as_study = printed("study=gram_variants", "size=32", "steps=2", "style=checkers")
    assert printed("experiment=gram_variants", "size=32", "steps=2", "style=checkers") == as_study
    assert "mode: MULTIRUN" in as_study and "gram: gram,centered,both" in as_study


@pytest.mark.slow
def test_experiment_runs_the_study_s_sweep(cli, tmp_path):
    require_weights("vgg16", "caffe")
    done = cli("experiment=gram_variants", *TINY, "style=checkers", f"hydra.sweep.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    assert job_folders(tmp_path) == ["gram=both", "gram=centered", "gram=gram"]
    assert all(summary(tmp_path / name)["choices"]["study"] == "gram_variants" for name in job_folders(tmp_path))


# --version ---------------------------------------------------------------------------------------------------------


def test_version_names_styleexp_and_hydra(cli):
    done = cli("--version")
    assert done.returncode == 0 and done.stdout == f"styleexp {__version__} (hydra-core {hydra.__version__})\n"


# trainer=gpu -------------------------------------------------------------------------------------------------------


def test_trainer_gpu_selects_the_gpu(monkeypatch):
    cfg = compose_config("trainer=gpu")
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.devices == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert devices.device_of(cfg) == torch.device("cuda", 0)


def test_trainer_gpu_without_a_gpu_is_one_line_and_exit_2(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError):
        devices.device_of(compose_config("trainer=gpu"))
    line = _one_line(cli("trainer=gpu", *TINY, f"hydra.run.dir={tmp_path / 'run'}"))
    assert line == (
        "styleexp: error: there is no GPU here for trainer=gpu (trainer.accelerator=gpu: torch finds no CUDA device); "
        "use trainer=cpu, or trainer=default (a GPU when there is one, else the CPU)"
    )
    assert summary(tmp_path / "run")["status"] == "failed"


# trainer.* ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, line",
    [
        (
            "+trainer.enable_progress_bar=false",
            "trainer.enable_progress_bar is set by styleexp; use callbacks.progress (~callbacks.progress turns the "
            "progress bar off)",
        ),
        (
            "trainer.precision=bf16-mixed",
            "trainer.precision is set by styleexp; use speed.precision (auto, fp32, tf32 or bf16; bf16 is Lightning's "
            "bf16-mixed)",
        ),
        (
            "+trainer.precision=bf16-mixed",
            "trainer.precision is set by styleexp; use speed.precision (auto, fp32, tf32 or bf16; bf16 is Lightning's "
            "bf16-mixed)",
        ),
        (
            "+trainer.max_steps=5",
            "trainer.max_steps is set by styleexp; use steps (steps=300, or one number per scale)",
        ),
        (
            "+trainer.logger=false",
            "trainer.logger is set by styleexp; use the logger group (logger=wandb, csv or none; "
            "logger.NAME=null drops one)",
        ),
        (
            "+trainer.callbacks=[]",
            "trainer.callbacks is set by styleexp; use callbacks.NAME (+callbacks.NAME._target_=CLASS adds one, "
            "~callbacks.NAME drops one)",
        ),
        (
            "+trainer.max_step=5",
            "trainer.max_step is not an argument of Lightning's Trainer; did you mean trainer.max_steps? styleexp sets "
            "that one: use steps (steps=300, or one number per scale)",
        ),
        (
            "+trainer.gradient_clip=1",
            "trainer.gradient_clip is not an argument of Lightning's Trainer; did you mean trainer.gradient_clip_val?",
        ),
        ("trainer.max_time=00:00:10:00", "trainer.max_time is not in the config; add it with +trainer.max_time=VALUE"),
        (
            "+trainer.accelerator=cpu",
            "trainer.accelerator is already in the config; set it without the +: trainer.accelerator=VALUE",
        ),  # fmt: skip
    ],
)
def test_a_trainer_key_styleexp_sets_or_lightning_lacks_is_one_line_and_exit_2(cli, tmp_path, override, line):
    assert _one_line(cli(override, *TINY, f"hydra.run.dir={tmp_path / 'run'}")) == f"styleexp: error: {line}"


def test_a_trainer_argument_lightning_takes_reaches_the_trainer():
    cfg = compose_config("+trainer.gradient_clip_val=0.5", "trainer=cpu")
    trainer_args.check(cfg)
    trainer = trainer_args.make(cfg, 7, torch.device("cpu"), [])
    assert trainer.gradient_clip_val == 0.5 and trainer.max_steps == 7 and trainer.progress_bar_callback is None
    with_bar = trainer_args.make(cfg, 7, torch.device("cpu"), [Progress(1, 32)])
    assert isinstance(with_bar.progress_bar_callback, Progress)


def test_a_trainer_value_lightning_refuses_is_a_user_error():
    cfg = compose_config("trainer.accelerator=mps")
    with pytest.raises(UserError, match="Lightning refuses this run's trainer or callbacks: `MPSAccelerator`"):
        trainer_args.make(cfg, 3, torch.device("cpu"), [])


# callbacks.<name> --------------------------------------------------------------------------------------------------


def test_callbacks_are_a_named_dict_of_targets():
    nodes = OmegaConf.to_container(compose_config().callbacks, resolve=True)
    assert nodes == {
        "images": {"_target_": "styleexp.callbacks.ImageSaver", "every": 25},
        "progress": {"_target_": "styleexp.tracking.Progress", "every": 10},
        "heartbeat": {"_target_": "styleexp.tracking.Heartbeat", "every_s": 30},
    }
    assert compose_config("callbacks=none").callbacks == {}


def test_a_progress_bar_is_for_a_single_run_and_a_heartbeat_for_a_sweep_job():
    def kinds(*overrides: str, console: bool) -> list[type]:
        return [type(made) for made in configured(compose_config(*overrides).callbacks, console, **RUNTIME)]

    assert kinds(console=True) == [ImageSaver, Progress]
    assert kinds(console=False) == [ImageSaver, Heartbeat]
    assert kinds("progress_every_s=null", console=False) == [ImageSaver]
    assert kinds("~callbacks.images", "callbacks.progress=null", console=True) == []
    saver = configured(compose_config("image_every=5").callbacks, True, **RUNTIME)[0]
    assert (saver.run_dirs, saver.every, saver.size, saver.offsets) == ([Path("run")], 5, 32, [0])


@pytest.mark.parametrize(
    "override, line",
    [
        (
            "+callbacks.mine._target_=lightning.pytorch.callbacks.LearningRateMonitor",
            "callbacks.mine._target_=lightning.pytorch.callbacks.LearningRateMonitor cannot be imported (No module "
            "named 'lightning'); styleexp runs on pytorch_lightning: pytorch_lightning.callbacks.LearningRateMonitor",
        ),
        (
            "+callbacks.mine.every=3",
            "callbacks.mine has no _target_; name a Lightning callback class, e.g. "
            "+callbacks.mine._target_=pytorch_lightning.callbacks.Timer",
        ),
        (
            "+callbacks.mine._target_=pytorch_lightning.Trainer",
            "callbacks.mine._target_=pytorch_lightning.Trainer is not a Lightning callback "
            "(pytorch_lightning.Callback)",
        ),
    ],
)
def test_a_callback_that_names_no_lightning_callback_is_refused_in_one_line(override, line):
    if "lightning.pytorch" in override and _importable("lightning"):
        pytest.skip("the lightning package is installed here")
    with pytest.raises(UserError) as refused:
        trainer_args.check(compose_config(override))
    assert str(refused.value) == line


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def test_a_callback_added_on_the_command_line_runs_and_the_run_folder_log_holds_the_console(cli, tmp_path):
    require_weights("vgg19", "caffe")
    Counting.seen.clear()
    run_dir = tmp_path / "run"
    done = cli(*TINY, "+callbacks.count._target_=tests.test_habits.Counting", "~callbacks.images",
               f"hydra.run.dir={run_dir}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Counting.seen == [([run_dir], 2)]  # given the run's folders by name, every step seen
    assert not (run_dir / "images").exists()  # ~callbacks.images: no intermediate images
    assert (run_dir / "final.png").is_file() and summary(run_dir)["steps"] == 2  # the run's own callbacks still there
    log = (run_dir / logs.LOG_FILE).read_text()
    for line in [*done.stdout.splitlines(), *done.stderr.splitlines()]:
        if line.startswith("styleexp:"):
            assert "[styleexp.console]" in log and line in log, line
    assert "[styleexp.trainer_args][DEBUG] - trainer:" in log and "'Counting'" in log
    assert "GPU available" in log  # Lightning's INFO lines: in the file, not on the console
    console = done.stdout + done.stderr
    assert "GPU available" not in console and "[INFO]" not in console and "[DEBUG]" not in console


# the console and styleexp.log --------------------------------------------------------------------------------------


@contextmanager
def job_logging(folder: Path) -> Iterator[Path]:
    """The job logging of the real config, applied for a while with its file in ``folder``; that file."""
    cfg = compose_config(hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(folder)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logging.config.dictConfig(OmegaConf.to_container(cfg.hydra.job_logging, resolve=True))
    try:
        yield folder / logs.LOG_FILE
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_libraries_info_lines_stay_off_the_console_and_go_to_styleexp_log(tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    before = optuna.logging.get_verbosity()
    sweep = OmegaConf.create({"hydra": {"sweeper": {"_target_": "hydra_plugins.hydra_optuna_sweeper.OptunaSweeper"}}})
    logs.QuietOptuna().on_multirun_start(sweep)
    try:
        with job_logging(tmp_path) as log_file:
            for name in LIBRARIES:
                logging.getLogger(name).info(f"{name} says hello")
            logging.getLogger("matplotlib").warning("a library's warning")
            logging.getLogger("styleexp.build").debug("debug detail")
    finally:
        optuna.logging.enable_default_handler()
        optuna.logging.disable_propagation()
        optuna.logging.set_verbosity(before)
    console = capsys.readouterr()
    assert "hello" not in console.out + console.err and "debug detail" not in console.out
    assert "a library's warning" in console.out, console.err
    written = log_file.read_text()
    assert all(f"{name} says hello" in written for name in LIBRARIES)
    assert "[styleexp.build][DEBUG] - debug detail" in written


def test_the_console_copy_keeps_what_a_redrawn_line_last_showed(tmp_path, capsys):
    with job_logging(tmp_path) as log_file, logs.recorded():
        print("styleexp: first")
        print("\r12 px:  50%\r12 px: 100%", end="")
        print()
        print("styleexp: error: bad", file=sys.stderr)
    written = log_file.read_text().splitlines()
    assert [line.split(" - ", 1)[1] for line in written] == ["styleexp: first", "12 px: 100%", "styleexp: error: bad"]
    assert "[WARNING]" in written[-1]


def test_a_warning_is_said_once_per_sweep_and_every_time_in_single_runs(tmp_path, capsys):
    for _ in range(2):
        logs.warn_once("too few positions", tmp_path)
    assert capsys.readouterr().err == "styleexp: warning: too few positions\n"
    for _ in range(2):
        logs.warn_once("too few positions", None)
    assert capsys.readouterr().err.count("styleexp: warning: too few positions") == 2


# launchers ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local", "slurm", "batched", "batched_slurm"])
def test_every_launcher_names_job_folders_by_the_job_dir_resolver(launcher):
    cfg = compose_config(f"hydra/launcher={launcher}", hydra=True)
    assert OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"] == "${job_dir:}"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_a_sweep_names_its_job_folders_by_the_swept_keys_and_warns_once(tmp_path, launcher):
    require_weights("vgg19", "caffe")
    sweep_dir = tmp_path / "sweep"
    parallel = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    done = styleexp("-m", f"hydra/launcher={launcher}", *TINY, "steps=1", "gram=gram,centered", *parallel,
                    f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert job_folders(sweep_dir) == ["gram=centered", "gram=gram"]
    said = done.stderr + "".join(path.read_text() for path in sweep_dir.glob(".submitit/*/*.err"))
    assert said.count("styleexp: warning: at size=32") == 1
    assert "[HYDRA]" not in done.stdout and "INFO" not in done.stdout
