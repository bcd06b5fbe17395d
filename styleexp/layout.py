"""Layout leakage: whether a pure-style synthesis copied where things are in the style image, not only its texture.

At small sizes a deep style layer sees few positions for many channels (relu5_1 at 128 px: 8 x 8 =
64 positions for 512 channels), so its Gram matrix nearly pins the feature map down and the
synthesis can come out as the style image itself, layout included. The measure is

    layout_leakage = d(x, s) / mean over t of d(x, t(s))

with ``d`` the relative squared error of VGG-16 ``relu4_1`` activations (torchvision's weights,
independent of the Caffe networks runs use), ``x`` the output, ``s`` the style image and ``t``
the transforms that move the layout but keep the shape: a 180 degree rotation and the two flips.
1 means the output is no closer to the style image as it is than to it moved (no layout copied);
0 means the output is the style image. A transform that leaves the style image (nearly) unchanged
says nothing about layout and is left out: a single rotation would give 0 / 0 for a centred disc
or a checkerboard, which the flips or the other transforms still tell apart; an image unchanged by
all three has no layout to leak (None).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from styleexp import measures
from styleexp.extractors import NETWORKS

EVALUATOR = "vgg16_torchvision"
LAYER = "relu4_1"
TRANSFORMS = {
    "rotate180": lambda image: image.flip(1, 2),
    "flip_horizontal": lambda image: image.flip(2),
    "flip_vertical": lambda image: image.flip(1),
}
UNCHANGED = 0.05  # a transform moving the style image's activations by less than this (relative) is left out


def leakage(output: torch.Tensor, style: torch.Tensor, weights_dir: str | os.PathLike | None = None) -> float | None:
    """``layout_leakage`` of ``output`` (``[3, H, W]``) against ``style``; None if the style image has no layout to leak."""
    extractor = measures.evaluator(EVALUATOR, str(weights_dir) if weights_dir else None).extractor
    device = next(extractor.buffers()).device
    if style.shape != output.shape:
        style = F.interpolate(style[None], size=output.shape[1:], mode="bilinear", antialias=True, align_corners=False)[
            0
        ]

    def activations(image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return extractor(image[None].to(device))[LAYER]

    features = activations(output)
    upright = activations(style)
    moved = []
    for transform in TRANSFORMS.values():
        other = activations(transform(style))
        if measures.relative_error(other, upright) > UNCHANGED:
            moved.append(measures.relative_error(features, other))
    if not moved:
        return None
    return measures.relative_error(features, upright) / max(sum(moved) / len(moved), 1e-12)


def positions_warning(network: str, layers: list[str], shape: tuple[int, int]) -> str | None:
    """A warning naming the style layers that see fewer positions than they have channels for an image of ``shape``.

    Their Gram matrices (rank at most the number of positions) then nearly determine the feature
    maps, layout included. The warning names the size (longest side) from which every layer has
    enough positions.
    """
    known = NETWORKS[network]

    def positions(layer: str, height: int, width: int) -> int:
        step = known.min_input_size(layer)
        return (height // step) * (width // step)

    height, width = shape
    few = [layer for layer in layers if positions(layer, height, width) < known.channels(layer)]
    if not few:
        return None
    longest = max(height, width)
    size = longest
    while any(
        positions(layer, round(height * size / longest), round(width * size / longest)) < known.channels(layer)
        for layer in few
    ):
        size += 8
    worst = min(few, key=lambda layer: positions(layer, height, width) / known.channels(layer))
    return (
        f"at size={longest} the style layers {', '.join(few)} see fewer positions than channels ({worst}: "
        f"{positions(worst, height, width)} for {known.channels(worst)}): their statistics can copy the style image's "
        f"layout, not only its texture; from size={size} they see enough"
    )
