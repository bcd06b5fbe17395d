"""Fair measures: every output scored by one fixed network and one fixed set of definitions.

A run's own final loss favours whatever it optimised (its network, statistic, layers), so reports
compare runs with these instead. All distances are relative squared errors,
``||a - b||^2 / ||b||^2``, so layers and statistics of very different magnitudes weigh alike:

- ``style/<statistic>`` for ``gram``, ``centered``, ``both`` and ``mean_std``: the mean over
  ``STYLE_LAYERS`` of the distance between the output's statistic and the style image's;
- ``content/<CONTENT_LAYER>``: the distance between the output's and the content image's activations;
- ``ssim``: structural similarity of the output to the content image, in pixels (1 is identical).

The network is VGG-19 with its Caffe ImageNet weights and max pooling, whatever the run used.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from skimage.metrics import structural_similarity

from styleexp import preprocessing, statistics
from styleexp.extractors import Extractor, build_extractor
from styleexp.weights import load_weights

NETWORK, WEIGHTS, POOLING = "vgg19", "caffe", "max"
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT_LAYER = "relu4_2"
STYLE_STATISTICS = ["gram", "centered", "both", "mean_std"]
NAMES = [f"style/{name}" for name in STYLE_STATISTICS] + [f"content/{CONTENT_LAYER}", "ssim"]


def evaluation_network(weights_dir: str | os.PathLike | None = None) -> Extractor:
    """The fixed network every output is measured with."""
    weights = load_weights(NETWORK, WEIGHTS, directory=weights_dir)
    return build_extractor(NETWORK, STYLE_LAYERS + [CONTENT_LAYER], weights.state_dict, preprocessing.get(weights.preprocessing), POOLING)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b||^2 / ||b||^2``: 0 when equal, 1 when ``a`` is zero."""
    return float((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12))


@torch.no_grad()
def measure(
    network: Extractor, output: torch.Tensor, content: torch.Tensor | None, style: torch.Tensor | None
) -> dict[str, float | None]:
    """The ``NAMES`` measures of ``output`` (``[3, H, W]`` in [0, 1]); None where an input image is missing."""
    features = network(output[None])
    scores: dict[str, float | None] = dict.fromkeys(NAMES)
    if style is not None:
        style_features = network(style[None])
        for name in STYLE_STATISTICS:
            statistic = statistics.get(name)
            distances = [relative_error(statistic(features[layer]), statistic(style_features[layer])) for layer in STYLE_LAYERS]
            scores[f"style/{name}"] = float(np.mean(distances))
    if content is not None:
        content_features = network(content[None])
        scores[f"content/{CONTENT_LAYER}"] = relative_error(features[CONTENT_LAYER], content_features[CONTENT_LAYER])
        scores["ssim"] = ssim(output, content)
    return scores


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Structural similarity of two ``[3, H, W]`` images in [0, 1] (scikit-image, 7x7 windows, per channel)."""
    if a.shape != b.shape:
        b = torch.nn.functional.interpolate(b[None], size=a.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]
    return float(structural_similarity(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0))
