"""Maximum mean discrepancy between the image's and the style image's activations (Li et al. 2017, "Demystifying
Neural Style Transfer"): style is the distribution of the C-vectors at a layer's positions, compared through a kernel.

Each position's activations are a point in R^C: ``f_i`` the image's (M of them), ``s_j`` the style image's (M_s).
The squared MMD is the biased V-statistic
``mean_ij k(f_i, f_j) + mean_ij k(s_i, s_j) - 2 mean_ij k(f_i, s_j)``: means over positions, so it does not grow with
image size, and zero when the two sets of points are the same. Li et al. show that Gatys et al.'s Gram loss is this
with the kernel ``(x.y)^2`` (``mmd_poly``'s special case below).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from styleexp.errors import UserError
from styleexp.style_losses import StyleLoss, generator, register
from styleexp.style_losses.common import PerImageLoss, at_least, draw_positions, fixed_positions, in_fp32

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # [C, m], [C, m'] -> [m, m']


def squared_mmd(kernel: Kernel, points: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The biased squared MMD (a scalar) between the points ``[C, m]`` and ``style`` ``[C, m_s]``.

    The style's own term does not depend on the image: it is computed without a graph.
    """
    with torch.no_grad():
        style_term = kernel(style, style).mean()
    return kernel(points, points).mean() + style_term - 2 * kernel(points, style).mean()


@register
class MmdLinearLoss(StyleLoss):
    """Squared MMD with the linear kernel (Li et al., 2017): the squared distance between the channel means.

    With ``k(x, y) = x.y`` the squared MMD is exactly ``||mean_i f_i - mean_j s_j||^2`` (summed over channels), and
    is computed so.

    Target: the style's channel means ``[1, C]``.
    """

    name = "mmd_linear"
    weight_unit = 4e3
    averaged = True  # the mean of a blend of styles is the blend of their means

    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        return features.flatten(2).mean(2)

    @in_fp32
    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        means = torch.cat(list(targets)).to(features.dtype)
        return (features.flatten(2).mean(2) - means).square().sum(1)


@dataclasses.dataclass(frozen=True)
class MmdPolySettings:
    """``gram.degree``, ``gram.offset``: the kernel ``(x.y + offset)^degree``; ``gram.positions``: at most this many
    positions of the image and of the style image enter each step's kernel matrices (``[positions, positions]``)."""

    degree: int = 2
    offset: float = 0.0
    positions: int = 1024

    def __post_init__(self) -> None:
        at_least(self.degree, 1, "degree")
        at_least(self.positions, 1, "positions")


class _SampledMmd(PerImageLoss):
    """The squared MMD over at most ``positions`` positions of each side: with more, a fresh random subset of each is
    drawn every optimiser step (an estimate of the whole sets' MMD whose kernel matrices fit in memory, and whose
    draws over the steps cover every position); with fewer, all of them, exactly and deterministically.

    Target: the style's activations ``[1, C, M_s]`` (positions are drawn at score time).
    """

    stochastic = True

    def kernel(self, target: torch.Tensor) -> Kernel:
        """The kernel this loss compares with, for one image's ``target``."""
        raise NotImplementedError

    def style_points(self, target: torch.Tensor) -> torch.Tensor:
        """The style's points ``[C, M_s]`` held in one image's ``target``."""
        return target[0]

    def score_one(self, flat: torch.Tensor, target: torch.Tensor, seed: int) -> torch.Tensor:
        """One image's points ``[C, M]`` against its target."""
        many = max(flat.shape[1], target.shape[2]) > self.settings.positions
        draw = generator(seed, flat.device) if many else None
        points = draw_positions(flat, self.settings.positions, draw)
        style = draw_positions(self.style_points(target), self.settings.positions, draw)
        return squared_mmd(self.kernel(target), points, style)

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # The kernel matrices: image-image and image-style twice over (the products and their kernel values, kept for
        # backward) and once more in backward; the style's own once, without a graph; the subsets drawn; the target.
        m, m_s = min(positions, self.settings.positions), min(style_positions, self.settings.positions)
        return 4.0 * (3 * m * m + 3 * m * m_s + m_s * m_s + channels * (m + m_s) + channels * style_positions)


@register
class MmdPolyLoss(_SampledMmd):
    """Squared MMD with the kernel (x.y + offset)^degree (Li et al., 2017); degree 2, offset 0: C^2 times gram.

    The plain kernel, not divided by anything: then with ``degree=2, offset=0`` and all positions the value is exactly
    ``||G_f - G_s||_F^2 = C^2 * mean((G_f - G_s)^2)`` for the Gram matrices ``G = F F^T / M``, C^2 times the ``gram``
    loss (``mean_ij (f_i.f_j)^2 = sum_ab G_ab^2``). Its magnitudes grow as activations^(2 degree).
    """

    name = "mmd_poly"
    weight_unit = 4e-6
    Settings = MmdPolySettings

    def kernel(self, target: torch.Tensor) -> Kernel:
        degree, offset = self.settings.degree, self.settings.offset
        return lambda x, y: (x.T @ y + offset).pow(degree)


@dataclasses.dataclass(frozen=True)
class MmdGaussianSettings:
    """``gram.bandwidth``: sigma of the kernel ``exp(-||x - y||^2 / (2 sigma^2))``, None for the median heuristic
    (sigma^2 = the median squared distance between the style's positions); ``gram.positions``: as for ``mmd_poly``."""

    bandwidth: float | None = None
    positions: int = 1024

    def __post_init__(self) -> None:
        at_least(self.positions, 1, "positions")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise UserError(f"gram.bandwidth={self.bandwidth} must be positive, or null for the median heuristic")


@register
class MmdGaussianLoss(_SampledMmd):
    """Squared MMD with a Gaussian kernel (Li et al., 2017), sigma by the median heuristic unless gram.bandwidth.

    ``k(x, y) = exp(-||x - y||^2 / (2 sigma^2))``: the value is in [0, 2] whatever the activations' scale.

    Target: ``[1, C, M_s + 1]``, the style's activations with one more column holding sigma^2 in every channel: the
    bandwidth squared, or by the median heuristic the median of the squared distances between style positions, over a
    fixed subset of at most ``positions`` of them. Only distances above zero count: a flat region of the style (or
    positions that a ReLU zeroes) gives many equal points, whose zeros would make sigma 0; were all zero, sigma^2 is 1.
    The subset is drawn once, in ``target``, with a fixed seed: sigma belongs to the style and stays put while the
    output changes (and the cached target keeps it).
    """

    name = "mmd_gaussian"
    weight_unit = 2e12
    Settings = MmdGaussianSettings

    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        flat = features.flatten(2)
        if self.settings.bandwidth is not None:
            variance = torch.tensor(self.settings.bandwidth**2, dtype=flat.dtype, device=flat.device)
        else:
            subset = fixed_positions(flat[0], self.settings.positions)
            distances = _squared_distances(subset, subset)
            distances = distances[(distances > 0) & ~torch.eye(len(distances), dtype=torch.bool, device=flat.device)]
            variance = distances.median() if len(distances) else torch.ones((), dtype=flat.dtype, device=flat.device)
        return torch.cat([flat, variance.expand(1, flat.shape[1], 1)], dim=2)

    def style_points(self, target: torch.Tensor) -> torch.Tensor:
        return target[0, :, :-1]

    def kernel(self, target: torch.Tensor) -> Kernel:
        scale = -0.5 / target[0, 0, -1]
        return lambda x, y: torch.exp(_squared_distances(x, y) * scale)

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # The products, distances and kernel values of each matrix: one more of each image matrix than mmd_poly's.
        m, m_s = min(positions, self.settings.positions), min(style_positions, self.settings.positions)
        return super().extra_bytes(channels, positions, style_positions) + 4.0 * (m * m + m * m_s)


def _squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||^2`` for the points ``x`` ``[C, m]``, ``y`` ``[C, m']``: ``[m, m']``.

    Expanded as ``|x|^2 + |y|^2 - 2 x.y`` (one product instead of an ``[C, m, m']`` difference); rounding can then
    make a distance slightly negative, hence the clamp.
    """
    return (x.square().sum(0)[:, None] + y.square().sum(0)[None, :] - 2 * x.T @ y).clamp(min=0)
