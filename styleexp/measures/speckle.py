"""``speckle``: the output's high-frequency energy over its inputs' (above 1: noisier than the images it came from)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from styleexp.measures.evaluator import Evaluator, register

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
GREY = torch.tensor([0.299, 0.587, 0.114])


def high_frequency(image: torch.Tensor) -> float:
    """Mean absolute Laplacian of the grey ``[3, H, W]`` image, in 0-255 grey levels: pixel speckle."""
    grey = GREY @ image.detach().float().cpu().clamp(0, 1).flatten(1) * 255
    return float(F.conv2d(grey.reshape(1, 1, *image.shape[1:]), LAPLACIAN[None, None]).abs().mean())


def speckle(output: torch.Tensor, inputs: Sequence[torch.Tensor]) -> float:
    """The output's high-frequency energy over the largest of its inputs' at the output's size."""
    resized = [
        F.interpolate(
            image[None].float().cpu(), size=output.shape[1:], mode="bilinear", antialias=True, align_corners=False
        )[0]
        for image in inputs
    ]
    return high_frequency(output) / max(high_frequency(image) for image in resized)


@register
class SpeckleEvaluator(Evaluator):
    name = "speckle"
    other = ("speckle",)
    always = True

    def measure(
        self, output: torch.Tensor, content: torch.Tensor | None, style: torch.Tensor | None
    ) -> dict[str, float]:
        inputs = [image for image in (content, style) if image is not None]
        return {"speckle": speckle(output, inputs)} if inputs else {}
