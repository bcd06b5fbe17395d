"""Negative controls of the validation: distances that know nothing of texture or content.

A test that a mean-colour distance or a pixel distance passes does not show that a measure sees
texture or content, so the validation scores these beside every measure: they must fail the style
tests, and a measure that does no better than them is marked weak (``validation.reasons``). They are
no evaluator a run can choose (not registered).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleexp.measures.evaluator import Evaluator


def mean_colour(a: torch.Tensor, b: torch.Tensor) -> float:
    """Euclidean distance between the mean RGB colours of two ``[3, H, W]`` images in [0, 1]."""
    return float((a.mean(dim=(1, 2)) - b.mean(dim=(1, 2))).norm())


def pixels(a: torch.Tensor, b: torch.Tensor) -> float:
    """Root mean square difference of two ``[3, H, W]`` images in [0, 1], pixel by pixel (``b`` resized to ``a``)."""
    if a.shape != b.shape:
        b = F.interpolate(b[None], size=a.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]
    return float((a - b).pow(2).mean().sqrt())


class Controls(Evaluator):
    """The controls as an evaluator: both against the style image; the mean colour against the content image (a pixel
    distance is a crude content measure, not a control of one)."""

    name = "control"
    style = ("style/mean_colour", "style/pixels")
    content = ("content/mean_colour",)
    symmetric = frozenset((*style, *content))

    def style_distances(self, output: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
        return {"style/mean_colour": mean_colour(output, style), "style/pixels": pixels(output, style)}

    def content_distances(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, float]:
        return {"content/mean_colour": mean_colour(output, content)}
