"""``style``: a style loss (``style_losses/``) at several layers against the style images', each layer weighted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from styleexp.spec import Spec
from styleexp.statistics import mse
from styleexp.style_losses import StyleLoss
from styleexp.targets import Targets
from styleexp.terms.term import Term, group, register

BLEND_MODES = ("loss", "statistics")  # how a style term blends several style images


@register
class Style(Term):
    """A style loss at several layers against the style images', each layer weighted.

    An element compares with ``slots`` weighted targets per layer: its one style image's, or for a blend (weights
    ``w_k`` summing to 1) either the blended target ``t = sum_k w_k t_k`` (``blend_mode=statistics``, for a loss whose
    targets average) or each style image's own, its loss then ``sum_k w_k loss(s, t_k)`` (``blend_mode=loss``). For a
    squared error between statistics the latter is ``MSE(s, t) + sum_k w_k MSE(t_k, t)``: the same comparison plus a
    constant ``offset`` (the images' spread about their blend), so a blend costs one comparison and the two modes
    optimise alike. A stochastic loss draws anew at each optimiser step (``next_step``), from each element's seed.
    """

    name = "style"
    default_weight = 1e-5

    def __init__(
        self,
        elements: Sequence[int],
        weight: Sequence[float],
        loss: StyleLoss,
        targets: Mapping[str, list[list[torch.Tensor]]],
        slot_weights: torch.Tensor,
        layer_weights: torch.Tensor,
        offsets: torch.Tensor,
        seeds: Sequence[int],
    ):
        super().__init__(elements, weight)
        self.loss = loss
        self.style_layers = tuple(targets)
        self.slots = slot_weights.shape[1]
        self.targets = _holder(targets)
        self.seeds = list(seeds)
        self.draw = 0
        self.register_buffer("slot_weights", slot_weights, persistent=False)  # [n, slots]
        self.register_buffer("layer_weights", layer_weights, persistent=False)  # [n, layers]
        self.register_buffer("offsets", offsets, persistent=False)  # [n, layers]

    @property
    def layers(self) -> tuple[str, ...]:
        return self.style_layers

    @classmethod
    def layers_for(cls, spec: Spec) -> list[str]:
        return list(spec.style_layers) if spec.styles and spec.weights[cls.name] else []

    @classmethod
    def build(cls, specs: Sequence[Spec], targets: Targets) -> list[Term]:
        groups = group(
            specs, lambda spec: (spec.style_loss.key, tuple(spec.style_layers)) if cls.layers_for(spec) else None
        )
        terms = []
        for (_, layers), elements in groups.items():
            loss = specs[elements[0]].style_loss
            blended = [{layer: blend(specs[i], targets, layer) for layer in layers} for i in elements]
            slots = max(len(element[layers[0]][0]) for element in blended)
            slot_weights = torch.zeros(len(elements), slots)
            for row, element in enumerate(blended):
                weights = element[layers[0]][0]
                slot_weights[row, : len(weights)] = torch.tensor(weights)
            padded = {
                layer: [_padded(element[layer][1], slots) for element in blended] for layer in layers
            }  # an element with fewer style images repeats its first, at weight 0
            offsets = torch.tensor([[element[layer][2] for layer in layers] for element in blended])
            layer_weights = torch.tensor([[specs[i].layer_weights[layer] for layer in layers] for i in elements])
            weight = [specs[i].weights[cls.name] for i in elements]
            seeds = [specs[i].seed for i in elements]
            terms.append(cls(elements, weight, loss, padded, slot_weights, layer_weights, offsets, seeds))
        return terms

    def next_step(self) -> bool:
        if not self.loss.stochastic:
            return False
        self.draw += 1
        return True

    def parts(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor, own: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        rows = range(len(self.elements)) if own is None else own.tolist()
        layer_weights, offsets = self.pick(self.layer_weights, own), self.pick(self.offsets, own)
        slot_weights = self.pick(self.slot_weights, own)
        parts = {}
        for i, layer in enumerate(self.style_layers):
            value = offsets[:, i]
            for slot in range(self.slots):
                targets = [self.targets.get_buffer(_name(layer, row, slot)) for row in rows]
                seeds = [_seed(self.seeds[row], i, slot, self.draw) for row in rows]
                score = self.loss.score(features[layer], targets, seeds)
                value = value + (score if self.slots == 1 else slot_weights[:, slot] * score)
            parts[layer] = layer_weights[:, i] * value
        return parts


def blend(spec: Spec, targets: Targets, layer: str) -> tuple[list[float], list[torch.Tensor], float]:
    """What ``spec``'s element compares with at ``layer``: the weights and targets (``[1, ...]`` each) of its slots,
    and its loss offset (see ``Style``)."""
    loss = spec.style_loss
    each = [targets.style(style, layer, loss) for style in spec.styles]
    if len(each) == 1:
        return [1.0], each, 0.0
    if spec.blend_mode == "loss" and not loss.squared_error:
        return list(spec.style_blend), each, 0.0
    target = sum(weight * t for weight, t in zip(spec.style_blend, each))
    if spec.blend_mode != "loss":
        return [1.0], [target], 0.0
    return [1.0], [target], float(sum(weight * mse(t, target) for weight, t in zip(spec.style_blend, each)))


def _padded(targets: list[torch.Tensor], slots: int) -> list[torch.Tensor]:
    return targets + [targets[0]] * (slots - len(targets))


def _name(layer: str, row: int, slot: int) -> str:
    return f"{layer}_{row}_{slot}"


def _seed(seed: int, layer: int, slot: int, draw: int) -> int:
    """An element's seed for one layer, slot and draw: distinct streams, the same whatever batch it runs in."""
    return hash((seed, layer, slot, draw)) & (2**63 - 1)


def _holder(targets: Mapping[str, list[list[torch.Tensor]]]) -> nn.Module:
    """The targets as non-persistent buffers (they follow the term to its device), one per layer, element and slot."""
    holder = nn.Module()
    for layer, rows in targets.items():
        for row, slots in enumerate(rows):
            for slot, tensor in enumerate(slots):
                holder.register_buffer(_name(layer, row, slot), tensor, persistent=False)
    return holder
