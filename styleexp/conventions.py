"""The write-ups' loss conventions, as switches: an element's loss and layer weights worked out for its actual image.

styleexp's terms are means, so a weight means the same at every size (``docs/losses.md``). The write-ups
weigh their terms otherwise, and these switches give their losses exactly, for the element's image at
each scale, whatever its aspect ratio:

- ``loss_units=gatys``: ``loss.content`` and ``loss.style`` are Gatys et al.'s alpha and beta (write-up 002
  and the paper), of the content term ``1/2 sum (F - P)^2`` and the style term ``sum_l w_l E_l`` with
  ``E_l = sum (G - A)^2 / (4 N_l^2 M_l^2)``. The content term is ours times ``N M / 2`` (N channels, M
  positions of the content layer in this image) and ``E_l`` ours divided by 4 (for a style image seen
  with the output's positions), so the weights become ``alpha N M / 2`` and ``beta / 4``.
- ``style_layers.weighting=positions_squared``: each style layer's weight times ``M_l^2``, its positions in
  the output squared. A mean squared error of the unnormalised Gram matrices ``F F^T`` (write-up 000's
  ``gram_matrix`` in the TensorFlow tutorial's per-layer mean squared error) is ours times ``M_l^2``, for a
  style image seen with the output's positions; so block-1 layers outweigh block-5 ones by ``16^4``.
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig

from styleexp.errors import UserError
from styleexp.extractors import NETWORKS, positions
from styleexp.spec import Spec

UNITS = ("styleexp", "gatys")  # loss_units
WEIGHTINGS = ("equal", "positions_squared")  # style_layers.weighting


def applied(cfg: DictConfig, spec: Spec) -> Spec:
    """``spec`` (its weights as the config gives them) with the loss and layer weights the conventions of ``cfg``
    make of them for its images, and the style loss's unit (none under renormalise=running, where weights are
    relative)."""
    network, shape = cfg.network.name.value, tuple(spec.shape[1:])
    weights, layer_weights = dict(spec.weights), dict(spec.layer_weights)
    if cfg.loss_units.value == "gatys":
        if cfg.renormalise.value != "none":
            raise UserError(
                f"loss_units=gatys gives Gatys et al.'s weights, which renormalise={cfg.renormalise.value} "
                "overrides by dividing each term by its own value; drop one of them"
            )
        if spec.content is not None:
            layer = spec.content_layer
            weights["content"] *= NETWORKS[network].channels(layer) * positions(network, layer, shape) / 2
        weights["style"] /= 4
    if cfg.renormalise.value == "none":  # a weighted sum: loss.style in the Gram loss's units (StyleLoss.weight_unit)
        weights["style"] *= spec.style_loss.weight_unit
    if cfg.style_layers.weighting.value == "positions_squared":
        layer_weights = {layer: w * positions(network, layer, shape) ** 2 for layer, w in layer_weights.items()}
    return dataclasses.replace(spec, weights=weights, layer_weights=layer_weights)
