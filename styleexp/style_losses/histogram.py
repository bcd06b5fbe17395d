"""Histogram matching of each channel (Risser et al. 2017, "Stable and Controllable Neural Texture Synthesis and Style
Transfer Using Histogram Losses")."""

from __future__ import annotations

import torch

from styleexp.style_losses import register
from styleexp.style_losses.common import PerImageLoss, in_fp32, quantiles


def remapped(flat: torch.Tensor, ordered: torch.Tensor) -> torch.Tensor:
    """``flat`` ``[C, M]`` with each channel's values replaced by the style's values of the same rank (exact histogram
    matching): the k-th smallest value of a channel becomes the k-th of the style's sorted values ``ordered``
    ``[C, M_s]``, resampled to M quantiles (``quantiles``) when ``M_s != M``. Ties are ranked in sort's order."""
    ranks = flat.argsort(dim=1)
    return torch.empty_like(flat).scatter_(1, ranks, quantiles(ordered, flat.shape[1]))


@register
class HistogramLoss(PerImageLoss):
    """Each channel's values against the style's histogram by exact matching (Risser et al., 2017): 1-D W2 each.

    The value is ``mean((F - R)^2)`` over channels and positions, R the activations ``F`` remapped to the style's
    histogram in each channel (``remapped``), held fixed within a step as Risser et al. do: the gradient is
    ``2 (F - R) / numel``.

    With exact matching R puts the k-th smallest value of a channel on the style's k-th quantile, so the loss is the
    mean over channels of the squared 1-D Wasserstein-2 distance between the image's and the style's values along
    that channel's axis (sorted values paired in order are the optimal transport in 1-D); R changes only where ranks
    do, so the fixed-R gradient is also that distance's own, wherever no values tie.

    Target: the style's values sorted in each channel ``[1, C, M_s]``.
    """

    name = "histogram"
    weight_unit = 1e6

    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        return features.flatten(2).sort(dim=2).values

    def score_one(self, flat: torch.Tensor, target: torch.Tensor, seed: int) -> torch.Tensor:
        """One image's values ``[C, M]`` against the style's sorted values (no draw: ``seed`` unused)."""
        with torch.no_grad():
            matched = remapped(flat, target[0])
        return (flat - matched).square().mean()

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # Float32: the resampled quantiles, the remapped activations, their difference (kept for backward); int64: the
        # ranks, and the sort's own copy of the values; and the target.
        return 4.0 * channels * (3 * positions + style_positions) + 8.0 * channels * positions * 2
