"""What ``styleexp-gpu-check`` found, as files (everything as JSON, the tables as Markdown for the docs' GPU section,
every command's output as a log) and as its verdict on each stage."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

PROG = "styleexp-gpu-check"
SIZES = (256, 512, 1024)
PRECISIONS = ("fp32", "tf32", "bf16")
SWEEP_JOBS = 13  # study style_layers_first: style_layers.first=range(1,14)


def write_results(results: dict, log: list[str], out: Path) -> dict[str, Path]:
    """Write ``results`` to ``out/<date>_<gpu>.json``, its tables to the ``.md`` and ``log`` to the ``.log`` beside
    it; returns the three paths by suffix."""
    date = datetime.fromisoformat(results["machine"]["date"])
    gpu = re.sub(r"[^A-Za-z0-9.]+", "-", results["machine"]["gpu"]).strip("-")
    out.mkdir(parents=True, exist_ok=True)
    paths = {suffix: out / f"{date:%Y-%m-%d_%H-%M-%S}_{gpu}.{suffix}" for suffix in ("json", "md", "log")}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["md"].write_text(markdown(results))
    paths["log"].write_text("\n".join(log))
    return paths


def markdown(results: dict) -> str:
    """The check's tables and verdicts as a Markdown section, headed by the GPU, its software and the date."""
    machine, bench, sweep = results["machine"], results["bench"], results["sweep"]
    rates = sorted(run["conv_flop_per_s"] / 1e12 for run in bench["runs"] if "conv_flop_per_s" in run)
    conv = (
        "-"
        if not rates
        else f"{rates[0]:.0f}"
        if round(rates[0]) == round(rates[-1])
        else f"{rates[0]:.0f}-{rates[-1]:.0f}"
    )
    lines = [
        f"## Measured on a GPU: {machine['gpu']} ({machine['date'][:10]})",
        "",
        f"{machine['gpu']} ({machine['memory_gib']:.0f} GiB, compute capability {machine['capability']}), "
        f"torch {machine['torch']}, CUDA {machine['cuda']}, cuDNN {machine['cudnn']}; `make gpu-check` in "
        f"{results['seconds']:.0f} s, with the VGG-19 Caffe weights from a {machine['weights']['dtype']} file, "
        "computed in float32.",
        "",
        f"Tests marked `gpu`: {verdict(results, 'tests')}.",
        "",
        f"Benchmark: VGG-19, L-BFGS, `{bench['mode']}` mode, {bench['steps']} steps a case, median after warm-up; "
        f"the 3x3 convolution reference ran at {conv} TFLOP/s (float32 at PyTorch's default settings, which let "
        "cuDNN use TF32).",
        "",
        "| size | precision | ms/step | passes/step | peak MB | % of conv peak |",
        "|---|---|---|---|---|---|",
        *(_row(result) for result in bench["results"]),
        "",
        f"Sweep: the {SWEEP_JOBS} jobs of study `style_layers_first` on VGG-19 (`style_layers.first=1..13`), 256 px, "
        f"{sweep['steps']} steps each, `logger=none`, batched and one job at a time (Hydra's basic launcher):",
        "",
        "| launcher | jobs completed | batch sizes | wall time (s) |",
        "|---|---|---|---|",
        *(
            f"| {name} | {sweep[key]['completed']} of {SWEEP_JOBS} | "
            f"{', '.join(map(str, sweep[key]['batch_sizes'])) or '-'} | {sweep[key]['seconds']:.1f} |"
            for key, name in (("batched", "batched"), ("basic", "basic (one by one)"))
        ),
        "",
        _comparison(sweep["comparison"]),
        "",
    ]
    return "\n".join(lines)


def verdict(results: dict, stage: str) -> str:
    """One line on how ``stage`` (``tests``, ``bench`` or ``sweep``) of ``results`` went."""
    found = results[stage]
    if stage == "tests":
        if "passed" not in found:
            return f"pytest {_ended(found)} without a report (see the log)"
        failing = f": {', '.join(found['failed_tests'])}" if found["failed_tests"] else ""
        return (
            f"{found['passed']} passed, {found['failed']} failed, {found['errors']} errors, {found['skipped']} "
            f"skipped in {found['seconds']:.0f} s{failing}"
        )
    if stage == "bench":
        seconds = sum(run["seconds"] for run in found["runs"])
        return f"{sum(map(_measured, found['results']))} of {len(SIZES) * len(PRECISIONS)} cases in {seconds:.0f} s"
    ran = [
        f"{name} {found[key]['completed']} of {SWEEP_JOBS} in {found[key]['seconds']:.0f} s"
        + ("" if found[key]["exit_code"] == 0 else f" ({_ended(found[key])})")
        for key, name in (("batched", "batched"), ("basic", "one by one"))
    ]
    return f"{', '.join(ran)}; images {'pass' if found['comparison']['passed'] else 'FAIL'}"


def passed(results: dict) -> bool:
    """Whether every test passed, every benchmark case was measured and the sweeps agreed within tolerance."""
    tests, bench, sweep = results["tests"], results["bench"], results["sweep"]
    return (
        tests["exit_code"] == 0
        and tests.get("passed", 0) > 0
        and sum(map(_measured, bench["results"])) == len(SIZES) * len(PRECISIONS)
        and sweep["batched"]["exit_code"] == sweep["basic"]["exit_code"] == 0
        and sweep["comparison"]["passed"]
    )


def _row(result: dict) -> str:
    if "error" in result:
        return f"| {result['size']} | {result['precision']} | {result['error']} | | | |"
    seconds, peak, share = result.get("seconds_per_step"), result.get("peak_memory_mb"), result.get("of_peak")
    return (
        f"| {result['size']} | {result['precision']} | {'-' if seconds is None else f'{seconds * 1e3:.1f}'} | "
        f"{result['passes_per_step']:.2f} | {'-' if peak is None else f'{peak:.0f}'} | "
        f"{'-' if share is None else f'{share:.0%}'} |"
    )


def _comparison(comparison: dict) -> str:
    if not comparison["jobs"]:
        return "The two sweeps left no pair of images to compare (see the log)."
    worst = max(comparison["jobs"], key=lambda job: comparison["jobs"][job]["largest"])
    return (
        f"Each job's `final.png`, batched against one by one, over {len(comparison['jobs'])} jobs: largest "
        f"difference {comparison['largest']:.0f} levels of 255 ({worst}), largest mean "
        f"{comparison['largest_mean']:.3f} per pixel and channel; tests/test_batched.py allows a mean under "
        f"{comparison['mean_tolerance']:g}: {'pass' if comparison['passed'] else 'FAIL'}."
    )


def _measured(result: dict) -> bool:
    return "error" not in result and bool(result.get("seconds_per_step"))


def _ended(stage: dict) -> str:
    return "ran out of time" if stage["exit_code"] is None else f"exited {stage['exit_code']}"
