"""``styleexp-bench --quality``: the main job against neural-style-pt at equal wall time, scored by an evaluator
that neither optimises.

For each pair of images and each size, the main job runs first, as a whole process
(``styleexp content=C style=S size=N``, its defaults; its own measures off, since scoring is done
here). neural-style-pt then gets the same wall time: two short runs of it at that size and on those
images (``PROBE`` iterations) give its start-up seconds and its seconds per iteration (their
difference in time over their difference in length), and it runs for as many iterations as fit in
what the main job took (``equal_time_iterations``); a run that misses that time by more than
``TOLERANCE`` is run again once, with its own time added to the fit. It keeps its own defaults
otherwise (L-BFGS, content weight 5, style weight 100, TV weight 1e-3, a random start), with the
same VGG-19 Caffe weights as styleexp (``cases.peer_weights``), no intermediate images and seed 0.
Both outputs are scored by ``EVALUATOR``: VGG-16 with torchvision's ImageNet weights, a network
neither program optimised (both optimise VGG-19 Caffe), and by speckle (``styleexp/measures/``).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from styleexp.bench.cases import STYLEEXP, peer_command, peer_weights, timed
from styleexp.bench.quality_table import side_by_side, table

EVALUATOR = "vgg16_torchvision"  # an ImageNet network of other weights and depth than the VGG-19 Caffe both optimise
STYLE, CONTENT = "style/gram", "content/relu4_2"  # its Gram distance to the style image, activation one to the photo
PROBE = (5, 20)  # neural-style-pt iterations of the two timing runs
TOLERANCE = 0.1  # the peer's wall time may differ from the main job's by this fraction before it is run again
# neural-style-pt's L-BFGS loop calls the optimiser again while it has made at most one evaluation; from 2 it stops.
MIN_ITERATIONS = 2


def parse_pair(text: str) -> tuple[str, str]:
    """``CONTENT:STYLE`` (image files or sample names) as the two."""
    content, sep, style = text.rpartition(":")
    if not sep or not content or not style:
        raise SystemExit(f"styleexp-bench: error: --pairs takes CONTENT:STYLE, got {text!r}")
    return content, style


def pair_name(content: str, style: str) -> str:
    """A short name for the pair, for tables and file names: ``tubingen+starry_night``."""
    return f"{Path(content).stem}+{Path(style).stem}"


def per_iteration(seconds: dict[int, float]) -> tuple[float, float]:
    """Start-up seconds and seconds per iteration of a program from the wall seconds of runs of it, by run length:
    the least-squares line through them (with two runs, their difference in time over their difference in length).

    Noise can make the slope useless (not positive); then the longest run's average is taken as the cost
    of an iteration, with no start-up: that overstates the cost, so the peer gets fewer iterations.
    """
    lengths = sorted(seconds)
    mean_n = sum(lengths) / len(lengths)
    mean_s = sum(seconds.values()) / len(lengths)
    spread = sum((n - mean_n) ** 2 for n in lengths)
    step = sum((n - mean_n) * (seconds[n] - mean_s) for n in lengths) / spread if spread else 0.0
    if step <= 0:
        return 0.0, seconds[lengths[-1]] / lengths[-1]
    return max(mean_s - step * mean_n, 0.0), step


def equal_time_iterations(
    budget_s: float, startup_s: float, per_iteration_s: float, minimum: int = MIN_ITERATIONS
) -> int:
    """How many iterations fit in ``budget_s`` seconds of wall time after ``startup_s``, at ``per_iteration_s`` each;
    never fewer than ``minimum``."""
    return max(minimum, math.floor((budget_s - startup_s) / per_iteration_s))


def write_inputs(content: str, style: str, size: int, folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair at ``size`` (longest side, as the main job loads them) as ``content.png`` and ``style.png`` in
    ``folder`` for neural-style-pt; the two tensors."""
    from styleexp import samples
    from styleexp.images import save_image

    images = samples.load(content, size), samples.load(style, size)
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in zip(("content", "style"), images):
        save_image(image, folder / f"{name}.png")
    return images


def run_main(
    content: str, style: str, size: int, device: torch.device, run_dir: Path, overrides: Sequence[str] = ()
) -> dict:
    """The main job on the pair at ``size`` (and ``overrides``, none by default) as a whole process: its wall
    seconds, steps, network passes, precision (as its summary records it) and output; or its error."""
    from styleexp.rundir import FINAL, read_summary

    command = [*STYLEEXP, f"content='{content}'", f"style='{style}'", f"size={size}", "measures.networks=[]",
               f"hydra.run.dir={run_dir}", *(["trainer=cpu"] if device.type == "cpu" else []), *overrides]  # fmt: skip
    seconds, error = timed(command)
    if error:
        return {"program": "styleexp", "error": error}
    summary = read_summary(run_dir)
    return {
        "program": "styleexp",
        "wall_s": seconds,
        "iterations": summary["steps"],
        "passes": summary["evaluations"],
        "converged": summary.get("converged"),
        "precision": summary.get("precision", "fp32"),
        "output": str(Path(run_dir) / FINAL),
    }


def run_peer(checkout: Path, folder: Path, size: int, budget_s: float, model: Path, device: torch.device) -> dict:
    """neural-style-pt on ``folder``'s content.png and style.png at ``size`` for as many iterations as fit in
    ``budget_s`` wall seconds, as timed by two short runs first; or its error.

    A run that misses the budget by more than ``TOLERANCE`` (a busy machine, or start-up noise in the
    short runs) adds its time to the fit and is run again once with the count that fit gives.
    """
    runs = {}
    for iterations in PROBE:
        output = folder / f"probe_{iterations}.png"
        runs[iterations], error = timed(peer_command(checkout, folder, size, iterations, model, device, output), folder)
        if error:
            return {"program": "neural-style-pt", "error": error}
    attempts = 0
    while attempts < 2:
        attempts += 1
        startup, step = per_iteration(runs)
        iterations = equal_time_iterations(budget_s, startup, step)
        output = folder / "peer.png"
        seconds, error = timed(peer_command(checkout, folder, size, iterations, model, device, output), folder)
        if error or not output.is_file():
            return {"program": "neural-style-pt", "error": error or "no output image (its L-BFGS stopped early)"}
        runs[iterations] = seconds
        if abs(seconds - budget_s) <= TOLERANCE * budget_s:
            break
    return {
        "program": "neural-style-pt",
        "wall_s": seconds,
        "iterations": iterations,
        "passes": iterations,  # L-BFGS without line search: one network pass per iteration
        "precision": "fp32",
        "startup_s": startup,
        "seconds_per_iteration": step,
        "attempts": attempts,
        "output": str(output),
    }


def score(output: Path, content: torch.Tensor, style: torch.Tensor, device: torch.device) -> dict[str, float]:
    """``EVALUATOR``'s style and content distances and the speckle of the image in ``output``; lower is better."""
    from styleexp import measures
    from styleexp.images import load_image

    image = load_image(output)
    if image.shape != content.shape:  # the peer rounds the output's sides down, styleexp to the nearest
        image = F.interpolate(image[None], size=content.shape[1:], mode="bilinear", align_corners=False)[0]
    judges = [measures.load(EVALUATOR, device=str(device)), measures.load("speckle")]
    scores = measures.measure(judges, image, content, style)
    return {"style_distance": scores[STYLE], "content_distance": scores[CONTENT], "speckle": scores["speckle"]}


def quality_case(
    checkout: Path,
    pair: tuple[str, str],
    size: int,
    device: torch.device,
    model: Path,
    folder: Path,
    overrides: Sequence[str] = (),
) -> list[dict]:
    """The main job (with ``overrides``) and the peer at equal wall time on ``pair`` at ``size``, each scored; work
    files in ``folder``."""
    content, style = write_inputs(*pair, size, folder)
    case = {"pair": pair_name(*pair), "content": pair[0], "style": pair[1], "size": size}
    main = {**case, **run_main(*pair, size, device, folder / "main", overrides)}
    rows = [main]
    if "error" not in main:
        rows.append({**case, **run_peer(checkout, folder, size, main["wall_s"], model, device)})
    for row in rows:
        if "error" not in row:
            row.update(score(Path(row["output"]), content, style, device))
        print(f"styleexp-bench: {case['pair']} {size}px {row['program']}: {row.get('error') or 'done'}", flush=True)
    return rows


def run(
    checkout: Path, pairs: list[str], sizes: list[int], device: torch.device, out: Path, overrides: Sequence[str] = ()
) -> dict:
    """Every pair at every size; the rows and their table, printed, and a side-by-side image (main job | peer) per
    pair and size in the folder beside ``out`` that is named like it. ``overrides`` go to every main job (the
    benchmark gives none: the main job's defaults; tests shorten it)."""
    figures = out.with_suffix("")
    figures.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = peer_weights(Path(tmp))
        for pair, size in ((parse_pair(text), size) for text in pairs for size in sizes):
            found = quality_case(
                checkout, pair, size, device, model, Path(tmp) / f"{pair_name(*pair)}_{size}", overrides
            )
            outputs = [Path(row["output"]) for row in found if "output" in row]
            if len(outputs) == 2:
                image = side_by_side(outputs, figures / f"{pair_name(*pair)}_{size}px.png")
                for row in found:
                    row["side_by_side"] = str(image)
            for row in found:  # the work folder goes; the side-by-side image keeps the outputs
                row.pop("output", None)
            rows += found
    text = table(rows)
    print(text)
    return {"quality": rows, "table": text, "figures": str(figures)}
