"""Fair measures: every output scored by fixed evaluators and one fixed set of definitions.

A run's own final loss favours whatever it optimised (its network, statistic, layers), so runs are
compared with these instead. An evaluator is an ImageNet network with its weights, named
``<network>_<source>`` (``vgg19_caffe``, ``vgg16_torchvision``), used with max pooling whatever the
run used. All distances are relative squared errors ``||a - b||^2 / ||b||^2``, so layers and
statistics of very different magnitudes weigh alike (0 is a match):

- ``style/<statistic>`` for ``gram``, ``centered``, ``both`` and ``mean_std``: the mean over
  ``STYLE_LAYERS`` of the distance between the output's statistic and the style image's;
- ``content/relu4_2``: the distance between the output's and the content image's activations;
- ``ssim``: structural similarity of the output to the content image, in pixels (1 is identical;
  no network).

The first evaluator's measures have these plain names; every other evaluator's carry its name in
front (``vgg16_torchvision/style/gram``). A measure taken with the network that produced an image
favours the statistic that network matched, so two evaluators are the default.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np
import torch
from skimage.metrics import structural_similarity

from styleexp import preprocessing
from styleexp.errors import UserError
from styleexp.extractors import NETWORKS, Extractor, build_extractor
from styleexp.statistics import STATISTICS
from styleexp.weights import SOURCES, load_weights

DEFAULT_EVALUATORS = ("vgg19_caffe", "vgg16_torchvision")
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT_LAYER = "relu4_2"
STYLE_STATISTICS = ["gram", "centered", "both", "mean_std"]
STYLE = [f"style/{name}" for name in STYLE_STATISTICS]
CONTENT = [f"content/{CONTENT_LAYER}"]
HIGHER_IS_BETTER = {"ssim"}


class Evaluator:
    """A fixed network that scores an output against its content and style images."""

    def __init__(self, name: str, extractor: Extractor):
        self.name = name
        self.extractor = extractor

    @torch.no_grad()
    def measure(self, output: torch.Tensor, content: torch.Tensor | None, style: torch.Tensor | None) -> dict[str, float]:
        """Its measures of ``output`` (``[3, H, W]`` in [0, 1]), for whichever of the inputs are given."""
        device = next(self.extractor.buffers()).device
        features = self.extractor(output[None].to(device))
        scores = {}
        if style is not None:
            style_features = self.extractor(style[None].to(device))
            for name in STYLE_STATISTICS:
                statistic = STATISTICS[name]
                distances = [relative_error(statistic(features[layer]), statistic(style_features[layer])) for layer in STYLE_LAYERS]
                scores[f"style/{name}"] = float(np.mean(distances))
        if content is not None:
            content_features = self.extractor(content[None].to(device))
            scores[f"content/{CONTENT_LAYER}"] = relative_error(features[CONTENT_LAYER], content_features[CONTENT_LAYER])
        return scores


@functools.lru_cache(maxsize=None)
def evaluator(name: str, weights_dir: str | None = None, device: str = "cpu") -> Evaluator:
    """The evaluator called ``name`` (``<network>_<source>``), built once per process."""
    network, _, source = name.rpartition("_")
    if network not in NETWORKS or source not in SOURCES:
        raise UserError(
            f"unknown evaluator {name!r} in measures.networks; name one as NETWORK_SOURCE, e.g. {', '.join(DEFAULT_EVALUATORS)} "
            f"(networks: {', '.join(NETWORKS)}; sources: {', '.join(SOURCES)})"
        )
    weights = load_weights(network, source, directory=weights_dir)
    extractor = build_extractor(network, STYLE_LAYERS + [CONTENT_LAYER], weights.state_dict, preprocessing.get(weights.preprocessing))
    return Evaluator(name, extractor.to(device))


def evaluators(names: Sequence[str], weights_dir: str | os.PathLike | None = None, device: str = "cpu") -> list[Evaluator]:
    return [evaluator(name, str(weights_dir) if weights_dir else None, device) for name in names]


def measure(
    judges: Sequence[Evaluator], output: torch.Tensor, content: torch.Tensor | None, style: torch.Tensor | None
) -> dict[str, float]:
    """Every measure of ``output`` that applies: the first evaluator's under plain names, the others' prefixed, and ``ssim``."""
    scores = {}
    for i, judge in enumerate(judges):
        prefix = "" if i == 0 else f"{judge.name}/"
        scores.update({prefix + key: value for key, value in judge.measure(output, content, style).items()})
    if content is not None:
        scores["ssim"] = ssim(output, content)
    return scores


def names(evaluator_names: Sequence[str]) -> list[str]:
    """Every measure name the evaluators give, in report order: the first evaluator's, ``ssim``, then the others'."""
    first = [*STYLE, *CONTENT, "ssim"] if evaluator_names else ["ssim"]
    return first + [f"{name}/{key}" for name in evaluator_names[1:] for key in (*STYLE, *CONTENT)]


def default_objective(mode: str) -> str:
    """The summary key a sweeper minimises unless told otherwise: a style distance, or the content distance for reconstruction."""
    return f"measure/{CONTENT[0]}" if mode == "reconstruction" else f"measure/{STYLE[0]}"


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b||^2 / ||b||^2``: 0 when equal, 1 when ``a`` is zero."""
    return float((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Structural similarity of two ``[3, H, W]`` images in [0, 1] (scikit-image, 7x7 windows, per channel)."""
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.shape != b.shape:
        b = torch.nn.functional.interpolate(b[None], size=a.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]
    return float(structural_similarity(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0))
