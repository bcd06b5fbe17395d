"""Speed and memory benchmark: seconds per optimiser step and peak memory, the full pipeline vs the bare loop.

Every case runs in a fresh process, so its peak memory is its own: ``pipeline`` is the ``styleexp``
command itself (Lightning, W&B offline, losses logged every 10 steps; its ``summary.json`` has the
median seconds per step after warm-up), ``bare`` is a plain loop over the same module, extractor,
targets and losses, with no Lightning and no logging. The difference is the pipeline's overhead.
``end-to-end`` times whole ``styleexp`` processes with their default logging and image saving, as
the peer is timed: the difference between a 40-step and a 10-step run, divided by 30, so that what
happens at logging steps (image saves, syncs, the progress line) counts too; beside it, the median
between logging steps of the longer run (what ``pipeline`` reports).
FLOPs are counted by torch's FlopCounterMode on one network pass (forward and backward) times
passes per step; ``of_peak`` divides the achieved rate by a measured 3x3 convolution's.
"""

from __future__ import annotations

import functools
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

WARMUP = 2  # bare loop: steps left out of the median
PEER_WARMUP, PEER_STEPS = 10, 30  # neural-style-pt runs: per-step time from the difference of two run lengths


def main(argv: list[str] | None = None) -> None:
    import argparse

    from styleexp.devices import device_name

    parser = argparse.ArgumentParser(prog="styleexp-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["vgg16", "vgg19"])
    parser.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"])
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="default: 128 256 512, and 1024 on a GPU")
    parser.add_argument("--modes", nargs="+", default=["pipeline", "bare"], choices=["pipeline", "bare", "end-to-end"])
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per case, warm-up included")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--channels-last", nargs="+", default=["false"], choices=["false", "true"])
    parser.add_argument("--compile", nargs="+", default=["false"], choices=["false", "true"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--peer", type=Path, help="a checkout of neural-style-pt: also time its Adam step")
    parser.add_argument("--peer-sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--out", type=Path, help="JSON results (default: outputs/bench/<date>_<device>.json)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one bare case, in its own process
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(bare(json.loads(args.case))))
        return

    device = torch.device(args.device)
    sizes = args.sizes or ([128, 256, 512, 1024] if device.type == "cuda" else [128, 256, 512])
    throughput = conv_throughput(device)
    print(
        f"styleexp-bench: {device_name(device)}, {torch.get_num_threads()} threads; "
        f"3x3 convolution: {throughput / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    results = []
    for network, optimizer, size, precision, channels_last, compiled, mode in itertools.product(
        args.networks, args.optimizers, sizes, args.precisions, args.channels_last, args.compile, args.modes
    ):
        case = {
            "network": network,
            "optimizer": optimizer,
            "size": size,
            "steps": args.steps,
            "device": args.device,
            "precision": precision,
            "channels_last": channels_last == "true",
            "compile": compiled == "true",
        }
        measure = {"pipeline": pipeline, "bare": _bare_process, "end-to-end": end_to_end}[mode]
        result = {**case, "mode": mode, **measure(case)}
        if result.get("seconds_per_step"):
            result["flops_per_step"] = flops_per_pass(network, size, device) * result["passes_per_step"]
            result["tflop_per_s"] = result["flops_per_step"] / result["seconds_per_step"] / 1e12
            result["of_peak"] = result["flops_per_step"] / result["seconds_per_step"] / throughput
        results.append(result)
        print(row(result), flush=True)
    for size in args.peer_sizes if args.peer else []:
        result = {
            "network": "vgg19",
            "optimizer": "adam",
            "size": size,
            "device": args.device,
            "precision": "fp32",
            "mode": "neural-style-pt",
            **peer(args.peer, size, device),
        }
        results.append(result)
        print(row(result), flush=True)
    out = args.out or Path("outputs/bench") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "conv_flop_per_s": throughput,
        "date": datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    print(f"styleexp-bench: results in {out}\n")
    print(table(results))


def pipeline(case: dict) -> dict:
    """Run the ``styleexp`` command on ``case`` and read its summary."""
    from styleexp.rundir import read_summary

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        command = [
            str(Path(sys.executable).parent / "styleexp"),
            *_overrides(case),
            "log_every=10",
            "image_every=0",
            "stop.rtol=null",
            "measures.networks=[]",
            f"hydra.run.dir={run_dir}",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
        summary = read_summary(run_dir)
    return {
        "seconds_per_step": summary["seconds_per_step"],
        "passes_per_step": summary["evaluations"] / summary["steps"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "final_loss": summary["losses"]["loss/total"],
    }


def end_to_end(case: dict) -> dict:
    """Seconds per step of whole ``styleexp`` processes on ``case``, with the default logging and image saving."""
    from styleexp.rundir import read_summary

    seconds, summary = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (PEER_WARMUP, PEER_WARMUP + PEER_STEPS):
            run_dir = Path(tmp) / f"steps{steps}"
            command = [
                str(Path(sys.executable).parent / "styleexp"),
                *_overrides({**case, "steps": steps}),
                "stop.rtol=null",
                "measures.networks=[]",
                f"hydra.run.dir={run_dir}",
            ]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            seconds[steps] = time.perf_counter() - started
            if done.returncode != 0:
                return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
            summary = read_summary(run_dir)
    return {
        "seconds_per_step": (seconds[PEER_WARMUP + PEER_STEPS] - seconds[PEER_WARMUP]) / PEER_STEPS,
        "median_seconds_per_step": summary["seconds_per_step"],  # the longer run's, between logging steps
        "passes_per_step": summary["evaluations"] / summary["steps"],
        "peak_memory_mb": summary["peak_memory_mb"],
    }


def bare(case: dict) -> dict:
    """The optimisation loop alone on ``case``: same module, no Lightning, no logging, no callbacks."""
    from styleexp import devices, speed

    device = torch.device(case["device"])
    module = _module(_overrides(case), device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=case["precision"] == "bf16")
    speed.set_precision(case["precision"], device)
    optimizer = module.configure_optimizers()
    times = []
    for _ in range(case["steps"]):
        started = time.perf_counter()
        with autocast:
            module.step(optimizer)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return {
        "seconds_per_step": statistics.median(times[WARMUP:]),
        "passes_per_step": module.evaluations / case["steps"],
        "peak_memory_mb": round(devices.peak_memory_mb(device), 1),
        "final_loss": float(module.last_losses["loss/total"].sum()),
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
    """neural-style-pt's seconds per Adam step at ``size``, at our settings: VGG-19 Caffe weights, relu4_2, relu1_1..relu5_1."""
    from styleexp import samples
    from styleexp.images import save_image
    from styleexp.weights import load_weights

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "vgg19.pth"
        # It loads a whole-model state dict; the features are all a style step uses.
        torch.save({f"features.{k}": v for k, v in load_weights("vgg19", "caffe").state_dict.items()}, model)
        save_image(samples.load("astronaut", size), tmp / "content.png")
        save_image(samples.load("rainbow_circles", size), tmp / "style.png")
        seconds = {}
        for steps in (PEER_WARMUP, PEER_WARMUP + PEER_STEPS):
            command = [
                sys.executable,
                str(checkout / "neural_style.py"),
                "-content_image",
                str(tmp / "content.png"),
                "-style_image",
                str(tmp / "style.png"),
                "-image_size",
                str(size),
                "-num_iterations",
                str(steps),
                "-optimizer",
                "adam",
                "-learning_rate",
                "5",
                "-tv_weight",
                "0",
                "-print_iter",
                "0",
                "-save_iter",
                "0",
                "-model_file",
                str(model),
                "-disable_check",
                "-gpu",
                "0" if device.type == "cuda" else "c",
                "-output_image",
                str(tmp / "out.png"),
                "-seed",
                "0",
            ]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
            seconds[steps] = time.perf_counter() - started
            if done.returncode != 0:
                return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return {
        "seconds_per_step": (seconds[PEER_WARMUP + PEER_STEPS] - seconds[PEER_WARMUP]) / PEER_STEPS,
        "passes_per_step": 1.0,
    }


def row(result: dict) -> str:
    switches = [result.get("precision", "fp32")] + [name for name in ("channels_last", "compile") if result.get(name)]
    where = f"{result['network']} {result['optimizer']} {result['size']}px {'+'.join(switches)} {result['mode']}"
    if "error" in result:
        return f"{where}: {result['error']}"
    extra = (
        f", {result['tflop_per_s'] * 1e3:.0f} GFLOP/s ({result['of_peak']:.0%} of conv peak)"
        if "of_peak" in result
        else ""
    )
    memory = f", peak {result['peak_memory_mb']:.0f} MB" if "peak_memory_mb" in result else ""
    return f"{where}: {_milliseconds(result)} ms/step{memory}{extra}"


def table(results: list[dict]) -> str:
    """A Markdown table of ``results``."""
    lines = [
        "| network | optimizer | size | precision | switches | mode | ms/step | passes/step | peak MB | GFLOP/step | % of conv peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        switches = "+".join(name for name in ("channels_last", "compile") if r.get(name)) or "-"
        if "error" in r:
            lines.append(
                f"| {r['network']} | {r['optimizer']} | {r['size']} | {r.get('precision')} | {switches} | {r['mode']} | {r['error']} | | | | |"
            )
            continue
        peak_mb, flops, share = r.get("peak_memory_mb"), r.get("flops_per_step"), r.get("of_peak")
        lines.append(
            f"| {r['network']} | {r['optimizer']} | {r['size']} | {r.get('precision', 'fp32')} | {switches} | {r['mode']} "
            f"| {_milliseconds(r)} | {r['passes_per_step']:.2f} | {'-' if peak_mb is None else f'{peak_mb:.0f}'} "
            f"| {'-' if flops is None else f'{flops / 1e9:.1f}'} | {'-' if share is None else f'{share:.0%}'} |"
        )
    return "\n".join(lines)


def _milliseconds(result: dict) -> str:
    """Milliseconds per step; for ``end-to-end``, with the median between logging steps of the same processes."""
    median = result.get("median_seconds_per_step")
    return f"{result['seconds_per_step'] * 1e3:.1f}" + (
        f" (median between logging steps {median * 1e3:.1f})" if median else ""
    )


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
        *(["trainer=cpu"] if case["device"] == "cpu" else []),
    ]


def _bare_process(case: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "styleexp.bench", "--case", json.dumps(case)], capture_output=True, text=True
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
