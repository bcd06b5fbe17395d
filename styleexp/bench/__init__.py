"""Speed and memory benchmark: seconds per optimiser step and peak memory, the full pipeline vs the bare loop.

Every case runs in a fresh process, so its peak memory is its own: ``pipeline`` is the ``styleexp``
command itself (Lightning, W&B offline, losses logged every 10 steps; its ``summary.json`` has the
median seconds per step after warm-up), ``bare`` is a plain loop over the same module, extractor,
targets and losses, with no Lightning and no logging. The difference is the pipeline's overhead.
``end-to-end`` times a whole ``styleexp`` process with its default logging and image saving over the
steps the peer is timed on: its own clock's mean over the 30 steps after 10 of warm-up, so that what
happens at logging steps (image saves, syncs, the progress line) counts too, and the process's start
and end, whose spread under load would swamp 30 small steps, do not; beside it, the median between
logging steps of the same run (what ``pipeline`` reports).
FLOPs are counted by torch's FlopCounterMode on one network pass (forward and backward) times
passes per step; ``of_peak`` divides the achieved rate by a measured 3x3 convolution's. A case's
``precision`` is what ran (``auto`` resolved, from the run's summary), ``requested_precision`` what
was asked for. ``--peer`` adds neural-style-pt's Adam step and its ratio to styleexp's end to end
(``peers.py``).

Two other modes: ``--quality`` (``quality.py``) runs the main job and neural-style-pt at equal wall
time and scores both with an evaluator neither optimises; ``--study`` (``study.py``) times a whole
study, its sweep and its report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
from datetime import datetime
from pathlib import Path

import torch

from styleexp import outcome
from styleexp.bench import peers, quality, study
from styleexp.bench.cases import bare, conv_throughput, end_to_end, flops_per_pass, peer, pipeline, run_bare
from styleexp.errors import UserError
from styleexp.style_losses import STYLE_LOSSES
from styleexp.weights import load_weights, weights_file

# What makes two timed cases alike, but for the style loss.
CASE_KEYS = (
    "network",
    "optimizer",
    "size",
    "steps",
    "device",
    "requested_precision",
    "channels_last",
    "compile",
    "mode",
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of ``styleexp-bench``."""
    parser = argparse.ArgumentParser(prog="styleexp-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["vgg16", "vgg19"])
    parser.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"])
    parser.add_argument(
        "--sizes", nargs="+", type=int, default=None, help="default: 128 256 512, and 1024 on a GPU; --quality: 256 512"
    )
    parser.add_argument("--modes", nargs="+", default=["pipeline", "bare"], choices=["pipeline", "bare", "end-to-end"])
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per case, warm-up included")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["auto", "fp32", "tf32", "bf16"])
    parser.add_argument("--channels-last", nargs="+", default=["false"], choices=["false", "true"])
    parser.add_argument("--compile", nargs="+", default=["false"], choices=["false", "true"])
    parser.add_argument(
        "--style-losses", nargs="+", default=["gram"], metavar="LOSS",
        help="gram= options to time (style_losses/), or all; each beside gram's step at the same settings",
    )  # fmt: skip
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--peer", type=Path, help="a checkout of neural-style-pt: also time its Adam step")
    parser.add_argument("--peer-sizes", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument(
        "--quality",
        action="store_true",
        help="instead: the main job against --peer at equal wall time on --pairs and --sizes, scored by an evaluator "
        "neither optimises",
    )
    parser.add_argument("--pairs", nargs="+", metavar="CONTENT:STYLE", help="--quality: image files or sample names")
    parser.add_argument("--study", metavar="OVERRIDES", help="instead: a sweep's total time (sweep, then report)")
    parser.add_argument(
        "--study-dir", type=Path, help="--study: sweep into this new folder and keep it (default: temp)"
    )
    parser.add_argument("--report-args", default="", help="--study: more arguments of styleexp-report, in one string")
    parser.add_argument("--out", type=Path, help="JSON results (default: outputs/bench/<date>_<device>[_mode].json)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one bare case, in its own process
    args = parser.parse_args(argv)
    if args.quality and not (args.peer and args.pairs):
        parser.error("--quality needs --peer CHECKOUT and --pairs CONTENT:STYLE ...")
    return args


def main(argv: list[str] | None = None) -> None:
    """``styleexp-bench``: a mistake (weights that can be neither found nor downloaded, ...) is one line, exit 2."""
    args = parse(argv)
    try:
        bench(args)
    except UserError as error:
        outcome.refuse(error)


def bench(args: argparse.Namespace) -> None:
    """What the command line ``args`` asks for: one bare case, a study, the quality comparison or the per-step table."""
    if args.case:
        print(json.dumps(bare(json.loads(args.case))))
        return
    device = torch.device(args.device)
    if args.quality:
        check_weights([("vgg19", "caffe"), ("vgg16", "torchvision")])  # the main job and peer's, the evaluator's
    elif not args.study:  # a study's sweep says what it lacks itself, in its table
        check_weights([(network, "caffe") for network in args.networks] + [("vgg19", "caffe")] * bool(args.peer))
    if args.study:
        out = args.out or default_out(args.device, "study")
        write_results(out, device, study.run(args.study, args.study_dir, args.report_args))
        return
    if args.quality:
        out = args.out or default_out(args.device, "quality")
        write_results(out, device, quality.run(args.peer, args.pairs, args.sizes or [256, 512], device, out))
        return
    per_step(args, device)


def check_weights(needed: list[tuple[str, str]]) -> None:
    """Refuse before timing anything where ``(network, source)`` weights can be neither found nor downloaded: every
    case would fail alike, each with its own line."""
    for network, source in needed:
        if not weights_file(network, source).is_file():
            load_weights(network, source)  # downloads them, or says in one line why it cannot


def per_step(args: argparse.Namespace, device: torch.device) -> None:
    """Seconds per step of every case the arguments name, then of the peer beside styleexp end to end."""
    from styleexp.devices import device_name

    sizes = args.sizes or ([128, 256, 512, 1024] if device.type == "cuda" else [128, 256, 512])
    losses = list(STYLE_LOSSES) if args.style_losses == ["all"] else [STYLE_LOSSES[n].name for n in args.style_losses]
    throughput = conv_throughput(device)
    print(
        f"styleexp-bench: {device_name(device)}, {torch.get_num_threads()} threads; "
        f"3x3 convolution: {throughput / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    results = []
    for network, optimizer, size, precision, channels_last, compiled, mode, loss in itertools.product(
        args.networks, args.optimizers, sizes, args.precisions, args.channels_last, args.compile, args.modes, losses
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
            "style_loss": loss,
        }
        results.append(timed_case(case, mode, throughput))
    if losses != ["gram"]:
        results = [{**result, "x_gram": times_gram(result, results)} for result in results]
    if args.peer:
        results += peer_comparison(args.peer, args.peer_sizes, results, device, throughput)
    ratios = peers.ratios(results)
    out = args.out or default_out(args.device)
    write_results(out, device, {"conv_flop_per_s": throughput, "results": results, "peer_ratios": ratios})
    print(table(results))
    if ratios:
        print("\n" + peers.ratio_table(ratios))


def timed_case(case: dict, mode: str, throughput: float) -> dict:
    """One case timed in ``mode``, with its FLOPs; printed as a line. ``precision`` is what ran, ``requested_precision``
    what was asked for (``auto`` resolves to ``fp32`` or ``bf16``)."""
    measure = {"pipeline": pipeline, "bare": run_bare, "end-to-end": end_to_end}[mode]
    result = {**case, "requested_precision": case["precision"], "mode": mode, **measure(case)}
    if result.get("seconds_per_step"):
        device = torch.device(case["device"])
        result["flops_per_step"] = flops_per_pass(case["network"], case["size"], device) * result["passes_per_step"]
        result["tflop_per_s"] = result["flops_per_step"] / result["seconds_per_step"] / 1e12
        result["of_peak"] = result["flops_per_step"] / result["seconds_per_step"] / throughput
    print(row(result), flush=True)
    return result


def times_gram(result: dict, results: list[dict]) -> float | None:
    """``result``'s seconds per step over the ``gram`` case's at the same settings; None without one."""
    like = {key: value for key, value in result.items() if key in CASE_KEYS and key != "style_loss"}
    gram = next(
        (r for r in results if r.get("style_loss") == "gram" and all(r.get(k) == v for k, v in like.items())), None
    )
    if gram is None or not gram.get("seconds_per_step") or not result.get("seconds_per_step"):
        return None
    return round(result["seconds_per_step"] / gram["seconds_per_step"], 2)


def peer_comparison(
    checkout: Path, sizes: list[int], results: list[dict], device: torch.device, throughput: float
) -> list[dict]:
    """neural-style-pt's Adam step at each of ``sizes``, and styleexp's end to end at the same settings (VGG-19, Adam,
    fp32) where ``results`` lack it: like is compared with like."""
    added = []
    for size in sizes:
        case = {**peers.LIKE, "size": size, "steps": peers.LIKE_STEPS, "device": device.type}
        if peers.like_case(results + added, size) is None:
            added.append(timed_case({**case, "channels_last": False, "compile": False}, "end-to-end", throughput))
        result = {**case, "mode": "neural-style-pt", **peer(checkout, size, device)}
        added.append(result)
        print(row(result), flush=True)
    return added


def default_out(device: str, mode: str | None = None) -> Path:
    """``outputs/bench/<date>_<device>[_<mode>].json``."""
    return Path("outputs/bench") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{device}{f'_{mode}' if mode else ''}.json"


def write_results(out: Path, device: torch.device, results: dict) -> None:
    """``results`` with the machine's facts, as JSON into ``out``."""
    from styleexp.devices import device_name

    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if "conv_flop_per_s" in results:  # where the convolution reference was measured (per-step mode)
        machine["conv_flop_per_s"] = results.pop("conv_flop_per_s")
    out.write_text(json.dumps({"machine": machine, **results}, indent=2) + "\n")
    print(f"styleexp-bench: results in {out}\n")


def row(result: dict) -> str:
    switches = [result.get("precision", "fp32")] + [name for name in ("channels_last", "compile") if result.get(name)]
    loss = f" gram={result['style_loss']}" if result.get("style_loss", "gram") != "gram" else ""
    where = f"{result['network']}{loss} {result['optimizer']} {result['size']}px {'+'.join(switches)} {result['mode']}"
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
        "| network | style loss | optimizer | size | precision | switches | mode | ms/step | x gram | passes/step | "
        "peak MB | GFLOP/step | % of conv peak | s to first step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        switches = "+".join(name for name in ("channels_last", "compile") if r.get(name)) or "-"
        if "error" in r:
            lines.append(
                f"| {r['network']} | {r.get('style_loss', 'gram')} | {r['optimizer']} | {r['size']} | "
                f"{r.get('precision')} | {switches} | {r['mode']} | {r['error']} | | | | | | |"
            )
            continue
        peak_mb, flops, share = r.get("peak_memory_mb"), r.get("flops_per_step"), r.get("of_peak")
        start = r.get("seconds_to_first_step")
        lines.append(
            f"| {r['network']} | {r.get('style_loss', 'gram')} | {r['optimizer']} | {r['size']} | "
            f"{r.get('precision', 'fp32')} | {switches} | {r['mode']} | {_milliseconds(r)} "
            f"| {'-' if r.get('x_gram') is None else r['x_gram']} | {r['passes_per_step']:.2f} "
            f"| {'-' if peak_mb is None else f'{peak_mb:.0f}'} "
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
