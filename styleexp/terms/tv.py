"""``tv``: total variation of the image itself, neighbouring pixels that differ (1 for uniform noise)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from styleexp.spec import Spec
from styleexp.targets import Targets
from styleexp.terms.term import Term, register

NOISE_TV = 1 / 3  # tv_loss of uniform noise: E[(a - b)^2] = 1/6 for each of the two directions


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation of ``[N, 3, H, W]`` per element ``[N]``: mean squared difference of horizontal and vertical
    neighbours."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).flatten(1).mean(1) + dy.pow(2).flatten(1).mean(1)


@register
class TotalVariation(Term):
    """Total variation of the image itself: neighbouring pixels that differ, 1 for uniform noise."""

    name = "tv"
    default_weight = 0.3
    relative = True

    @classmethod
    def build(cls, specs: Sequence[Spec], targets: Targets) -> list[Term]:
        elements = [i for i, spec in enumerate(specs) if spec.weights[cls.name]]
        return [cls(elements, [specs[i].weights[cls.name] for i in elements])] if elements else []

    def parts(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor, own: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return {"": tv_loss(image) / NOISE_TV}
