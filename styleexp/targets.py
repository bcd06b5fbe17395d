"""What the image is optimised toward, computed once from the content and style images."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from styleexp.statistics import Statistic
from styleexp.vgg import VGGFeatures


@dataclass
class Targets:
    """``content``: {layer: activations [1, C, H, W]}; ``style``: {layer: statistic [1, ., C]}. Either may be empty."""

    content: dict[str, torch.Tensor]
    style: dict[str, torch.Tensor]


@torch.no_grad()
def compute_targets(
    extractor: VGGFeatures,
    content: torch.Tensor | None,
    style: torch.Tensor | None,
    content_layer: str,
    style_layers: list[str],
    statistic: Statistic,
) -> Targets:
    """Run the extractor once per given image (``[3, H, W]`` in [0, 1]) and keep what the losses compare to."""
    device = next(extractor.buffers()).device
    content_targets, style_targets = {}, {}
    if content is not None:
        content_targets = {content_layer: extractor(content[None].to(device))[content_layer]}
    if style is not None:
        features = extractor(style[None].to(device))
        style_targets = {layer: statistic(features[layer]) for layer in style_layers}
    return Targets(content_targets, style_targets)
