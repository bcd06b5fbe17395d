"""What ``styleexp-bench --quality`` shows: its Markdown table and a side-by-side image of the two outputs."""

from __future__ import annotations

from pathlib import Path

import torch

from styleexp.images import load_image, save_image

GAP = 4  # white pixels between the images of a side-by-side
COLUMNS = ("pair", "size", "program", "precision", "wall s", "iterations/steps", "network passes",
           "style distance", "content distance", "speckle")  # fmt: skip
LEGEND = (
    "Lower is better for the last three columns. Style distance: mean over relu1_1..relu5_1 of the relative squared "
    "error of the Gram matrix to the style image's; content distance: relative squared error of the relu4_2 "
    "activations to the content photo's; both in VGG-16 with torchvision's ImageNet weights, a network neither "
    "program optimises (both optimise VGG-19 Caffe). Speckle: the output's mean absolute Laplacian over the larger "
    "of its inputs' (1: as noisy as they are). neural-style-pt ran for as many L-BFGS iterations as fit in "
    "styleexp's wall time."
)


def side_by_side(paths: list[Path], out: Path) -> Path:
    """The images in ``paths`` left to right on white, top-aligned, ``GAP`` pixels apart, as a PNG in ``out``."""
    images = [load_image(path) for path in paths]
    height = max(image.shape[1] for image in images)
    width = sum(image.shape[2] for image in images) + GAP * (len(images) - 1)
    canvas = torch.ones(3, height, width)
    left = 0
    for image in images:
        canvas[:, : image.shape[1], left : left + image.shape[2]] = image
        left += image.shape[2] + GAP
    return save_image(canvas, out)


def table(rows: list[dict]) -> str:
    """A Markdown table of ``--quality`` rows, with what each measure is and that lower is better."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        where = f"| {r['pair']} | {r['size']} | {r['program']} |"
        if "error" in r:
            lines.append(f"{where} {r['error']} |" + " |" * (len(COLUMNS) - 4))
            continue
        converged = " (converged)" if r.get("converged") else ""
        lines.append(
            f"{where} {r['precision']} | {r['wall_s']:.1f} | {r['iterations']}{converged} | {r['passes']} | "
            f"{r['style_distance']:.4g} | {r['content_distance']:.4g} | {r['speckle']:.2f} |"
        )
    return "\n".join(lines) + "\n\n" + LEGEND
