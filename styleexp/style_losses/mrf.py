"""Markov random field loss on patches of activations (Li & Wand 2016, "Combining Markov Random Fields and
Convolutional Neural Networks for Image Synthesis", CNNMRF; pystiche's ``MRFLoss``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from styleexp.style_losses import StyleLoss, register
from styleexp.style_losses.common import at_least, in_fp32

# The most elements of the similarity matrix made at once (64 MiB in float32): the image's patches are matched in
# chunks of rows, so that a large style's [P, P_s] matrix never exists whole.
SIMILARITY_ELEMENTS = 2**24


@dataclasses.dataclass(frozen=True)
class MrfSettings:
    """``gram.patch_size``: the side of a patch, in positions; ``gram.stride``: the step between patches, of the image's
    and of the style's alike.

    Stride 2 by default for cost: it quarters both the image's and the style's number of patches, so the matching
    (proportional to their product) costs a sixteenth of stride 1's, while 3x3 patches at stride 2 still overlap and
    cover every position. Li & Wand take every patch (stride 1).
    """

    patch_size: int = 3
    stride: int = 2

    def __post_init__(self) -> None:
        at_least(self.patch_size, 1, "patch_size")
        at_least(self.stride, 1, "stride")


def patches(features: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """The ``size`` x ``size`` patches of activations ``[n, C, H, W]`` taken every ``stride`` positions, flattened:
    ``[n, P, C * size * size]``.

    A map narrower than a patch (the deepest layers of a small image: 2 x 2 positions at relu5_1 of a 32 px image) is
    first padded to one patch by repeating its border, so that every layer has patches of the one size its style
    image's patches have.
    """
    short = [max(0, size - side) for side in features.shape[2:]]
    if any(short):
        features = F.pad(features, (0, short[1], 0, short[0]), mode="replicate")
    return F.unfold(features, size, stride=stride).transpose(1, 2)


def nearest(image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """For each of the image's patches ``[P, D]``, the index of the style's patch ``[P_s, D]`` most like it by
    normalised cross-correlation (the cosine of the angle between them): ``[P]``, not differentiable.

    A patch of zeros is as like every style patch (cosine 0) and takes the first.
    """
    with torch.no_grad():
        style = F.normalize(style, dim=1)
        rows = max(1, SIMILARITY_ELEMENTS // len(style))
        return torch.cat([(F.normalize(chunk, dim=1) @ style.T).argmax(1) for chunk in image.split(rows)])


@register
class MrfLoss(StyleLoss):
    """Patches of activations against their nearest style patches (Li & Wand, 2016: CNNMRF).

    Each of the image's patches is matched to its nearest style patch (``nearest``), and the value is the mean over
    the image's patches of the mean squared difference to its match (a mean over every patch element).

    The match is a fixed target within a step (an argmax has no gradient), and a new one each step as the image
    changes. Target: the style's patches ``[1, P_s, C * patch_size^2]``.
    """

    name = "mrf"
    weight_unit = 8e5
    Settings = MrfSettings

    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        return patches(features, self.settings.patch_size, self.settings.stride)

    @in_fp32
    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        values = []
        for image, target in zip(patches(features, self.settings.patch_size, self.settings.stride), targets):
            style = target[0].to(image.dtype)
            values.append((image - style[nearest(image, style)]).square().mean())
        return torch.stack(values)

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        # Float32: the image's patches, their matches and the difference (kept for backward); the style's patches
        # (the target) and their normalised copy; the similarity chunk. Int64: the matches' indices.
        count, style_count = (math.ceil(n / self.settings.stride**2) for n in (positions, style_positions))
        size = channels * self.settings.patch_size**2
        similarity = min(count * style_count, SIMILARITY_ELEMENTS)
        return 4.0 * (3 * count * size + 2 * style_count * size + similarity) + 8.0 * count
