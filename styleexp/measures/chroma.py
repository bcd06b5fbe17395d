"""``chroma``: how far the output's chrominance (YIQ's I and Q) is from the content's, pixel by pixel (0: its
colours)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleexp.colors import chroma_distance
from styleexp.measures.evaluator import Evaluator, register


@register
class ChromaEvaluator(Evaluator):
    name = "chroma"
    content = ("chroma",)
    symmetric = frozenset(content)
    of_colour = frozenset(content)
    always = True

    def content_distances(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, float]:
        if content.shape != output.shape:
            content = F.interpolate(
                content[None], size=output.shape[1:], mode="bilinear", antialias=True, align_corners=False
            )[0]
        return {"chroma": chroma_distance(output, content)}
