"""``portilla_simoncelli``: a texture evaluator with no learned weights, Portilla & Simoncelli's statistics (plenoptic).

The statistics (steerable-pyramid marginals, auto-correlations, cross-scale and cross-orientation
magnitude correlations; Portilla & Simoncelli 2000, the model Gatys et al. 2015 compared against)
are taken on an opponent-colour decomposition of the image: luminance ``(R+G+B)/sqrt(3)`` and the
two chromatic channels ``(R-G)/sqrt(2)`` and ``(R+G-2B)/sqrt(6)``, so that luminance texture is
counted once rather than three times, as it would be in correlated RGB channels.

Sizes: an image is resized so that its shorter side is at most ``MAX_SIDE`` pixels (the cost grows
with the area), then centre-cropped so both sides are multiples of ``2 ** n``, with ``n`` scales
(at most 4) chosen so that the coarsest band keeps at least ``MIN_BAND`` pixels, which the 7 x 7
auto-correlation window needs: 2 scales at 32 px, 3 at 64, 4 from 128. Any aspect ratio works.
A dither of +-1/2 an 8-bit level (seeded) floors the variances, so flat patterns get finite
statistics.

The distance is the root mean square of the statistics' differences, each divided by its natural
spread: its standard deviation over a reference set (the bundled samples in ``probes.REFERENCE``,
their halves and quarters; the validation tests the measure on the other samples), shipped in
``data/portilla_simoncelli_spread.pt`` (``python -m styleexp.measures.fit_spread`` makes it again).
``style/ps`` is that distance between the output and the style image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from styleexp.measures import probes
from styleexp.measures.evaluator import Evaluator, register

MAX_SIDE = 256
MIN_BAND = 8
MAX_SCALES = 4
SPREAD_FILE = Path(__file__).parents[1] / "data" / "portilla_simoncelli_spread.pt"
OPPONENT = torch.tensor(
    [
        [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
        [1 / math.sqrt(2), -1 / math.sqrt(2), 0.0],
        [1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)],
    ]
)


@dataclass
class Texture:
    """An image prepared for the model (``[3, H, W]``, opponent colours) and its statistics at ``scales`` scales."""

    image: torch.Tensor
    scales: int
    statistics: torch.Tensor  # [3, statistics]


def prepare(image: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` RGB in [0, 1] -> opponent colours, shorter side at most ``MAX_SIDE``, dithered (seeded)."""
    image = image.detach().float().cpu()
    short = min(image.shape[1:])
    if short > MAX_SIDE:
        size = [round(side * MAX_SIDE / short) for side in image.shape[1:]]
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    dither = (torch.rand(image.shape, generator=torch.Generator().manual_seed(0)) - 0.5) / 255
    return torch.einsum("oc,chw->ohw", OPPONENT, (image + dither))


def scales_for(image: torch.Tensor) -> int:
    """How many pyramid scales ``image`` (``[3, H, W]``) supports; 0 if it is too small for any."""
    return min(MAX_SCALES, max(0, int(math.log2(min(image.shape[1:]) / MIN_BAND))))


@lru_cache(maxsize=32)
def _model(height: int, width: int, scales: int) -> torch.nn.Module:
    from plenoptic.models import PortillaSimoncelli  # deferred: plenoptic takes a second to import

    return PortillaSimoncelli((height, width), n_scales=scales)


def statistics(image: torch.Tensor, scales: int) -> torch.Tensor:
    """The model's statistics ``[3, n]`` of a prepared image, centre-cropped to multiples of ``2 ** scales``."""
    unit = 2**scales
    height, width = (side // unit * unit for side in image.shape[1:])
    top, left = (image.shape[1] - height) // 2, (image.shape[2] - width) // 2
    crop = image[:, top : top + height, left : left + width]
    with torch.no_grad():
        return _model(height, width, scales)(crop[None])[0]


def texture(image: torch.Tensor, scales: int | None = None) -> Texture:
    """The statistics of an RGB ``[3, H, W]`` image, at its own number of scales unless given."""
    prepared = prepare(image)
    scales = scales_for(prepared) if scales is None else scales
    if scales < 1:
        raise ValueError(
            f"a {prepared.shape[2]}x{prepared.shape[1]} image is too small for texture statistics (16 px per side at "
            "least)"
        )
    return Texture(prepared, scales, statistics(prepared, scales))


def at_scales(texture: Texture, scales: int) -> Texture:
    return texture if texture.scales == scales else Texture(texture.image, scales, statistics(texture.image, scales))


@cache
def spread(scales: int) -> torch.Tensor:
    """The natural spread ``[3, n]`` of each statistic at ``scales`` scales, from the shipped reference set."""
    return torch.load(SPREAD_FILE, weights_only=True)[scales]


def distance(a: Texture, b: Texture) -> float:
    """Root mean square of the statistics' differences in units of their natural spread; 0 for equal statistics."""
    scales = min(a.scales, b.scales)
    a, b = at_scales(a, scales), at_scales(b, scales)
    return float((((a.statistics - b.statistics) / spread(scales)) ** 2).mean().sqrt())


def reference_spread(
    images: list[torch.Tensor], scales_range: range = range(1, MAX_SCALES + 1)
) -> dict[int, torch.Tensor]:
    """Each statistic's standard deviation over ``images`` and their halves and quarters, for each number of scales.

    A statistic that barely varies over the set is floored at a tenth of the median spread of its
    colour channel, so that no statistic weighs without bound.
    """
    spreads = {}
    pieces = [piece for image in images for piece in (image, *probes.halves(image), *probes.quadrants(image))]
    for scales in scales_range:
        usable = [prepare(piece) for piece in pieces if scales_for(prepare(piece)) >= scales]
        values = torch.stack([statistics(piece, scales) for piece in usable])
        deviation = values.std(dim=0)
        floor = 0.1 * deviation.median(dim=1, keepdim=True).values
        spreads[scales] = torch.maximum(deviation, floor).clamp_min(1e-8)
    return spreads


def reference_images() -> list[torch.Tensor]:
    """The reference set: the bundled samples in ``probes.REFERENCE`` at ``MAX_SIDE`` px."""
    from styleexp import samples

    return [samples.load(name, MAX_SIDE) for name in probes.REFERENCE]


@register
class TextureEvaluator(Evaluator):
    name = "portilla_simoncelli"
    style = ("style/ps",)
    symmetric = frozenset(style)

    def represent(self, image: torch.Tensor) -> Texture:
        return texture(image)

    def style_distances(self, output: Texture, style: Texture) -> dict[str, float]:
        return {"style/ps": distance(output, style)}
