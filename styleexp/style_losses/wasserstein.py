"""Wasserstein-2 distances between the image's and the style image's activations, seen as two point clouds in R^C
(one point per position): between the Gaussians fitted to them (``gaussian_w2``), and averaged over random 1-D
projections (``sliced_w``, Heitz et al. 2021)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from styleexp.style_losses import StyleLoss, generator, register
from styleexp.style_losses.common import PerImageLoss, at_least, in_fp32, quantiles

# Eigenvalues of the product below this share of (the style's mean channel variance)^2 count as that much (see
# GaussianW2Loss): d sqrt(x)/dx = 1 / (2 sqrt(x)) is infinite at 0, where a covariance of fewer positions than
# channels puts some of them, and rounding makes others tiny or negative.
EIGENVALUE_FLOOR = 1e-8


def gaussian_fit(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The means ``[n, C]`` and biased covariances ``[n, C, C]`` over positions of ``flat`` ``[n, C, M]``."""
    mean = flat.mean(2)
    centered = flat - mean[..., None]
    return mean, centered @ centered.mT / flat.shape[2]


@register
class GaussianW2Loss(StyleLoss):
    """Squared Wasserstein-2 distance between Gaussians fitted to the activations (crowsonkb/style-transfer-pytorch).

    The Gaussians are ``N(mu_f, Sigma_f)`` and ``N(mu_s, Sigma_s)``, the means and biased covariances over positions of
    the two point clouds; the distance is
    ``||mu_f - mu_s||^2 + tr Sigma_f + tr Sigma_s - 2 tr (Sigma_s^1/2 Sigma_f Sigma_s^1/2)^1/2``.

    The plain W2^2, summed over channels: crowsonkb's takes means over channels instead (W2^2 / C), adds 1e-4 I to
    both covariances and takes square roots by Newton-Schulz iterations. It does not grow with image size, and is the
    squared distance between the means ``||mu_f - mu_s||^2`` when the covariances are equal.

    Target: ``[1, C + 2, C]``, rows ``mu_s``, then ``Sigma_s^1/2`` (C rows), then ``tr Sigma_s`` in every entry. The
    square root comes from an eigendecomposition in float64 with eigenvalues clamped at 0. The score's
    ``tr (.)^1/2`` is the sum of the square roots of the symmetric product's eigenvalues (float64; only eigenvalues,
    whose gradient ``V diag(g) V^T`` stays finite when they repeat), each clamped at
    ``floor = EIGENVALUE_FLOOR * (tr Sigma_s / C)^2``: a cap of ``1 / (2 sqrt(floor))`` on the gradient of the square
    root, which is infinite at the zero eigenvalues of an image covariance of fewer positions than channels. The
    floor scales with the style, so it means the same whatever the activations' scale; it lowers the value by at most
    ``2 C sqrt(floor)``, i.e. ``2e-4 tr Sigma_s``.
    """

    name = "gaussian_w2"
    weight_unit = 2e3

    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        mean, covariance = gaussian_fit(features.flatten(2).double())
        values, vectors = torch.linalg.eigh(covariance[0])
        root = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
        trace = covariance[0].trace().expand(1, mean.shape[1])
        return torch.cat([mean, root, trace]).to(features.dtype)[None]

    @in_fp32
    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        channels = features.shape[1]
        target = torch.cat(list(targets)).double()
        style_mean, root, style_trace = target[:, 0], target[:, 1 : channels + 1], target[:, channels + 1, 0]
        mean, covariance = gaussian_fit(features.flatten(2))
        product = root @ covariance.double() @ root
        eigenvalues = torch.linalg.eigvalsh((product + product.mT) / 2)
        floor = (EIGENVALUE_FLOOR * (style_trace / channels) ** 2).clamp(min=torch.finfo(torch.float64).tiny)
        cross = eigenvalues.clamp(min=floor[:, None]).sqrt().sum(1)
        trace = covariance.diagonal(dim1=1, dim2=2).sum(1)
        distance = (mean.double() - style_mean).square().sum(1) + trace + style_trace - 2 * cross
        return distance.to(features.dtype)

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # The centered activations (kept for backward); a handful of [C, C] matrices in float64 (the covariance, the
        # products, the eigensolver's workspace and their gradients); the target.
        return 4.0 * channels * positions + 8.0 * 8 * channels**2 + 4.0 * (channels + 2) * channels


@dataclasses.dataclass(frozen=True)
class SlicedWassersteinSettings:
    """``gram.projections``: how many random directions each step projects onto (None: as many as channels)."""

    projections: int | None = None

    def __post_init__(self) -> None:
        at_least(self.projections, 1, "projections")


def directions(channels: int, count: int, draw: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``count`` random unit vectors of R^channels, uniform on the sphere: ``[count, C]``, on ``like``'s device and in
    its dtype."""
    vectors = torch.randn(count, channels, generator=draw, device=like.device, dtype=like.dtype)
    return vectors / vectors.norm(dim=1, keepdim=True)


def sliced_wasserstein(flat: torch.Tensor, style: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """The mean over ``projections`` ``[K, C]`` of the squared 1-D Wasserstein-2 distance between the projected points
    ``flat`` ``[C, M]`` and ``style`` ``[C, M_s]`` (a scalar): the mean squared difference of their sorted
    projections, the style's resampled to M quantiles (``quantiles``) when it has another number of positions."""
    image = (projections @ flat).sort(dim=1).values
    with torch.no_grad():
        target = quantiles((projections @ style).sort(dim=1).values, flat.shape[1])
    return (image - target).square().mean()


@register
class SlicedWassersteinLoss(PerImageLoss):
    """Sliced Wasserstein distance over random directions drawn anew each step (Heitz et al., 2021).

    The squared Wasserstein-2 distance between the projections of the two point clouds onto random directions of
    R^C, averaged over ``projections`` directions (Heitz et al., "A Sliced Wasserstein Loss for Neural Texture
    Synthesis").

    The directions are drawn anew at every optimiser step (from the step's seed), as Heitz et al. do at every
    iteration: a fixed set of directions only compares those marginals, which the image can match exactly (the loss
    driven to 0) while its distribution differs from the style's in every other direction. Redrawn, the loss is in
    expectation the sliced Wasserstein distance, which is zero only for equal distributions.

    Target: the style's activations ``[1, C, M_s]`` (projected at score time).
    """

    name = "sliced_w"
    weight_unit = 1e6
    Settings = SlicedWassersteinSettings
    stochastic = True

    def count(self, channels: int) -> int:
        """How many directions a step draws at a layer of ``channels`` channels."""
        return self.settings.projections or channels

    def score_one(self, flat: torch.Tensor, target: torch.Tensor, seed: int) -> torch.Tensor:
        """One image's points ``[C, M]`` against its target, along the directions its seed draws."""
        projections = directions(len(flat), self.count(len(flat)), generator(seed, flat.device), flat)
        return sliced_wasserstein(flat, target[0], projections)

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # Float32: both projections, their sorted values, the style's resampled and the difference (kept for
        # backward); int64: the sorts' indices; and the target.
        k = self.count(channels)
        return 4.0 * (k * (4 * positions + 2 * style_positions) + channels * style_positions) + 8.0 * k * (
            positions + style_positions
        )
