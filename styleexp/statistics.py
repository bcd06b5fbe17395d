"""Style statistics: what of a layer's activations counts as style. One function each, in a registry.

Every statistic maps activations ``F`` of shape ``[B, C, H, W]`` to a ``[B, ., C]`` matrix per image,
normalised by the number of spatial positions ``M = H * W`` so that it does not grow with image size.
Adding a statistic is one function and one line in ``STATISTICS``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from styleexp.errors import UserError

Statistic = Callable[[torch.Tensor], torch.Tensor]


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``G = F F^T / M``: ``[B, C, H, W] -> [B, C, C]``, ``M = H * W`` spatial positions.

    ``G[i, j]`` is the mean over positions of the product of channels i and j (Gatys et al.'s
    Gram matrix divided by M).
    """
    flat = features.flatten(2)
    return torch.bmm(flat, flat.transpose(1, 2)) / flat.shape[2]


def centered(features: torch.Tensor) -> torch.Tensor:
    """Centered Gram matrix: the Gram matrix after subtracting each channel's spatial mean.

    ``[B, C, H, W] -> [B, C, C]``, divided by ``M = H * W``: the (biased) covariance of channels.
    """
    flat = features.flatten(2)
    flat = flat - flat.mean(dim=2, keepdim=True)
    return torch.bmm(flat, flat.transpose(1, 2)) / flat.shape[2]


def both(features: torch.Tensor) -> torch.Tensor:
    """The Gram and centered Gram matrices stacked: ``[B, C, H, W] -> [B, 2C, C]``, each divided by M.

    As in the reference write-up (``tf.concat([gram, gram_centered], axis=0)``): matching it fixes
    both the channel means and their covariances.
    """
    return torch.cat([gram(features), centered(features)], dim=1)


def mean_std(features: torch.Tensor) -> torch.Tensor:
    """Each channel's spatial mean and standard deviation: ``[B, C, H, W] -> [B, 2, C]``.

    The first-order statistics AdaIN matches; they ignore how channels co-vary.
    """
    flat = features.flatten(2)
    return torch.stack([flat.mean(dim=2), flat.std(dim=2, unbiased=False)], dim=1)


STATISTICS: dict[str, Statistic] = {"gram": gram, "centered": centered, "both": both, "mean_std": mean_std}


def get(name: str) -> Statistic:
    """The statistic called ``name``."""
    if name not in STATISTICS:
        raise UserError(f"unknown style statistic {name!r}; choose one of {', '.join(STATISTICS)}")
    return STATISTICS[name]
