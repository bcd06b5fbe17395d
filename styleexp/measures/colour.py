"""``colour``: how far the output's colours are from the style image's, whatever the layout.

The sliced Wasserstein-2 distance of their pixels in CIELAB, which is built so that equal distances
look about equally different (1 is a just noticeable difference, delta E). The pixel colours are
projected on ``DIRECTIONS`` fixed random directions; each projection's ``QUANTILES`` quantiles are
compared, so images of any size compare. 0 is the same colour distribution.
"""

from __future__ import annotations

import torch

from styleexp.measures.evaluator import Evaluator, register

DIRECTIONS, QUANTILES = 64, 128


@register
class ColourEvaluator(Evaluator):
    name = "colour"
    style = ("colour",)
    symmetric = frozenset(style)
    always = True

    def __init__(self, weights_dir: str | None = None, device: str = "cpu") -> None:
        super().__init__(weights_dir, device)
        directions = torch.randn(DIRECTIONS, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        self.directions = directions / directions.norm(dim=1, keepdim=True)
        self.levels = (torch.arange(QUANTILES, dtype=torch.float64) + 0.5) / QUANTILES

    def represent(self, image: torch.Tensor) -> torch.Tensor:
        from skimage.color import rgb2lab  # deferred: scikit-image takes a second to import

        pixels = image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        lab = torch.from_numpy(rgb2lab(pixels)).reshape(-1, 3)
        return torch.quantile(lab.double() @ self.directions.T, self.levels, dim=0)  # [quantiles, directions]

    def style_distances(self, output: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
        return {"colour": float((output - style).pow(2).mean().sqrt())}
