"""How each benchmark case is timed: the pipeline, the bare loop and whole processes of styleexp and of its peer;
the FLOPs of a step and the machine's 3x3 convolution rate."""

from __future__ import annotations

import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

WARMUP = 2  # bare loop: steps left out of the median
PEER_WARMUP, PEER_STEPS = 10, 30  # end to end: steps of warm-up, then steps timed
# The styleexp command, through this interpreter: it runs however styleexp was installed (a wheel unpacked with
# pip --target, as on a lent GPU machine, puts no console script beside the interpreter).
STYLEEXP = [sys.executable, "-m", "styleexp"]


def pipeline(case: dict) -> dict:
    """Run the ``styleexp`` command on ``case`` and read its summary."""
    summary, error = _command_summary(case, ["log_every=10", "image_every=0"])
    if error:
        return {"error": error}
    return {
        "seconds_per_step": summary["seconds_per_step"],
        "seconds_to_first_step": summary.get("process_seconds_at_first_step"),
        "passes_per_step": summary["evaluations"] / summary["steps"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "final_loss": summary["losses"]["loss/total"],
        "precision": ran_precision(summary, case),
    }


def end_to_end(case: dict) -> dict:
    """Seconds per step of a whole ``styleexp`` process on ``case``, with the default logging and image saving: its own
    clock's mean over the 30 steps after 10 of warm-up, what happens at logging and image steps included."""
    steps = PEER_WARMUP + PEER_STEPS
    summary, error = _command_summary({**case, "steps": steps}, [f"log_every={PEER_WARMUP}"])  # the default
    if error:
        return {"error": error}
    return {
        "seconds_per_step": summary["mean_seconds_per_step"],
        "median_seconds_per_step": summary["seconds_per_step"],  # between logging steps
        "seconds_to_first_step": summary.get("process_seconds_at_first_step"),
        "passes_per_step": summary["evaluations"] / summary["steps"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "precision": ran_precision(summary, case),
    }


def _command_summary(case: dict, settings: list[str]) -> tuple[dict, str | None]:
    """The ``summary.json`` of the ``styleexp`` command on ``case`` with ``settings``, no stop rule and no measures;
    or its last error line."""
    from styleexp.rundir import read_summary

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        command = [*STYLEEXP, *_overrides(case), *settings, "stop.rtol=null", "measures.networks=[]",
                   f"hydra.run.dir={run_dir}"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return {}, (done.stderr.strip().splitlines() or ["failed"])[-1]
        return read_summary(run_dir), None


def bare(case: dict) -> dict:
    """The optimisation loop alone on ``case``: same module, no Lightning, no logging, no callbacks."""
    from styleexp import devices, speed

    device = torch.device(case["device"])
    precision = speed.resolve(case["precision"], device)  # auto: what a run on this device would choose
    module = _module(_overrides({**case, "precision": precision}), device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    speed.set_precision(precision, device)
    optimizer = module.configure_optimizers()
    times = []
    for _ in range(case["steps"]):
        started = time.perf_counter()
        with autocast:
            module.step(optimizer)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    # Its threads ended now, not as the interpreter exits: LAPACK's (gram=gaussian_w2) would abort the process then.
    optimizer.close()
    return {
        "seconds_per_step": statistics.median(times[WARMUP:]),
        "passes_per_step": module.evaluations / case["steps"],
        "peak_memory_mb": round(devices.peak_memory_mb(device), 1),
        "final_loss": float(module.last_losses["loss/total"].sum()),
        "precision": precision,
    }


@functools.lru_cache
def flops_per_pass(network: str, size: int, device: torch.device) -> float:
    """FLOPs of one forward and backward pass of the main job's losses at ``size`` (counted, not estimated)."""
    from torch.utils.flop_counter import FlopCounterMode

    module = _module([f"network={network}", f"size={size}"], device)
    with FlopCounterMode(display=False) as counter:
        module.losses()["loss/total"].sum().backward()
    return float(counter.get_total_flops())


def conv_throughput(device: torch.device) -> float:
    """FLOP/s of a VGG-sized 3x3 convolution (256 to 256 channels) with its input gradient, median of 5."""
    side = 256 if device.type == "cuda" else 128
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device).requires_grad_(False)
    x = torch.randn(1, 256, side, side, device=device, requires_grad=True)
    flops = 2 * 2 * 256 * 256 * 9 * side * side  # forward, and backward to the input
    times = []
    for _ in range(7):
        started = time.perf_counter()
        conv(x).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return flops / statistics.median(times[2:])


def peer(checkout: Path, size: int, device: torch.device) -> dict:
    """neural-style-pt's seconds per Adam step at ``size``, at our settings: VGG-19 Caffe weights, relu4_2,
    relu1_1..relu5_1; by its own progress lines, over the 30 steps after 10 of warm-up, as ``end_to_end`` times ours."""
    from styleexp import samples
    from styleexp.images import save_image

    steps = PEER_WARMUP + PEER_STEPS
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = peer_weights(tmp)
        save_image(samples.load("astronaut", size), tmp / "content.png")
        save_image(samples.load("rainbow_circles", size), tmp / "style.png")
        command = peer_command(checkout, tmp, size, steps, model, device, tmp / "out.png")
        command += ["-optimizer", "adam", "-learning_rate", "5", "-tv_weight", "0", "-print_iter", str(PEER_WARMUP)]
        marks, error = progress_clock(command, cwd=tmp)
    if error:
        return {"error": error}
    if PEER_WARMUP not in marks or steps not in marks:
        return {"error": f"neural-style-pt printed no 'Iteration N' line at iterations {PEER_WARMUP} and {steps}"}
    return {"seconds_per_step": (marks[steps] - marks[PEER_WARMUP]) / PEER_STEPS, "passes_per_step": 1.0}


def progress_clock(command: list[str], cwd: Path) -> tuple[dict[int, float], str | None]:
    """When each ``Iteration N / M`` line of ``command`` (neural-style-pt, its output unbuffered) arrived, by N; and
    its last error line (None if it succeeded).

    Its own progress, like ``end_to_end``'s clock: the difference of two whole processes, as it was once timed, swings
    with their start and end under load by more than 30 small steps take (a 64 px step came out negative).
    """
    marks = {}
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a full pipe would stall the process
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        for line in process.stdout:
            if match := re.match(r"Iteration (\d+) /", line):
                marks[int(match.group(1))] = time.perf_counter()
        process.wait()
        errors.seek(0)
        last = (errors.read().strip().splitlines() or ["failed"])[-1]
    return marks, None if process.returncode == 0 else last


def peer_weights(folder: Path) -> Path:
    """The VGG-19 Caffe weights styleexp uses, written into ``folder`` as the whole-model state dict neural-style-pt
    loads (the features are all a style step uses); the file's path."""
    from styleexp.weights import load_weights

    model = Path(folder) / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in load_weights("vgg19", "caffe").state_dict.items()}, model)
    return model


def peer_command(
    checkout: Path, inputs: Path, size: int, iterations: int, model: Path, device: torch.device, output: Path
) -> list[str]:
    """neural-style-pt on ``inputs``/content.png and style.png at ``size`` px for ``iterations``, writing ``output``;
    its own defaults otherwise, but no intermediate images (``-save_iter 0``) and a fixed seed."""
    return [
        sys.executable, str(Path(checkout) / "neural_style.py"),
        "-content_image", str(Path(inputs) / "content.png"), "-style_image", str(Path(inputs) / "style.png"),
        "-image_size", str(size), "-num_iterations", str(iterations), "-save_iter", "0",
        "-model_file", str(model), "-disable_check", "-gpu", "0" if device.type == "cuda" else "c",
        "-output_image", str(output), "-seed", "0",
    ]  # fmt: skip


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, str | None]:
    """Wall seconds of ``command`` as a process, and its last error line (None if it succeeded)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - started
    return seconds, None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]


def ran_precision(summary: dict, case: dict) -> str:
    """The precision a run computed in, as its summary records it (``auto`` resolved); the requested one where an
    older summary has no ``precision``."""
    return summary.get("precision") or case["precision"]


def _module(overrides: list[str], device: torch.device) -> torch.nn.Module:
    """The run's module (image, extractor, targets, losses) for the main job with ``overrides``, on ``device``."""
    from hydra import compose, initialize_config_dir

    from styleexp.build import build
    from styleexp.cli import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "logger=none"])
    return build([cfg]).module.to(device)


def _overrides(case: dict) -> list[str]:
    return [
        f"network={case['network']}",
        f"optim={case['optimizer']}",
        f"size={case['size']}",
        f"steps={case['steps']}",
        f"speed.precision={case['precision']}",
        f"speed.channels_last={str(case['channels_last']).lower()}",
        f"speed.compile={str(case['compile']).lower()}",
        f"gram={case.get('style_loss', 'gram')}",
        *(["trainer=cpu"] if case["device"] == "cpu" else []),
    ]


def run_bare(case: dict) -> dict:
    """``bare`` in a process of its own, so that its peak memory is its own."""
    done = subprocess.run(
        [sys.executable, "-m", "styleexp.bench", "--case", json.dumps(case)], capture_output=True, text=True
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])
