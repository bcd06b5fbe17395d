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
NORM_EPS = 1e-24


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
    """Central moment discrepancy of the channels' means and central moments, in the style's units (Zellinger 2017).

    The value is ``sum_{k=1..K} ||(c_k(f) - c_k(s)) / sigma_s^k||``, the Euclidean norms over channels (not squared, as
    in the paper) of the differences of each channel's mean (k = 1) and central moments (``central_moments``), each
    divided by the style's spread at that layer to the k-th power (the root mean variance of its channels), as
    Kalischek et al. (2021) match style.

    Zellinger et al. divide the k-th term by ``(b - a)^k`` for activations bounded in [a, b]; ReLU activations have no
    upper bound, so the style's own spread at the layer stands in for the range. Unscaled, a deep layer's fifth moment
    reaches 1e18 and its gradient overflows (every run of two of three bundled styles turned NaN at its first step);
    scaled, every term is a number of the style's standard deviations (to the k), whatever the layer. One spread per
    layer, not per channel: a channel the style hardly activates would weigh its differences by its near-zero spread
    to the 5th power, and the loss would chase those channels alone.

    Target: ``[1, K + 1, C]``, the style's means and moments, then the layer's spread in every column. Not averaged:
    the moments of a blend of styles are not the blend of their moments.
    """

    name = "cmd"
    weight_unit = 9e7
    Settings = CmdSettings

    # In float64: a deep layer's activations reach 1e4, whose 5th power is past float32's range once squared.
    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        flat = features.flatten(2).double()
        # One spread for the layer, the channels' root mean variance: a channel the style hardly activates would
        # otherwise weigh its differences by its own near-zero spread to the 5th power.
        spread = flat.var(2, unbiased=False).mean(1, keepdim=True).sqrt().clamp(min=1e-12).expand(-1, flat.shape[1])
        return torch.cat([central_moments(flat, self.settings.moments), spread[:, None]], dim=1)

    @in_fp32
    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        own = central_moments(features.flatten(2).double(), self.settings.moments)
        target = torch.cat(list(targets)).double()
        powers = torch.arange(1, self.settings.moments + 1, device=own.device, dtype=own.dtype)[None, :, None]
        difference = (own - target[:, :-1]) / target[:, -1:] ** powers
        return (difference.square().sum(2) + NORM_EPS).sqrt().sum(1).to(features.dtype)

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # The centered activations and each power of them in float64 (kept for backward), and the target.
        return 8.0 * channels * positions * self.settings.moments + 8.0 * (self.settings.moments + 1) * channels
