"""Central moment discrepancy (Zellinger et al. 2017), used as a style loss by Kalischek et al. 2021 ("In the Light of
Feature Distributions: Moment Matching for Neural Style Transfer")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from styleexp.style_losses import StyleLoss, register
from styleexp.style_losses.common import at_least, in_fp32

# Inside each norm's square root: the norm of a difference d is sqrt(|d|^2 + eps), whose gradient d / sqrt(|d|^2 + eps)
# is finite (0) at d = 0, where sqrt's own derivative is infinite (and 0 * inf is NaN); its length stays below 1. The
# value at a match is then sqrt(eps) = 1e-12 per norm, and elsewhere within eps / (2 |d|) of |d|.
NORM_EPS = 1e-24  # still a normal float32: not lost to underflow


@dataclasses.dataclass(frozen=True)
class CmdSettings:
    """``gram.moments``: the highest moment compared, K (1: only the means)."""

    moments: int = 5

    def __post_init__(self) -> None:
        at_least(self.moments, 1, "moments")


def central_moments(flat: torch.Tensor, order: int) -> torch.Tensor:
    """Each channel's mean and central moments ``c_k = mean((x - mean)^k)``, k = 2..order, over the positions of
    ``flat`` ``[n, C, M]``: ``[n, order, C]``, the means first."""
    mean = flat.mean(2)
    centered = flat - mean[..., None]
    return torch.stack([mean, *(centered.pow(k).mean(2) for k in range(2, order + 1))], dim=1)


@register
class CmdLoss(StyleLoss):
    """Central moment discrepancy of the channels' means and central moments (Zellinger et al., 2017).

    The value is ``||mu_f - mu_s|| + sum_{k=2..K} ||c_k(f) - c_k(s)||``, the Euclidean norms (not squared, as in the
    paper) over channels of the differences of each channel's mean and central moments (``central_moments``), as
    Kalischek et al. (2021) match style.

    Without Zellinger et al.'s division of the k-th term by ``(b - a)^k`` for activations bounded in [a, b]: ReLU
    activations have no upper bound, so a higher moment weighs as much more as the activations are large.

    Target: ``[1, K, C]``, the style's means and moments. Not averaged: the moments of a blend of styles are not the
    blend of their moments.
    """

    name = "cmd"
    weight_unit = 2e-7
    Settings = CmdSettings

    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        return central_moments(features.flatten(2), self.settings.moments)

    @in_fp32
    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        own = central_moments(features.flatten(2), self.settings.moments)
        difference = own - torch.cat(list(targets)).to(own.dtype)
        return (difference.square().sum(2) + NORM_EPS).sqrt().sum(1)

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # The centered activations and each power of them (kept for backward), and the target.
        return 4.0 * channels * positions * self.settings.moments + 4.0 * self.settings.moments * channels
