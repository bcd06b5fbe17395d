"""``ssim``: the structural similarity of the output to the content image, in pixels (1 is identical)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleexp.measures.evaluator import Evaluator, register


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Structural similarity of two ``[3, H, W]`` images in [0, 1] (scikit-image, 7x7 windows, per channel).

    ``b`` is resized to ``a``'s shape where they differ.
    """
    from skimage.metrics import structural_similarity  # deferred: scikit-image takes a second to import

    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if a.shape != b.shape:
        b = F.interpolate(b[None], size=a.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]
    return float(
        structural_similarity(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0)
    )


@register
class StructureEvaluator(Evaluator):
    name = "ssim"
    content = ("ssim",)
    higher_is_better = frozenset(content)
    symmetric = frozenset(content)
    always = True

    def content_distances(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, float]:
        return {"ssim": ssim(output, content)}
