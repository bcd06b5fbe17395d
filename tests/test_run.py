"""Whole runs on the CPU with real weights: in-process through the composed Hydra config, or as the CLI."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import pytest
import torch

from styleexp import signals
from styleexp.errors import UserError
from styleexp.images import load_image

from .conftest import require_weights, run_in_process, shared_image, summary, wandb_records, wandb_summary

# Measures have tests of their own (test_objective.py); here they would only cost time.
FAST = ["logger=none", "size=32", "steps=3", "measures.networks=[]"]


@pytest.fixture(autouse=True)
def _weights() -> None:
    require_weights("vgg16", "caffe")
    require_weights("vgg19", "caffe")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / torch.mean((a - b) ** 2).item())


def _styleexp_process(*args: str) -> subprocess.Popen:
    """The CLI in the background. Its output is bytes: text mode would turn the progress bar's "\r" into new lines."""
    # A suite started in the background by a non-interactive shell ignores SIGINT, and a child would inherit that.
    return subprocess.Popen(
        [sys.executable, "-m", "styleexp", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.slow
def test_content_reconstruction_from_noise_at_relu1_1_is_nearly_perfect(tmp_path):
    photo = shared_image("tubingen.jpg")
    result = run_in_process(
        tmp_path / "run",
        "logger=none",
        f"content={photo}",
        "style=null",
        "network=vgg16",
        "content_layer=relu1_1",
        "size=64",
        "steps=300",
    )
    assert result.status == "completed"
    quality = psnr(load_image(tmp_path / "run" / "final.png"), load_image(photo, 64))
    print(f"reconstruction PSNR at relu1_1, 64 px: {quality:.1f} dB")
    assert quality > 30
    assert summary(tmp_path / "run")["mode"] == "reconstruction"


@pytest.mark.slow
def test_pure_style_synthesis_cuts_the_style_loss_by_95_percent(tmp_path):
    result = run_in_process(
        tmp_path / "run",
        "logger=none",
        "content=null",
        f"style={shared_image('starry_night.jpg')}",
        "network=vgg16",
        "size=64",
        "steps=60",
    )
    facts = summary(tmp_path / "run")
    assert result.status == "completed" and facts["mode"] == "synthesis"
    assert facts["losses"]["loss/style"] < 0.05 * facts["initial_losses"]["loss/style"]
    assert facts["content_layer"] is None and facts["losses"]["loss/content"] == 0


@pytest.mark.slow
def test_full_transfer_lowers_both_losses_and_differs_from_both_inputs(tmp_path):
    content, style = shared_image("tubingen.jpg"), shared_image("starry_night.jpg")
    result = run_in_process(
        tmp_path / "run", "logger=none", f"content={content}", f"style={style}", "size=64", "steps=40"
    )
    facts = summary(tmp_path / "run")
    assert result.status == "completed" and facts["mode"] == "transfer"
    for key in ("loss/content", "loss/style"):
        assert facts["losses"][key] < 0.5 * facts["initial_losses"][key], key
    output = load_image(tmp_path / "run" / "final.png")
    assert (output - load_image(tmp_path / "run" / "content.png")).abs().mean() > 0.03
    style_resized = torch.nn.functional.interpolate(
        load_image(style)[None], size=output.shape[1:], antialias=True, mode="bilinear"
    )[0]
    assert (output - style_resized).abs().mean() > 0.03


@pytest.mark.parametrize(
    "choices",
    [
        # Every option of every group, in three runs.
        ["gram=centered", "pooling=avg", "init=content", "style_layers=all_conv"],
        ["gram=both", "optim=adam", "init=style", "network=vgg16", "style_layers=gatys_conv", "trainer=cpu"],
        ["gram=mean_std", "style_layers=gatys", "init=image", "init.path=checkers", "colors=luminance"],
    ],
    ids=lambda choices: " ".join(choices),
)
def test_every_choice_runs(tmp_path, choices):
    result = run_in_process(tmp_path / "run", *FAST, *choices)
    assert result.status == "completed" and result.exit_code == 0
    facts = summary(tmp_path / "run")
    for key, value in (choice.split("=") for choice in choices):
        assert facts["choices"].get(key, value) == value
    assert facts["steps"] == 3 and all(math.isfinite(v) for v in facts["losses"].values())
    assert load_image(tmp_path / "run" / "final.png").shape == (3, 32, 32)


def test_first_and_only_pick_style_layers_out_of_a_set(tmp_path):
    run_in_process(tmp_path / "first", *FAST, "network=vgg16", "style_layers=all_relu", "style_layers.first=3")
    assert summary(tmp_path / "first")["style_layers"] == ["relu1_1", "relu1_2", "relu2_1"]
    run_in_process(tmp_path / "only", *FAST, "network=vgg16", "style_layers=all_relu", "style_layers.only=13")
    assert summary(tmp_path / "only")["style_layers"] == ["relu5_3"]
    run_in_process(tmp_path / "numbers", *FAST, "network=vgg19", "style_layers.layers=[1,3,5,9,13]", "content_layer=10")
    facts = summary(tmp_path / "numbers")
    assert facts["style_layers"] == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    assert facts["content_layer"] == "conv4_2"


def test_same_seed_same_image_other_seed_other_image(tmp_path):
    images = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        run_in_process(tmp_path / name, *FAST, f"seed={seed}")
        images[name] = load_image(tmp_path / name / "final.png")
    assert torch.equal(images["a"], images["b"])
    assert not torch.equal(images["a"], images["c"])


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_finite_image(tmp_path):
    # A weight that is finite but overflows float32 once it multiplies the style loss.
    result = run_in_process(tmp_path / "run", *FAST, "loss.style=1e38", "optim=adam")
    assert result.status == "nan" and result.exit_code == 1 and "NaN or infinite" in result.message
    assert summary(tmp_path / "run")["status"] == "nan"
    assert torch.isfinite(load_image(tmp_path / "run" / "final.png")).all()


def test_a_non_finite_loss_ends_its_run_at_once_without_a_line_search_of_passes(tmp_path):
    # Infinite from the first evaluation: the L-BFGS step ends after that one pass, and the run at that step,
    # not at the next logging step (log_every=10) after 26 passes a step.
    result = run_in_process(tmp_path / "run", *FAST, "loss.style=1e39", "optim=lbfgs", "steps=20", "log_every=10")
    facts = summary(tmp_path / "run")
    assert result.status == "nan" and "by step 1" in result.message
    assert facts["steps"] == 1 and facts["evaluations"] == 1


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["content=nowhere/missing.jpg"], "missing.jpg: no such file"),
        (["style_layers.layers=[relu9_9]"], "valid layers: conv1_1"),
        (["network=vgg16", "content_layer=relu5_4"], "vgg16 has no layer 'relu5_4'"),
        (["size=8"], "too small for relu5_1"),
        (["content=null", "style=null"], "neither content nor style"),
        (["init=content", "content=null"], "init=content needs a content image"),
        (["style_layers.first=6"], "style_layers.first=6 is out of range"),
        (["network.weights=/no/such/weights.pth"], "no such file"),
        (["speed.precision=tf32", "trainer=cpu"], "speed.precision=tf32 needs an NVIDIA GPU"),
        (["style=[checkers,halves]", "style_blend=[1,1,1]"], "has 3 weights for 2 style images"),
        (["style=[checkers,halves]", "style_blend=[1,-1]"], "every weight must be a finite number of at least 0"),
        (["style=[checkers,halves]", "style_blend=[0,0]"], "gives every style image 0 weight"),
        (["style_scale=0.25"], "raise style_scale="),
        (["init=image", "init.path=nowhere/start.png"], "start.png: no such file"),
    ],
)
def test_bad_input_fails_the_run_with_a_clear_user_error_on_record(tmp_path, overrides, expected):
    result = run_in_process(tmp_path / "run", *FAST, *overrides)
    assert result.status == "failed" and result.exit_code == 2 and isinstance(result.error, UserError)
    assert expected in str(result.error)
    facts = summary(tmp_path / "run")
    assert facts["status"] == "failed" and facts["message"] == str(result.error)


@pytest.mark.slow
def test_cli_run_leaves_every_file_and_an_offline_wandb_run(tmp_path):
    run_dir = tmp_path / "run"
    done = _styleexp_process("size=48", "steps=4", "image_every=2", "log_every=1", f"hydra.run.dir={run_dir}")
    printed = []
    for line in done.stdout:
        printed.append(line.decode())
        if printed[-1].startswith("styleexp: done:"):
            break
    done.send_signal(signal.SIGINT)  # while W&B and Python shut down: the run is on record as completed, so exit 0
    done.send_signal(signal.SIGTERM)
    stdout, stderr = (output.decode() for output in done.communicate(timeout=120))
    assert done.returncode == 0, stderr
    # Quiet: its folder, the positions warning of a 48 px image, one progress line redrawn in place, its result.
    console = "".join(printed) + stdout + stderr
    lines = [line for line in console.split("\n") if line.strip()]  # a terminal's lines: "\r" redraws one in place
    assert len(lines) <= 4 and "wandb" not in console and "Epoch" not in console, console
    assert printed[-1].startswith(f"styleexp: done: {run_dir / 'final.png'} (4 steps in ")
    for name in (
        "final.png",
        "content.png",
        "style.png",
        "images/step_000002.png",
        "images/step_000004.png",
        "metrics.csv",
        "summary.json",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
    ):
        assert (run_dir / name).is_file(), name
    assert max(load_image(run_dir / "final.png").shape[1:]) == 48
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "loss/total", "loss/content", "loss/style/relu3_1", "loss/tv"} <= set(header)
    facts = summary(run_dir)
    assert facts["status"] == "completed" and facts["steps"] == 4 and facts["evaluations"] >= 4
    assert facts["weights"]["sha256"] and facts["versions"]["torch"] and facts["seconds_per_step"] > 0
    # The command's start-up: a new process imports torch and Lightning, reads the weights and computes targets.
    assert 1 < facts["process_seconds_at_first_step"] < facts["wall_time_s"] + 60

    wandb_run = next((run_dir / "wandb").glob("offline-run-*"))
    record = wandb_summary(run_dir)
    # Named by its choices and overrides, unique by its folder's time stamp.
    assert (
        record["name"]
        == f"vgg19-max-gram-default-lbfgs-noise size=48,steps=4,image_every=2,log_every=1 @ {run_dir.name}"
    )
    assert record["config"]["choices"]["gram"] == "gram" and record["config"]["size"] == 48
    # Only what determines the result: no log folders, thread counts or weights folders of this machine.
    assert not {"logger", "hydra", "threads", "weights_dir"} & set(record["config"])
    assert record["summary"]["status"] == "completed"
    assert record["summary"]["loss/style/relu3_1"] > 0
    assert {"images/output", "images/final", "images/content", "images/style"} <= set(record["summary"])
    assert record["summary"]["measure/style/gram"] == pytest.approx(facts["measures"]["style/gram"])
    assert list((wandb_run / "files" / "media" / "images").rglob("*.png"))

    records = wandb_records(run_dir)
    run = next(r["run"] for r in records if r["type"] == "run")
    assert run["job_type"] == "run" and "mode:transfer" in run["tags"]
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert not any("epoch" in row for row in history)
    # Losses and images of one step share its step value.
    loss_steps = {row["trainer/global_step"] for row in history if "loss/total" in row}
    image_steps = {row["trainer/global_step"] for row in history if "images/output._type" in row}
    assert image_steps == {2, 4} and image_steps <= loss_steps
    artifact = next(r["artifact"] for r in records if r["type"] == "artifact")
    assert artifact["type"] == "run-folder"
    assert {item["path"] for item in artifact["manifest"]["contents"]} == {
        "final.png", "content.png", "style.png", ".hydra/config.yaml", ".hydra/overrides.yaml", "summary.json",
        "metrics.csv",
    }  # fmt: skip
    # Staged inside the run folder, where `wandb sync` finds it later.
    assert all(item["local_path"].startswith(str(run_dir)) for item in artifact["manifest"]["contents"])


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, cli):
    # Config mistakes stop while composing.
    for arguments, line in [
        (["sise=3"], "styleexp: error: sise is not a setting; did you mean size? (styleexp --cfg job lists them all)"),
        (
            ["gram=gramm"],
            "styleexp: error: gram=gramm is not an option of gram; did you mean gram=gram? "
            "(options: both, centered, cmd, gaussian_w2, gram, histogram, mean_std, mmd_gaussian, mmd_linear, "
            "mmd_poly, mrf, sliced_w)",
        ),
        (
            ["size=many"],
            "styleexp: error: Error merging override size=many: Value 'many' of type 'str' could not be converted "
            "to Integer",
        ),
    ]:
        done = cli(*arguments, f"hydra.run.dir={tmp_path / 'never'}")
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "never").exists()
    huge = cli("size=100000", "steps=3", "logger=none", f"hydra.run.dir={tmp_path / 'huge'}")
    assert huge.returncode == 2 and len(huge.stderr.strip().splitlines()) == 1
    assert "size=100000 needs about" in huge.stderr and "or less fits" in huge.stderr
    assert summary(tmp_path / "huge")["status"] == "failed"


def test_cli_never_writes_into_an_existing_run_folder(tmp_path, cli):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "final.png").write_bytes(b"earlier result")
    done = cli("logger=none", "size=32", "steps=2", f"hydra.run.dir={run_dir}")
    assert done.returncode == 2 and "already holds a run" in done.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["final.png"]
    assert (run_dir / "final.png").read_bytes() == b"earlier result"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_imports_waits_for_them_to_finish(signum):
    # An interrupt inside an import leaves modules half made; it is raised once the deferred block is done.
    finished, before = [], {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(KeyboardInterrupt):
        with signals.deferred():
            signal.raise_signal(signum)
            finished.append(True)
    assert finished == [True]
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.slow
def test_ctrl_c_and_sigterm_stop_a_run_cleanly_whenever_they_come(tmp_path):
    # Three processes at once: two runs stopped at work (Ctrl-C, SIGTERM), one stopped while starting.
    at_work = {
        signum: _styleexp_process(
            "logger=none",
            "size=64",
            "steps=100000",
            "stop.rtol=null",
            "image_every=2",
            f"hydra.run.dir={tmp_path / signum.name}",
        )  # fmt: skip
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    starting = _styleexp_process("logger=none", f"hydra.run.dir={tmp_path / 'starting'}")
    time.sleep(2)  # importing, composing the config or starting the run
    starting.send_signal(signal.SIGINT)
    stderr = starting.communicate(timeout=60)[1].decode()
    assert starting.returncode == 130 and stderr.strip().splitlines()[-1].startswith("styleexp: interrupted"), stderr
    assert "Traceback" not in stderr
    for signum, process in at_work.items():
        run_dir = tmp_path / signum.name
        deadline = time.monotonic() + 120
        while not (run_dir / "images" / "step_000002.png").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signum)
        stderr = process.communicate(timeout=120)[1].decode()
        assert process.returncode == 130, stderr
        facts = summary(run_dir)
        assert facts["status"] == "interrupted" and 2 <= facts["steps"] < 100000
        assert load_image(run_dir / "final.png").shape == (3, 64, 64)
        assert "interrupted at step" in stderr
