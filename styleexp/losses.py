"""Content, style and total variation losses. Content and style return per-layer parts for logging.

Normalisation (so weights carry over between image sizes and layer sets):
- content, per layer: mean squared error of activations. Gatys et al.'s ``1/2 sum (F - P)^2``
  equals ours times ``N * M / 2`` (N channels, M positions).
- style, per layer: mean squared error of the statistics (each already divided by M), times the
  layer's weight; weights default to ``1 / number of layers``. For the Gram statistic, Gatys et
  al.'s ``E_l = 1/(4 N^2 M^2) sum (G - A)^2`` equals our unweighted per-layer part divided by 4.
- total variation: mean squared difference between neighbouring pixels.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from styleexp.statistics import Statistic


def content_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per layer in ``targets``: mean squared error between ``features[layer]`` and the target activations."""
    return {layer: F.mse_loss(features[layer], target) for layer, target in targets.items()}


def style_loss(
    features: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    statistic: Statistic,
    layer_weights: Mapping[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """Per layer in ``targets``: ``weight * MSE(statistic(features[layer]), target statistic)``.

    ``targets`` hold precomputed statistics of the style image (``statistic(style features)``);
    the parts sum to the style loss. Missing ``layer_weights`` default to ``1 / len(targets)``.
    """
    weights = layer_weights or {}
    equal = 1.0 / max(len(targets), 1)
    return {
        layer: weights.get(layer, equal) * F.mse_loss(statistic(features[layer]), target)
        for layer, target in targets.items()
    }


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation of ``[B, 3, H, W]``: mean squared difference between horizontal and vertical neighbours."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
