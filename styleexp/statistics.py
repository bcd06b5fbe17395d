"""Style statistics: what of a layer's activations counts as style. One function each, in ``STATISTICS``.

Every statistic maps activations ``F`` of shape ``[N, C, H, W]`` to a ``[N, ., C]`` matrix per image,
normalised by the number of spatial positions ``M = H * W`` so that it does not grow with image size.
A new statistic is one function here, decorated with ``@STATISTICS.register("name")``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from styleexp.registry import Registry


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[n]``: the mean squared error of each row of ``a`` (``[n, ...]``) against ``b`` (one row, or one per row of
    ``a``)."""
    # mse_loss runs in float32 under autocast, as a plain difference would not.
    return F.mse_loss(a, b.expand_as(a), reduction="none").flatten(1).mean(1)


StatisticFn = Callable[[torch.Tensor], torch.Tensor]
STATISTICS: Registry[StatisticFn] = Registry("style statistic")


def _in_fp32(statistic: StatisticFn) -> StatisticFn:
    """Compute ``statistic`` in float32 even under bf16 autocast: its sums over H*W products need the bits."""

    @functools.wraps(statistic)
    def wrapped(features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(features.device.type, enabled=False):
            return statistic(features if features.dtype in (torch.float32, torch.float64) else features.float())

    return wrapped


class _OuterProduct(torch.autograd.Function):
    """``X X^T`` for ``X`` of shape ``[N, C, M]``, with a backward of one matrix product.

    Autograd's own backward makes two products, one of them transposed, and adds the two: at early
    layers that strided add of a ``[C, M]`` gradient costs more than a product. Here
    ``dX = (dG + dG^T) X``.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, flat: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(flat)
        return torch.bmm(flat, flat.transpose(1, 2))

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (flat,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), flat)


@STATISTICS.register("gram")
@_in_fp32
def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``G = F F^T / M``: ``[N, C, H, W] -> [N, C, C]``, ``M = H * W`` spatial positions.

    ``G[i, j]`` is the mean over positions of the product of channels i and j (Gatys et al.'s
    Gram matrix divided by M).
    """
    flat = features.flatten(2)
    return _OuterProduct.apply(flat) / flat.shape[2]


@STATISTICS.register("centered")
@_in_fp32
def centered(features: torch.Tensor) -> torch.Tensor:
    """Centered Gram matrix: the Gram matrix after subtracting each channel's spatial mean.

    ``[N, C, H, W] -> [N, C, C]``, divided by ``M = H * W``: the (biased) covariance of channels.
    """
    flat = features.flatten(2)
    flat = flat - flat.mean(dim=2, keepdim=True)
    return _OuterProduct.apply(flat) / flat.shape[2]


@STATISTICS.register("both")
@_in_fp32
def both(features: torch.Tensor) -> torch.Tensor:
    """The Gram and centered Gram matrices stacked: ``[N, C, H, W] -> [N, 2C, C]``, each divided by M.

    As in the reference write-up (``tf.concat([gram, gram_centered], axis=0)``): matching it fixes
    both the channel means and their covariances.
    """
    return torch.cat([gram(features), centered(features)], dim=1)


@STATISTICS.register("mean_std")
@_in_fp32
def mean_std(features: torch.Tensor) -> torch.Tensor:
    """Each channel's spatial mean and standard deviation: ``[N, C, H, W] -> [N, 2, C]``.

    The first-order statistics AdaIN matches; they ignore how channels co-vary.
    """
    flat = features.flatten(2)
    return torch.stack([flat.mean(dim=2), flat.std(dim=2, unbiased=False)], dim=1)
