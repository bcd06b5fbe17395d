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

import itertools
import json
import platform
from datetime import datetime
from pathlib import Path

import torch

from styleexp.bench.cases import bare, conv_throughput, end_to_end, flops_per_pass, peer, pipeline, run_bare


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
        measure = {"pipeline": pipeline, "bare": run_bare, "end-to-end": end_to_end}[mode]
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
        "| network | optimizer | size | precision | switches | mode | ms/step | passes/step | peak MB | GFLOP/step | "
        "% of conv peak | s to first step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        switches = "+".join(name for name in ("channels_last", "compile") if r.get(name)) or "-"
        if "error" in r:
            lines.append(
                f"| {r['network']} | {r['optimizer']} | {r['size']} | {r.get('precision')} | {switches} | {r['mode']} "
                f"| {r['error']} | | | | | |"
            )
            continue
        peak_mb, flops, share = r.get("peak_memory_mb"), r.get("flops_per_step"), r.get("of_peak")
        start = r.get("seconds_to_first_step")
        lines.append(
            f"| {r['network']} | {r['optimizer']} | {r['size']} | {r.get('precision', 'fp32')} | {switches} | "
            f"{r['mode']} "
            f"| {_milliseconds(r)} | {r['passes_per_step']:.2f} | {'-' if peak_mb is None else f'{peak_mb:.0f}'} "
            f"| {'-' if flops is None else f'{flops / 1e9:.1f}'} | {'-' if share is None else f'{share:.0%}'} "
            f"| {'-' if start is None else f'{start:.1f}'} |"
        )
    return "\n".join(lines)


def _milliseconds(result: dict) -> str:
    """Milliseconds per step; for ``end-to-end``, with the median between logging steps of the same processes."""
    median = result.get("median_seconds_per_step")
    return f"{result['seconds_per_step'] * 1e3:.1f}" + (
        f" (median between logging steps {median * 1e3:.1f})" if median else ""
    )
