"""Loss terms as data: each term compares one representation of the image to its targets.

The optimised loss of batch element i is ``sum over terms t of weight_t[i] * value_t[i]``; each
term's value is the sum of its named parts (a style term's parts are its layers). Logged keys
follow the terms: ``loss/<name>`` (before the weight), ``loss/<name>/<part>`` and ``loss/total``.

Normalisation (so weights carry over between image sizes and layer sets):
- content: mean squared error of activations at one layer. Gatys et al.'s ``1/2 sum (F - P)^2``
  equals ours times ``N * M / 2`` (N channels, M positions).
- style, per layer: mean squared error of the statistics (each already divided by M), times the
  layer's weight; weights default to ``1 / number of layers``. For the Gram statistic, Gatys et
  al.'s ``E_l = 1/(4 N^2 M^2) sum (G - A)^2`` equals our unweighted per-layer part divided by 4.
- tv (total variation): mean squared difference between neighbouring pixels, divided by that of
  uniform noise (1/3), so 1 is as speckled as noise. Its weight is relative: ``loss.tv`` times the
  element's other weighted terms at its initial image. ``loss.tv=0.3`` thus makes a noise image's
  speckle cost 30 % of what the content and style terms cost at the start, whatever the image
  size, the layers or the loss weights; a coarse-to-fine run keeps the unit of its first scale.

A new term is one class here, decorated with ``@register``: it says which layers it
reads, how it is built from the batch's specs (computing its targets once), and its parts. Its
weight becomes the config key ``loss.<name>`` (default ``default_weight``), its value the logged
``loss/<name>`` and a report column.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from styleexp.registry import Registry
from styleexp.spec import Spec
from styleexp.statistics import STATISTICS
from styleexp.targets import Targets

NOISE_TV = 1 / 3  # tv_loss of uniform noise: E[(a - b)^2] = 1/6 for each of the two directions


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation of ``[N, 3, H, W]`` per element ``[N]``: mean squared difference of horizontal and vertical neighbours."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).flatten(1).mean(1) + dy.pow(2).flatten(1).mean(1)


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # mse_loss runs in float32 under autocast, as a plain difference would not.
    return F.mse_loss(a, b.expand_as(a), reduction="none").flatten(1).mean(1)


class Term(nn.Module):
    """One loss term over some elements of a batch of images ``[N, 3, H, W]``.

    ``elements`` are the batch indices it applies to and ``weight`` (``[n]``) its loss weight for
    each. ``parts(features, image, own)`` gives its unweighted value for the elements it is shown:
    ``features`` and ``image`` hold exactly those, in order, and ``own`` says which of the term's
    elements they are (indices into ``elements``; None: all of them), so that per-element buffers
    are taken with ``pick``. The value comes as named parts ``{part: [n]}`` that sum to it (``""``
    names the only part of a term that has one). Targets and weights are non-persistent buffers:
    they follow the module to its device, and the image stays the only thing a checkpoint holds.
    """

    name: ClassVar[str]  # the config key loss.<name> and the logged loss/<name>
    default_weight: ClassVar[float]
    # A relative term's weight multiplies the element's other weighted terms at its first evaluation.
    relative: ClassVar[bool] = False

    def __init__(self, elements: Sequence[int], weight: Sequence[float]):
        super().__init__()
        self.elements = list(elements)
        self.register_buffer("weight", torch.tensor(list(weight), dtype=torch.float32), persistent=False)
        self.register_buffer("index", torch.tensor(self.elements), persistent=False)
        self.reference: torch.Tensor | None = None  # a relative term's unit per element, NaN until first evaluated

    @property
    def layers(self) -> tuple[str, ...]:
        """The extractor layers ``parts`` reads."""
        return ()

    @classmethod
    def layers_for(cls, spec: Spec) -> list[str]:
        """The layers a term of this kind would read for ``spec``, before any is built (the extractor needs them first)."""
        return []

    @classmethod
    def build(cls, specs: Sequence[Spec], targets: Targets) -> list[Term]:
        """This kind's terms for a batch of ``specs``: one per group of elements that can share one."""
        raise NotImplementedError

    def parts(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor, own: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @staticmethod
    def pick(buffer: torch.Tensor, own: torch.Tensor | None) -> torch.Tensor:
        """The rows of a per-element ``buffer`` for the elements ``own`` (all if None)."""
        return buffer if own is None else buffer.index_select(0, own)

    def locate(self, rows: Sequence[int]) -> tuple[torch.Tensor | None, slice | torch.Tensor] | None:
        """Which of this term's elements are among the batch elements ``rows`` (sorted): their indices into
        ``elements`` (None: all) and their positions in ``rows`` (a slice where contiguous); None if none is."""
        where = {element: position for position, element in enumerate(rows)}
        present = [j for j, element in enumerate(self.elements) if element in where]
        if not present:
            return None
        positions = [where[self.elements[j]] for j in present]
        own = None if len(present) == len(self.elements) else torch.tensor(present, device=self.index.device)
        if positions == list(range(positions[0], positions[0] + len(positions))):
            return own, slice(positions[0], positions[0] + len(positions))
        return own, torch.tensor(positions, device=self.index.device)


TERMS: Registry[type[Term]] = Registry("loss term")
BLEND_MODES = ("loss", "statistics")  # how a style term blends several style images (``Style``)


def register(kind: type[Term]) -> type[Term]:
    """Class decorator: every run gets terms of ``kind``, weighted by ``loss.<kind.name>``."""
    return TERMS.add(kind.name, kind)


def group(specs: Sequence[Spec], key: Callable[[Spec], Hashable | None]) -> dict[Hashable, list[int]]:
    """Element indices by ``key(spec)``, in first-seen order; a key of None leaves the element out."""
    groups: dict[Hashable, list[int]] = {}
    for i, spec in enumerate(specs):
        value = key(spec)
        if value is not None:
            groups.setdefault(value, []).append(i)
    return groups


def _holder(tensors: Mapping[str, torch.Tensor]) -> nn.Module:
    holder = nn.Module()
    for name, tensor in tensors.items():
        holder.register_buffer(name, tensor, persistent=False)
    return holder


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
        return {"": _mse(features[self.layer], self.pick(self.target, own))}


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
            * (_mse(statistic(features[layer]), self.pick(self.targets.get_buffer(layer), own)) + offsets[:, i])
            for i, layer in enumerate(self.style_layers)
        }


def blend(spec: Spec, targets: Targets, layer: str, statistic: str) -> tuple[torch.Tensor, float]:
    """The blended statistic ``[1, ., C]`` of ``spec``'s style images at ``layer``, and its loss offset (see ``Style``)."""
    each = [targets.statistic(style, layer, statistic) for style in spec.styles]
    target = sum(weight * t for weight, t in zip(spec.style_blend, each))
    if spec.blend_mode != "loss" or len(each) == 1:
        return target, 0.0
    return target, float(sum(weight * _mse(t, target) for weight, t in zip(spec.style_blend, each)))


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


def build_terms(specs: Sequence[Spec], targets: Targets) -> list[Term]:
    """Every registered kind's terms for the batch ``specs``; a term whose weight is 0 is left out."""
    return [term for kind in TERMS.values() for term in kind.build(specs, targets)]


def layers_for(specs: Iterable[Spec]) -> list[str]:
    """The extractor layers the batch's terms will read, in first-seen order."""
    return list(dict.fromkeys(layer for spec in specs for kind in TERMS.values() for layer in kind.layers_for(spec)))


def total(
    terms: Iterable[Term],
    features: Mapping[str, torch.Tensor],
    image: torch.Tensor,
    rows: Sequence[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Every logged loss of the batch elements ``rows`` (all if None), each ``[len(rows)]``: ``loss/total`` is the optimised one.

    ``features`` and ``image`` hold those elements, in order. Every registered term has its
    ``loss/<name>`` key, 0 for elements it does not apply to.
    """
    rows = list(range(image.shape[0])) if rows is None else list(rows)
    zero = image.new_zeros(image.shape[0])
    losses = {f"loss/{name}": zero for name in TERMS}
    weighted = zero
    take = _Taker()
    # Relative terms last: their unit is the others' weighted sum.
    for term in sorted(terms, key=lambda t: t.relative):
        located = term.locate(rows)
        if located is None:
            continue
        own, positions = located
        parts = term.parts(
            {layer: take(features[layer], positions) for layer in term.layers}, take(image, positions), own
        )
        value = sum(parts.values())
        key = f"loss/{term.name}"
        losses[key] = _add(losses[key], positions, value)
        for part, part_value in parts.items():
            if part:
                losses[f"{key}/{part}"] = _add(losses.get(f"{key}/{part}", zero), positions, part_value)
        weight = term.pick(term.weight, own)
        if term.relative:
            weight = weight * _unit(term, own, take(weighted, positions))
        weighted = _add(weighted, positions, weight * value)
    losses["loss/total"] = weighted
    return losses


class _Taker:
    """Some elements of batched tensors, for the terms that read them.

    A term's elements are stacked from the tensor's elements, unbound once per tensor: the backward
    pass then puts each element's gradient together once. Slicing or indexing the batch for each
    term would give each term a gradient the size of the whole batch, quadratic in its size.
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[torch.Tensor, tuple[torch.Tensor, ...]]] = {}

    def __call__(self, batch: torch.Tensor, positions: slice | torch.Tensor) -> torch.Tensor:
        if isinstance(positions, slice) and positions.stop - positions.start == batch.shape[0]:
            return batch
        if id(batch) not in self._rows:
            self._rows[id(batch)] = (batch, batch.unbind(0))  # kept with its rows, so that its id stays its own
        rows = self._rows[id(batch)][1]
        indices = range(positions.start, positions.stop) if isinstance(positions, slice) else positions.tolist()
        return torch.stack([rows[i] for i in indices])


def _add(batch: torch.Tensor, positions: slice | torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``batch`` with ``values`` added at ``positions``, out of place (the graph keeps ``batch``)."""
    if isinstance(positions, slice):
        positions = torch.arange(positions.start, positions.stop, device=batch.device)
    return batch.index_add(0, positions, values)


def _unit(term: Term, own: torch.Tensor | None, others: torch.Tensor) -> torch.Tensor:
    """A relative term's unit for its elements ``own``: ``others`` (their other weighted terms now) where not yet set."""
    if term.reference is None:
        term.reference = torch.full_like(term.weight, float("nan"))
    unit = term.pick(term.reference, own)
    unset = torch.isnan(unit)
    if bool(unset.any()):
        unit = torch.where(unset, others.detach(), unit)
        if own is None:
            term.reference = unit
        else:
            term.reference = term.reference.index_copy(0, own, unit)
    return unit
