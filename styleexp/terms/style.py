"""``style``: a style statistic at several layers against the style images', each layer weighted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from styleexp.spec import Spec
from styleexp.statistics import STATISTICS
from styleexp.targets import Targets
from styleexp.terms.term import Term, group, mse, register

BLEND_MODES = ("loss", "statistics")  # how a style term blends several style images


@register
class Style(Term):
    """A style statistic at several layers against the style images', each layer weighted.

    An element with several style images (a blend, weights ``w_k`` summing to 1) is compared with
    the blended statistic ``t = sum_k w_k t_k``. Under ``blend_mode=loss`` its loss is the blend of
    the per-image losses, ``sum_k w_k MSE(s, t_k)``, which for a squared error is
    ``MSE(s, t) + sum_k w_k MSE(t_k, t)``: the same comparison plus a constant ``offset`` (the
    images' spread about their blend), so the two modes optimise alike and report different values.
    """

    name = "style"
    default_weight = 1e-5

    def __init__(
        self,
        elements: Sequence[int],
        weight: Sequence[float],
        statistic: str,
        targets: Mapping[str, torch.Tensor],
        layer_weights: torch.Tensor,
        offsets: torch.Tensor | None = None,
    ):
        super().__init__(elements, weight)
        self.statistic = statistic
        self.style_layers = tuple(targets)
        self.targets = _holder(targets)
        self.register_buffer("layer_weights", layer_weights, persistent=False)  # [n, layers]
        offsets = torch.zeros_like(layer_weights) if offsets is None else offsets
        self.register_buffer("offsets", offsets, persistent=False)  # [n, layers]

    @property
    def layers(self) -> tuple[str, ...]:
        return self.style_layers

    @classmethod
    def layers_for(cls, spec: Spec) -> list[str]:
        return list(spec.style_layers) if spec.styles and spec.weights[cls.name] else []

    @classmethod
    def build(cls, specs: Sequence[Spec], targets: Targets) -> list[Term]:
        groups = group(specs, lambda spec: (spec.statistic, tuple(spec.style_layers)) if cls.layers_for(spec) else None)
        terms = []
        for (statistic, layers), elements in groups.items():
            blended = [{layer: blend(specs[i], targets, layer, statistic) for layer in layers} for i in elements]
            stacked = {layer: torch.cat([element[layer][0] for element in blended]) for layer in layers}
            offsets = torch.tensor([[element[layer][1] for layer in layers] for element in blended])
            layer_weights = torch.tensor([[specs[i].layer_weights[layer] for layer in layers] for i in elements])
            terms.append(
                cls(
                    elements, [specs[i].weights[cls.name] for i in elements], statistic, stacked, layer_weights, offsets
                )
            )
        return terms

    def parts(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor, own: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        statistic = STATISTICS[self.statistic]
        layer_weights, offsets = self.pick(self.layer_weights, own), self.pick(self.offsets, own)
        return {
            layer: layer_weights[:, i]
            * (mse(statistic(features[layer]), self.pick(self.targets.get_buffer(layer), own)) + offsets[:, i])
            for i, layer in enumerate(self.style_layers)
        }


def blend(spec: Spec, targets: Targets, layer: str, statistic: str) -> tuple[torch.Tensor, float]:
    """The blended statistic ``[1, ., C]`` of ``spec``'s style images at ``layer``, and its loss offset (see
    ``Style``)."""
    each = [targets.statistic(style, layer, statistic) for style in spec.styles]
    target = sum(weight * t for weight, t in zip(spec.style_blend, each))
    if spec.blend_mode != "loss" or len(each) == 1:
        return target, 0.0
    return target, float(sum(weight * mse(t, target) for weight, t in zip(spec.style_blend, each)))


def _holder(tensors: Mapping[str, torch.Tensor]) -> nn.Module:
    holder = nn.Module()
    for name, tensor in tensors.items():
        holder.register_buffer(name, tensor, persistent=False)
    return holder
