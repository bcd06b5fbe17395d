"""Fair measures: every output scored by fixed evaluators and one fixed set of definitions.

A run's own final loss favours whatever it optimised (its network, statistic, layers), so runs are
compared with these instead. Evaluators:

- ``<network>_<source>`` (``vgg19_caffe``, ``vgg16_torchvision``): an ImageNet network with its
  weights, used with max pooling whatever the run used. ``style/<statistic>`` for ``gram``,
  ``centered``, ``both`` and ``mean_std`` is the mean over ``STYLE_LAYERS`` of the relative squared
  error ``||a - b||^2 / ||b||^2`` between the output's statistic and the style image's;
  ``content/relu4_2`` the same error between the output's and the content image's activations.
- ``portilla_simoncelli``: texture statistics with no learned weights (``portilla_simoncelli.py``):
  ``style/ps``, the distance between the output's statistics and the style image's in units of
  their natural spread.

The first evaluator's measures have these plain names; every other evaluator's carry its name in
front (``vgg16_torchvision/style/gram``). A measure taken with the network that produced an image
favours the statistic that network matched, so evaluators of different origins are the default.
Four measures need no network and keep their names: ``ssim``, the structural similarity of the
output to the content image in pixels (1 is identical); ``chroma``, how far the output's chrominance
is from the content's, pixel by pixel (``colors.chroma_distance``: 0 is the content's colours);
``colour``, how far the output's colours are
from the style image's (``ColourEvaluator``); and, for pure style, ``layout_leakage`` (``layout.py``:
1 when the output copied none of the style image's layout, 0 for the style image itself).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from skimage.metrics import structural_similarity

from styleexp import colors, portilla_simoncelli, preprocessing
from styleexp.errors import UserError
from styleexp.extractors import NETWORKS, Extractor, build_extractor
from styleexp.statistics import STATISTICS
from styleexp.weights import SOURCES, load_weights

DEFAULT_EVALUATORS = ("vgg19_caffe", "vgg16_torchvision", "portilla_simoncelli")
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT_LAYER = "relu4_2"
STYLE_STATISTICS = ["gram", "centered", "both", "mean_std"]
STYLE = [f"style/{name}" for name in STYLE_STATISTICS]
CONTENT = [f"content/{CONTENT_LAYER}"]
HIGHER_IS_BETTER = {"ssim", "layout_leakage"}
COLOUR_DIRECTIONS, COLOUR_QUANTILES = 64, 128


class Evaluator:
    """Scores images against references: ``represent`` an image once, then compare representations.

    ``style`` and ``content`` name the measures it gives; ``symmetric`` those whose distance does
    not depend on which image is the reference.
    """

    name: str
    style: ClassVar[list[str]] = []
    content: ClassVar[list[str]] = []
    symmetric: ClassVar[set[str]] = set()

    def represent(self, image: torch.Tensor) -> Any:
        """What the measures compare, for an RGB ``[3, H, W]`` image in [0, 1]."""
        raise NotImplementedError

    def style_distances(self, output: Any, style: Any) -> dict[str, float]:
        return {}

    def content_distances(self, output: Any, content: Any) -> dict[str, float]:
        return {}

    def measure(
        self, output: torch.Tensor, content: torch.Tensor | None, style: torch.Tensor | None
    ) -> dict[str, float]:
        """Its measures of ``output`` for whichever of the inputs are given."""
        represented = self.represent(output)
        scores = {}
        if style is not None and self.style:
            scores.update(self.style_distances(represented, self.represent(style)))
        if content is not None and self.content:
            scores.update(self.content_distances(represented, self.represent(content)))
        return scores


class FeatureEvaluator(Evaluator):
    """An ImageNet network's activations: style statistics at ``STYLE_LAYERS``, content at ``CONTENT_LAYER``."""

    style = STYLE
    content = CONTENT

    def __init__(self, name: str, extractor: Extractor):
        self.name = name
        self.extractor = extractor

    @torch.no_grad()
    def represent(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The content layer's activations and every style statistic at every style layer, keyed ``layer`` and ``statistic/layer``."""
        device = next(self.extractor.buffers()).device
        features = self.extractor(image[None].to(device))
        represented = {CONTENT_LAYER: features[CONTENT_LAYER]}
        for name in STYLE_STATISTICS:
            represented.update({f"{name}/{layer}": STATISTICS[name](features[layer]) for layer in STYLE_LAYERS})
        return represented

    def style_distances(self, output: dict[str, torch.Tensor], style: dict[str, torch.Tensor]) -> dict[str, float]:
        return {
            f"style/{name}": float(
                np.mean([relative_error(output[f"{name}/{layer}"], style[f"{name}/{layer}"]) for layer in STYLE_LAYERS])
            )
            for name in STYLE_STATISTICS
        }

    def content_distances(self, output: dict[str, torch.Tensor], content: dict[str, torch.Tensor]) -> dict[str, float]:
        return {CONTENT[0]: relative_error(output[CONTENT_LAYER], content[CONTENT_LAYER])}


class TextureEvaluator(Evaluator):
    """Portilla-Simoncelli texture statistics: no learned weights."""

    name = "portilla_simoncelli"
    style = ["style/ps"]
    symmetric = {"style/ps"}

    def represent(self, image: torch.Tensor) -> portilla_simoncelli.Texture:
        return portilla_simoncelli.texture(image)

    def style_distances(
        self, output: portilla_simoncelli.Texture, style: portilla_simoncelli.Texture
    ) -> dict[str, float]:
        return {"style/ps": portilla_simoncelli.distance(output, style)}


class StructureEvaluator(Evaluator):
    """Structural similarity to the content image, in pixels: no network."""

    name = "ssim"
    content = ["ssim"]
    symmetric = {"ssim"}

    def represent(self, image: torch.Tensor) -> torch.Tensor:
        return image.detach().float().cpu()

    def content_distances(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, float]:
        return {"ssim": ssim(output, content)}


class ColourEvaluator(Evaluator):
    """The colours of the output against the style image's: the sliced Wasserstein-2 distance of their pixels in CIELAB.

    CIELAB is built so that equal distances look about equally different (1 is a just noticeable
    difference, delta E). The pixel colours are projected on ``COLOUR_DIRECTIONS`` fixed random
    directions; each projection's ``COLOUR_QUANTILES`` quantiles are compared, so images of any
    size compare. 0 is the same colour distribution, whatever the layout.
    """

    name = "colour"
    style = ["colour"]
    symmetric = {"colour"}

    def __init__(self) -> None:
        directions = torch.randn(COLOUR_DIRECTIONS, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        self.directions = directions / directions.norm(dim=1, keepdim=True)
        self.levels = (torch.arange(COLOUR_QUANTILES, dtype=torch.float64) + 0.5) / COLOUR_QUANTILES

    def represent(self, image: torch.Tensor) -> torch.Tensor:
        from skimage.color import rgb2lab  # deferred: scikit-image takes a second to import

        lab = torch.from_numpy(rgb2lab(image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy())).reshape(
            -1, 3
        )
        return torch.quantile(lab.double() @ self.directions.T, self.levels, dim=0)  # [quantiles, directions]

    def style_distances(self, output: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
        return {"colour": float((output - style).pow(2).mean().sqrt())}


def kind(name: str) -> type[Evaluator]:
    """The class of the evaluator called ``name``, without building it."""
    if name == TextureEvaluator.name:
        return TextureEvaluator
    network, _, source = name.rpartition("_")
    if network not in NETWORKS or source not in SOURCES:
        raise UserError(
            f"unknown evaluator {name!r} in measures.networks; use {TextureEvaluator.name} or NETWORK_SOURCE, e.g. "
            f"{', '.join(DEFAULT_EVALUATORS[:2])} (networks: {', '.join(NETWORKS)}; sources: {', '.join(SOURCES)})"
        )
    return FeatureEvaluator


@functools.cache
def evaluator(name: str, weights_dir: str | None = None, device: str = "cpu") -> Evaluator:
    """The evaluator called ``name``, built once per process."""
    if kind(name) is TextureEvaluator:
        return TextureEvaluator()
    network, _, source = name.rpartition("_")
    weights = load_weights(network, source, directory=weights_dir)
    extractor = build_extractor(
        network, STYLE_LAYERS + [CONTENT_LAYER], weights.state_dict, preprocessing.get(weights.preprocessing)
    )
    return FeatureEvaluator(name, extractor.to(device))


def evaluators(
    names: Sequence[str], weights_dir: str | os.PathLike | None = None, device: str = "cpu"
) -> list[Evaluator]:
    return [evaluator(name, str(weights_dir) if weights_dir else None, device) for name in names]


def measure(
    judges: Sequence[Evaluator],
    output: torch.Tensor,
    content: torch.Tensor | None,
    style: torch.Tensor | None,
    weights_dir: str | os.PathLike | None = None,
    seconds: dict[str, float] | None = None,
) -> dict[str, float]:
    """Every measure of ``output`` that applies: the first evaluator's under plain names, the others' prefixed,
    ``ssim`` where there is a content image, ``layout_leakage`` for pure style. ``seconds`` gets each one's cost."""
    from styleexp import layout  # here: layout.py builds on this module's evaluators

    seconds = {} if seconds is None else seconds
    scores = {}
    for i, judge in enumerate(judges):
        started = time.perf_counter()
        prefix = "" if i == 0 else f"{judge.name}/"
        scores.update({prefix + key: value for key, value in judge.measure(output, content, style).items()})
        seconds[judge.name] = round(time.perf_counter() - started, 3)
    if judges and content is not None:
        scores["ssim"] = ssim(output, content)
        scores["chroma"] = colors.chroma_distance(output, content)
    if judges and style is not None:
        scores.update(COLOUR.measure(output, None, style))
    if judges:
        scores["speckle"] = speckle(output, [image for image in (content, style) if image is not None])
    if judges and content is None and style is not None:
        started = time.perf_counter()
        leakage = layout.leakage(output, style, weights_dir)
        if leakage is not None:
            scores["layout_leakage"] = leakage
        seconds["layout_leakage"] = round(time.perf_counter() - started, 3)
    return scores


def names(evaluator_names: Sequence[str]) -> list[str]:
    """Every measure name the evaluators give, in report order: the first evaluator's, the plain ones, then the others'."""
    if not evaluator_names:
        return []
    first = kind(evaluator_names[0])
    ordered = [*first.style, *first.content, "ssim", "chroma", "colour", "speckle", "layout_leakage"]
    return ordered + [
        f"{name}/{key}" for name in evaluator_names[1:] for key in (*kind(name).style, *kind(name).content)
    ]


def default_objective(mode: str) -> str:
    """The summary key a sweeper minimises unless told otherwise: a style distance, or the content distance for reconstruction."""
    return f"measure/{CONTENT[0]}" if mode == "reconstruction" else f"measure/{STYLE[0]}"


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b||^2 / ||b||^2``: 0 when equal, 1 when ``a`` is zero."""
    return float((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12))


def high_frequency(image: torch.Tensor) -> float:
    """Mean absolute Laplacian of the grey ``[3, H, W]`` image, in 0-255 grey levels: pixel speckle."""
    grey = torch.tensor([0.299, 0.587, 0.114]) @ image.detach().float().cpu().clamp(0, 1).flatten(1) * 255
    grey = grey.reshape(1, 1, *image.shape[1:])
    laplacian = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
    return float(torch.nn.functional.conv2d(grey, laplacian).abs().mean())


def speckle(output: torch.Tensor, inputs: Sequence[torch.Tensor]) -> float:
    """The output's high-frequency energy over the largest of its inputs' at the output's size: above 1 is noisier than they are."""
    resized = [
        torch.nn.functional.interpolate(
            image[None].float().cpu(), size=output.shape[1:], mode="bilinear", antialias=True, align_corners=False
        )[0]
        for image in inputs
    ]
    return high_frequency(output) / max(high_frequency(image) for image in resized)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Structural similarity of two ``[3, H, W]`` images in [0, 1] (scikit-image, 7x7 windows, per channel)."""
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if a.shape != b.shape:
        b = torch.nn.functional.interpolate(
            b[None], size=a.shape[1:], mode="bilinear", antialias=True, align_corners=False
        )[0]
    return float(
        structural_similarity(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0)
    )


COLOUR = ColourEvaluator()
