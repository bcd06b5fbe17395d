"""Evaluators that are ImageNet networks: ``<network>_<source>`` (``vgg19_caffe``, ``vgg16_torchvision``, ...).

One is registered for every network the project knows and every weights source. It uses max
pooling whatever the run used. ``style/<statistic>`` for each of ``STATISTICS`` is the mean over
``STYLE_LAYERS`` of the relative squared error ``||a - b||^2 / ||b||^2`` between the output's
statistic and the style image's; ``content/relu4_2`` the same error between the output's and the
content image's activations. ``style/sliced_w`` is the sliced Wasserstein distance of the two images' activations
at each style layer, relative as the others are: the mean squared difference of their sorted projections on
``PROJECTIONS`` fixed random directions (the same for every image) over the style's mean squared projection; images
of different sizes compare through the style's quantiles at the output's positions.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from styleexp import preprocessing
from styleexp.extractors import NETWORKS, build_extractor
from styleexp.measures.evaluator import Evaluator, register, relative_error
from styleexp.statistics import STATISTICS as STATISTIC_FUNCTIONS
from styleexp.style_losses.common import quantiles
from styleexp.style_losses.wasserstein import directions
from styleexp.weights import SOURCES, load_weights

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
STATISTICS = ("gram", "centered", "both", "mean_std")
PROJECTIONS = 128  # directions per layer: at least the channels of the first layers; drawn once from PROJECTION_SEED
PROJECTION_SEED = 0


class NetworkEvaluator(Evaluator):
    """An ImageNet network's activations: style statistics at ``STYLE_LAYERS``, content at ``CONTENT_LAYER``."""

    network: ClassVar[str]
    source: ClassVar[str]
    style = (*(f"style/{name}" for name in STATISTICS), "style/sliced_w")
    content = (f"content/{CONTENT_LAYER}",)

    def __init__(self, weights_dir: str | None = None, device: str = "cpu") -> None:
        super().__init__(weights_dir, device)
        weights = load_weights(self.network, self.source, directory=weights_dir)
        layers = [*STYLE_LAYERS, CONTENT_LAYER]
        preprocess = preprocessing.get(weights.preprocessing)
        self.extractor = build_extractor(self.network, layers, weights.state_dict, preprocess).to(device)

    @torch.no_grad()
    def represent(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The content layer's activations and every statistic at every style layer, keyed ``layer`` and
        ``statistic/layer``."""
        features = self.extractor(image[None].to(self.device))
        represented = {CONTENT_LAYER: features[CONTENT_LAYER]}
        for name in STATISTICS:
            represented.update(
                {f"{name}/{layer}": STATISTIC_FUNCTIONS[name](features[layer]) for layer in STYLE_LAYERS}
            )
        represented.update({f"sliced_w/{layer}": sorted_projections(features[layer]) for layer in STYLE_LAYERS})
        return represented

    def style_distances(self, output: dict[str, torch.Tensor], style: dict[str, torch.Tensor]) -> dict[str, float]:
        distances = {
            f"style/{name}": float(
                np.mean([relative_error(output[f"{name}/{layer}"], style[f"{name}/{layer}"]) for layer in STYLE_LAYERS])
            )
            for name in STATISTICS
        }
        sliced = [
            relative_error(output[key], quantiles(style[key], output[key].shape[1]))
            for key in (f"sliced_w/{layer}" for layer in STYLE_LAYERS)
        ]
        return {**distances, "style/sliced_w": float(np.mean(sliced))}

    def content_distances(self, output: dict[str, torch.Tensor], content: dict[str, torch.Tensor]) -> dict[str, float]:
        return {self.content[0]: relative_error(output[CONTENT_LAYER], content[CONTENT_LAYER])}


for _network in NETWORKS:
    for _source in SOURCES:
        _name = f"{_network}_{_source}"
        register(type(_name, (NetworkEvaluator,), {"name": _name, "network": _network, "source": _source}))


def sorted_projections(features: torch.Tensor) -> torch.Tensor:
    """``[P, M]``: activations ``[1, C, H, W]`` projected on ``PROJECTIONS`` fixed unit directions in ``R^C`` (drawn
    from ``PROJECTION_SEED``, so every image is seen along the same ones), each sorted over the ``M`` positions."""
    flat = features[0].flatten(1).float()
    drawn = directions(len(flat), PROJECTIONS, torch.Generator().manual_seed(PROJECTION_SEED), flat.cpu())
    return (drawn.to(flat.device) @ flat).sort(dim=1).values
