"""``styleexp-gpu-check``: the GPU path proven by one command within a time budget, with tables for the docs.

On a CUDA GPU it runs, in order, each stage in processes of its own and within its share of ``--budget``
seconds: the tests marked ``gpu`` (pytest); the benchmark (VGG-19, L-BFGS) at 256, 512 and 1024 px in fp32,
tf32 and bf16; and one 13-job sweep at 256 px run batched and again one job at a time, each timed, each job's
two ``final.png`` compared. Everything measured goes to ``<out>/<date>_<gpu>.json``, the tables to a Markdown
file beside it (:mod:`styleexp.bench.gpu_tables`), every command's output to a log. Without CUDA it says so in
one line and exits 2. ``write_half_weights`` makes the float16 copy of the VGG-19 weights that travels to a
lent GPU machine (``bundle.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from styleexp import outcome
from styleexp.bench.gpu_tables import PRECISIONS, PROG, SIZES, SWEEP_JOBS, passed, verdict, write_results
from styleexp.errors import UserError
from styleexp.weights import ENV_VAR, file_sha256, load_weights, weights_file

# Seconds each stage may take of the default 330 s budget (scaled with --budget); time a stage leaves unused passes
# on to the next. With start-up and the files written, the whole check ends within 6 minutes.
SHARES = {"tests": 95, "bench": 155, "sweep": 80}
MIN_SECONDS = 15  # less than this left: a process is not started (importing torch alone takes seconds)
# The 13 jobs: the study's, on VGG-19 (the weights that travel to a lent GPU; the study uses VGG-16), without
# measures (their evaluators' weights do not travel), every job running all its steps.
SWEEP = [
    "study=style_layers_first",
    "network=vgg19",
    "size=256",
    "stop.rtol=null",
    "logger=none",
    "measures.networks=[]",
]
# tests/test_batched.py: a job's image from a batch is its solo run's within a mean of 1 level (of 255) per pixel.
MEAN_TOLERANCE = 1.0


def main(argv: list[str] | None = None) -> None:
    """``styleexp-gpu-check [--out DIR]``: the three stages on this machine's GPU; exit 1 if any of them failed."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="The GPU path proven within a time budget: GPU tests, benchmark table, batched sweep."
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu-check"), help="results folder (%(default)s)")
    parser.add_argument(
        "--budget", type=float, default=sum(SHARES.values()), help="seconds for the three stages (%(default)s)"
    )
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per benchmark case (%(default)s)")
    # tests/test_batched.py's L-BFGS steps, for which its tolerance holds: over more steps L-BFGS amplifies the
    # rounding differences between a batch and a lone job (at 10 steps on the CPU, means of up to 12 levels).
    parser.add_argument("--sweep-steps", type=int, default=3, help="optimiser steps per sweep job (%(default)s)")
    parser.add_argument("--bench-mode", default="pipeline", choices=["pipeline", "bare"], help="styleexp-bench --modes")
    args = parser.parse_args(argv)
    if min(args.budget, args.steps, args.sweep_steps) <= 0:
        print(f"{PROG}: error: --budget, --steps and --sweep-steps take positive numbers", file=sys.stderr)
        sys.exit(2)
    if not torch.cuda.is_available():
        print(f"{PROG}: no CUDA GPU here; run it on a GPU machine (make gpu-check)", file=sys.stderr)
        sys.exit(2)
    facts = machine()
    print(
        f"{PROG}: {facts['gpu']}, torch {facts['torch']}, CUDA {facts['cuda']}; at most {args.budget:.0f} s", flush=True
    )
    deadline, scale, log = time.monotonic() + args.budget, args.budget / sum(SHARES.values()), []

    def left(stage: str) -> float:
        later = list(SHARES)[list(SHARES).index(stage) + 1 :]
        return deadline - time.monotonic() - scale * sum(SHARES[name] for name in later)

    started = time.monotonic()
    results = {"machine": facts, "settings": vars(args) | {"out": str(args.out)}}
    results["tests"] = run_tests(left("tests"), log)
    print(f"{PROG}: tests: {verdict(results, 'tests')}", flush=True)
    results["bench"] = run_bench(args.steps, args.bench_mode, left("bench"), log)
    print(f"{PROG}: benchmark: {verdict(results, 'bench')}", flush=True)
    results["sweep"] = run_sweeps(args.sweep_steps, left("sweep"), log)
    print(f"{PROG}: sweeps: {verdict(results, 'sweep')}", flush=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    paths = write_results(results, log, args.out)
    print(paths["md"].read_text())
    print(f"{PROG}: {'passed' if passed(results) else 'FAILED'} in {results['seconds']:.0f} s")
    print(f"{PROG}: results in {paths['json']}\n{PROG}: tables in {paths['md']}\n{PROG}: log in {paths['log']}")
    sys.exit(0 if passed(results) else 1)


def write_half_weights(directory: Path, network: str = "vgg19", source: str = "caffe") -> Path:
    """Write a float16 copy of ``network``'s ``source`` weights from the weights directory into ``directory``, by
    the same name (VGG-19: 40 MB, half the original); styleexp reads it back as float32. Returns its path."""
    try:
        loaded = load_weights(network, source, download=False)
    except UserError as error:
        outcome.refuse(error)
    target = directory / loaded.path.name
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({key: value.half() for key, value in loaded.state_dict.items()}, target)
    print(f"{PROG}: wrote {target} ({target.stat().st_size / 1e6:.0f} MB, float16, sha256 {file_sha256(target)})")
    return target


def machine() -> dict:
    """The GPU, the library versions, and the VGG-19 weights file the stages will read; refuses to go on without it."""
    properties = torch.cuda.get_device_properties(0)
    path = weights_file("vgg19", "caffe")
    if not path.is_file():
        outcome.refuse(UserError(f"{path}: no VGG-19 weights; run make gpu-bundle where they are and carry "
                                 f".gpu-bundle, or point {ENV_VAR} at them"))  # fmt: skip
    first = next(iter(torch.load(path, map_location="cpu", weights_only=True).values()))
    return {
        "gpu": properties.name,
        "capability": f"{properties.major}.{properties.minor}",
        "memory_gib": round(properties.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "weights": {"file": str(path), "sha256": file_sha256(path), "dtype": str(first.dtype).removeprefix("torch.")},
    }


def run_tests(seconds: float, log: list[str]) -> dict:
    """The tests marked ``gpu``, in a pytest process: the counts of passed, failed, errors and skipped tests."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        # Collection errors elsewhere (a package missing on the lent machine) leave the GPU tests to run.
        command = [sys.executable, "-m", "pytest", "-m", "gpu", "-n", "0", "-q", "-p", "no:cacheprovider",
                   "--continue-on-collection-errors", f"--junitxml={report}"]  # fmt: skip
        code, wall = run_command(command, seconds, log)
        counts = junit_counts(report) if report.is_file() else {}
    return {"command": shlex.join(command[:-1]), "exit_code": code, "seconds": round(wall, 1), **counts}


def junit_counts(report: Path) -> dict:
    """Passed, failed, errors and skipped tests of a JUnit XML report, and the names of those that failed."""
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = {key: sum(int(suite.get(key, 0)) for suite in suites) for key in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {
        "passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
        "failed": total["failures"],
        "errors": total["errors"],
        "skipped": total["skipped"],
        "failed_tests": failed,
    }


def run_bench(steps: int, mode: str, seconds: float, log: list[str]) -> dict:
    """``styleexp-bench`` at each size, smallest first, one process per size: its results (a case there was no
    time for, or whose process failed, as an ``error``) and the convolution reference each process measured."""
    ends, results, runs = time.monotonic() + seconds, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            out = Path(tmp) / f"{size}.json"
            command = [sys.executable, "-m", "styleexp.bench", "--device", "cuda", "--networks", "vgg19",
                       "--optimizers", "lbfgs", "--sizes", str(size), "--precisions", *PRECISIONS, "--modes", mode,
                       "--steps", str(steps), "--out", str(out)]  # fmt: skip
            left = ends - time.monotonic()
            code, wall = run_command(command, left, log) if left >= MIN_SECONDS else (None, 0.0)
            run = {"command": shlex.join(command[:-2]), "exit_code": code, "seconds": round(wall, 1)}
            if out.is_file():
                found = json.loads(out.read_text())
                results += found["results"]
                run["conv_flop_per_s"] = found["machine"]["conv_flop_per_s"]
            else:
                why = "out of time" if code is None else f"styleexp-bench exited {code} (see the log)"
                results += [
                    {"size": size, "precision": precision, "mode": mode, "error": why} for precision in PRECISIONS
                ]
            runs.append(run)
    return {"network": "vgg19", "optimizer": "lbfgs", "mode": mode, "steps": steps, "runs": runs, "results": results}


def run_sweeps(steps: int, seconds: float, log: list[str]) -> dict:
    """The 13-job sweep batched, then with Hydra's basic launcher (one job at a time): each one's wall time and
    jobs, and each job's two final images compared."""
    ends, launched = time.monotonic() + seconds, {}
    with tempfile.TemporaryDirectory() as tmp:
        for launcher, extra in (("batched", ["hydra/launcher=batched"]), ("basic", [])):
            folder = Path(tmp) / launcher
            command = [sys.executable, "-m", "styleexp", "-m", *SWEEP, f"steps={steps}", *extra]
            # The batched sweep may take half of what is left; the one-by-one sweep, the slower, the rest.
            left = (ends - time.monotonic()) / (2 if launcher == "batched" else 1)
            into = [*command, f"hydra.sweep.dir={folder}"]
            code, wall = run_command(into, left, log) if left >= MIN_SECONDS else (None, 0.0)
            launched[launcher] = {"command": shlex.join(command), "exit_code": code, "seconds": round(wall, 1),
                                  **jobs_of(folder)}  # fmt: skip
        comparison = compare_finals(Path(tmp) / "batched", Path(tmp) / "basic")
    return {"steps": steps, **launched, "comparison": comparison}


def jobs_of(sweep_dir: Path) -> dict:
    """How many jobs a sweep folder holds, how many completed, and the sizes of the batches they ran in."""
    summaries = [json.loads(path.read_text()) for path in sorted(sweep_dir.glob("*/summary.json"))]
    return {
        "jobs": len(summaries),
        "completed": sum(summary["status"] == "completed" for summary in summaries),
        "batch_sizes": sorted({len(summary.get("batch") or [None]) for summary in summaries}),
    }


def compare_finals(batched: Path, basic: Path, expected: int = SWEEP_JOBS) -> dict:
    """Each job's ``final.png`` from the two sweeps: the largest and the mean absolute difference per pixel and
    channel, in levels of 255; ``passed`` when all ``expected`` jobs are in both and every mean is within
    tests/test_batched.py's tolerance."""
    jobs = {}
    for path in sorted(basic.glob("*/final.png")):
        other = batched / path.parent.name / "final.png"
        if other.is_file():
            difference = np.abs(_pixels(path) - _pixels(other))
            jobs[path.parent.name] = {"largest": float(difference.max()), "mean": round(float(difference.mean()), 4)}
    return {
        "jobs": jobs,
        "largest": max((job["largest"] for job in jobs.values()), default=None),
        "largest_mean": max((job["mean"] for job in jobs.values()), default=None),
        "mean_tolerance": MEAN_TOLERANCE,
        "passed": len(jobs) == expected and all(job["mean"] < MEAN_TOLERANCE for job in jobs.values()),
    }


def run_command(command: list[str], seconds: float, log: list[str]) -> tuple[int | None, float]:
    """Run ``command`` for at most ``seconds``, its output added to ``log``: its exit code (None when it ran out of
    time and was ended, with every process it started) and its wall time in seconds."""
    started = time.perf_counter()
    # A session of its own, so that ending it ends the processes it started (styleexp-bench's cases) too.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, code = process.communicate(timeout=seconds)[0], process.returncode
    except subprocess.TimeoutExpired:
        _end(process)
        output, code = process.communicate()[0], None
    except BaseException:  # Ctrl-C reaches this process only: its own session would run on
        _end(process)
        raise
    wall = time.perf_counter() - started
    log.append(f"$ {shlex.join(command)}\n{output}[exit code {code}, {wall:.1f} s]\n")
    return code, wall


def _end(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


if __name__ == "__main__":  # python -m styleexp.bench.gpu: as the console command, Ctrl-C included
    from styleexp.commands import gpu_check

    gpu_check()
