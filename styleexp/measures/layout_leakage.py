"""``layout_leakage``, for pure style: whether a pure-style synthesis copied where things are in the style image, not
only its texture.

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

import torch
import torch.nn.functional as F

from styleexp.measures.evaluator import Evaluator, load, register, relative_error

EVALUATOR = "vgg16_torchvision"
LAYER = "relu4_1"
TRANSFORMS = {
    "rotate180": lambda image: image.flip(1, 2),
    "flip_horizontal": lambda image: image.flip(2),
    "flip_vertical": lambda image: image.flip(1),
}
UNCHANGED = 0.05  # a transform moving the style image's activations by less than this (relative) is left out


def leakage(
    output: torch.Tensor, style: torch.Tensor, weights_dir: str | None = None, device: str = "cpu"
) -> float | None:
    """``layout_leakage`` of ``output`` (``[3, H, W]``) against ``style``; None if the style image has no layout to
    leak."""
    extractor = load(EVALUATOR, weights_dir, device).extractor
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
        if relative_error(other, upright) > UNCHANGED:
            moved.append(relative_error(features, other))
    if not moved:
        return None
    return relative_error(features, upright) / max(sum(moved) / len(moved), 1e-12)


@register
class LayoutEvaluator(Evaluator):
    name = "layout_leakage"
    other = ("layout_leakage",)
    higher_is_better = frozenset(other)
    always = True

    def measure(
        self, output: torch.Tensor, content: torch.Tensor | None, style: torch.Tensor | None
    ) -> dict[str, float]:
        if content is not None or style is None:  # a measure of pure style only
            return {}
        value = leakage(output, style, self.weights_dir, self.device)
        return {} if value is None else {"layout_leakage": value}
