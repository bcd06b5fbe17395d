"""Gatys et al.'s normalised network (``network.normalisation=gatys``): every filter's mean activation made 1.

"We normalized the network by scaling the weights such that the mean activation of each convolutional
filter over images and positions is equal to one" (Gatys et al.); their loss weights assume it. In a
network of convolutions, ReLUs and max or average pooling, dividing filter c of a convolution (weights
and bias) by its mean m[c], and multiplying the next convolution's weights on channel c by m[c], divides
every later activation of channel c by m[c] and changes nothing else (the ReLU and pooling commute with a
positive factor per channel).

The means are measured with max pooling, as the network was trained, at each convolution's ReLU, over
every position of ``IMAGES`` at ``SIZE`` px (longest side). Gatys et al. used ImageNet images, which do not
ship with styleexp: this is their definition over a stated set that does. They are computed once per
weights (named by the SHA-256 of their values) and cached as JSON in the user cache; a run records the
file, its SHA-256 and the image set. A filter no image of the set activates (mean 0) is kept as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from styleexp import preprocessing, samples
from styleexp.extractors import NETWORKS, build_extractor, layer_names
from styleexp.weights import Weights, features_sha256

NORMALISATIONS = ("none", "gatys")  # network.normalisation
# The bundled photographs and textures: natural images, as ImageNet's are.
IMAGES = (*samples.PHOTOS, *samples.TEXTURES)
SIZE = 256


def filter_means(
    network: str,
    state_dict: Mapping[str, torch.Tensor],
    preprocess: nn.Module,
    images: Sequence[str | torch.Tensor] = IMAGES,
    size: int = SIZE,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Each convolution's mean activation per filter (``{conv name: [C]}``, float64) after its ReLU, over every
    position of ``images`` (sample names, loaded at ``size``, or RGB ``[3, H, W]`` tensors in [0, 1]), max pooling."""
    names = layer_names(network)
    relus = {name: names[names.index(name) + 1] for name in names if name.startswith("conv")}
    extractor = build_extractor(network, list(relus.values()), state_dict, preprocess, "max").to(device)
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(relus, 0)
    for image in images:
        tensor = samples.load(image, size) if isinstance(image, str) else image
        with torch.no_grad():
            features = extractor(tensor[None].to(device))
        for conv, relu in relus.items():
            activation = features[relu].double()
            sums[conv] = sums.get(conv, 0) + activation.sum(dim=(0, 2, 3)).cpu()
            counts[conv] += activation.shape[2] * activation.shape[3]
    return {conv: sums[conv] / counts[conv] for conv in relus}


def normalised(
    network: str, state_dict: Mapping[str, torch.Tensor], means: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``state_dict`` rescaled so that channel c of every layer after convolution ``conv`` is divided by
    ``means[conv][c]`` (1 where that is 0): each filter and its bias divided by its mean, and the next
    convolution's weights on that channel multiplied by it."""
    with torch.device("meta"):
        architecture = NETWORKS[network].architecture("max")
    rescaled = dict(state_dict)
    incoming = None  # the previous convolution's means: its channels reach this one divided by them
    for name, (index, module) in zip(layer_names(network), architecture.named_children()):
        if not isinstance(module, nn.Conv2d):
            continue
        mean = means[name].to(torch.float64)
        scale = torch.where(mean > 0, mean, torch.ones_like(mean))
        weight = state_dict[f"{index}.weight"].double() / scale[:, None, None, None]
        if incoming is not None:
            weight = weight * incoming[None, :, None, None]
        rescaled[f"{index}.weight"] = weight.float()
        rescaled[f"{index}.bias"] = (state_dict[f"{index}.bias"].double() / scale).float()
        incoming = scale
    return rescaled


def gatys(weights: Weights, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``weights``' state dict normalised, and what a run records of it: the cached means' file and SHA-256, the
    image set and size, and how many filters it never activates."""
    network, state_dict, preprocessing_name = weights.network, weights.state_dict, weights.preprocessing
    digest = features_sha256(state_dict)
    path = cache_dir() / f"{network}-{preprocessing_name}-{digest[:16]}.json"
    stated = {"network": network, "weights_sha256": digest, "preprocessing": preprocessing_name}
    stated |= {"images": list(IMAGES), "size": SIZE, "pooling": "max"}
    try:
        saved = json.loads(path.read_text())
        means = {conv: torch.tensor(values, dtype=torch.float64) for conv, values in saved["means"].items()}
        stale = {key: saved[key] for key in stated} != stated
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: measured again
        stale = True
    if stale:
        means = filter_means(network, state_dict, preprocessing.get(preprocessing_name), IMAGES, SIZE, device)
        _write(path, {**stated, "means": {conv: mean.tolist() for conv, mean in means.items()}})
    facts = {
        "kind": "gatys",
        "images": list(IMAGES),
        "size": SIZE,
        "means": str(path),
        "means_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "dead_filters": sum(int((mean <= 0).sum()) for mean in means.values()),
    }
    return normalised(network, state_dict, means), facts


def cache_dir() -> Path:
    """Where the means are kept: ``$XDG_CACHE_HOME/styleexp/normalisation`` (default ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "styleexp" / "normalisation"


def _write(path: Path, data: dict[str, Any]) -> None:
    """``data`` as JSON at ``path``, atomically: parallel jobs measuring the same means each replace it whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)
