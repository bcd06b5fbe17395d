"""``content``: activations at one layer against the content image's (their mean squared error)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from styleexp.spec import Spec
from styleexp.statistics import mse
from styleexp.targets import Targets
from styleexp.terms.term import Term, group, register


@register
class Content(Term):
    """Activations at one layer against the content image's."""

    name = "content"
    default_weight = 1.0

    def __init__(self, elements: Sequence[int], weight: Sequence[float], layer: str, target: torch.Tensor):
        super().__init__(elements, weight)
        self.layer = layer
        self.register_buffer("target", target, persistent=False)

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    @classmethod
    def layers_for(cls, spec: Spec) -> list[str]:
        return [spec.content_layer] if spec.content is not None and spec.weights[cls.name] else []

    @classmethod
    def build(cls, specs: Sequence[Spec], targets: Targets) -> list[Term]:
        groups = group(specs, lambda spec: spec.content_layer if cls.layers_for(spec) else None)
        return [
            cls(
                elements,
                [specs[i].weights[cls.name] for i in elements],
                layer,
                torch.cat([targets.activations(specs[i].content, layer) for i in elements]),
            )
            for layer, elements in groups.items()
        ]

    def parts(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor, own: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return {"": mse(features[self.layer], self.pick(self.target, own))}
