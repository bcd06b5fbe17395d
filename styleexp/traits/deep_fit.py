"""``deep_fit``: how closely the deep layers' style statistics were matched (write-up 000: past style layers 5-6
"things don't seem to change much. This might be an optimization problem").

A plateau is an optimisation artefact if the layers past the sixth are asked for but left unmatched;
it is real if they are matched (or come matched with the shallow ones) and simply change little.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from styleexp import preprocessing
from styleexp.extractors import Extractor, build_extractor, layer_names
from styleexp.measures.evaluator import relative_error
from styleexp.statistics import both
from styleexp.traits.trait import TRAITS, Trait
from styleexp.weights import load_weights

NETWORK, SOURCE = "vgg16", "caffe"  # the write-up's network and weights: its 13 layers are the claim's numbering
DEEP = tuple(name for name in layer_names(NETWORK) if name.startswith("relu"))[6:]  # relu3_3 ... relu5_3


def deep_fit(image: torch.Tensor, style: torch.Tensor, weights_dir: str | None = None) -> float:
    """The share of the way from noise to the style image that ``image``'s statistics came at the layers past the
    sixth, averaged over them: 1 matched, 0 no closer than noise, below 0 further.

    At each layer of ``DEEP`` (VGG-16 with the Caffe weights, max pooling), ``1 - e(image) / e(noise)``
    with ``e`` the relative squared error ``||a - b||^2 / ||b||^2`` of the Gram and centered Gram
    matrices together (``both``, the write-up's choice) against the style image's, and ``noise``
    uniform noise of the image's shape (seed 0), what a synthesis from noise starts as. ``[3, H, W]``
    images; the style is resized to the image's shape.
    """
    style = style.detach().float().cpu()
    if style.shape != image.shape:
        resized = F.interpolate(style[None], size=image.shape[1:], mode="bilinear", antialias=True, align_corners=False)
        style = resized[0].contiguous()
    target = _style_statistics(style.numpy().tobytes(), tuple(style.shape), weights_dir)
    reached = _statistics(image, weights_dir)
    start = _noise_statistics(tuple(image.shape), weights_dir)
    fits = [
        1 - relative_error(reached[layer], target[layer]) / relative_error(start[layer], target[layer])
        for layer in DEEP
    ]
    return sum(fits) / len(fits)


@functools.cache
def _extractor(weights_dir: str | None) -> Extractor:
    weights = load_weights(NETWORK, SOURCE, directory=weights_dir)
    return build_extractor(NETWORK, DEEP, weights.state_dict, preprocessing.get(weights.preprocessing))


@torch.no_grad()
def _statistics(image: torch.Tensor, weights_dir: str | None) -> dict[str, torch.Tensor]:
    features = _extractor(weights_dir)(image.detach().float().cpu()[None])
    return {layer: both(features[layer]) for layer in DEEP}


# A sweep holds a few style images and shapes, each measured against many syntheses: both are kept by value.
@functools.lru_cache(maxsize=8)
def _style_statistics(pixels: bytes, shape: tuple[int, ...], weights_dir: str | None) -> dict[str, torch.Tensor]:
    return _statistics(torch.frombuffer(bytearray(pixels), dtype=torch.float32).reshape(shape), weights_dir)


@functools.lru_cache(maxsize=8)
def _noise_statistics(shape: tuple[int, ...], weights_dir: str | None) -> dict[str, torch.Tensor]:
    return _statistics(torch.rand(shape, generator=torch.Generator().manual_seed(0)), weights_dir)


TRAITS.add(
    "deep_fit",
    Trait(deep_fit, "000: the plateau past style layers 5-6 may be an optimisation artefact", ("style",)),
)
