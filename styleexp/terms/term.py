"""What a loss term is (``Term``, registered in ``TERMS``), and how a batch's terms add up to the loss it optimises."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import ClassVar

import torch
from torch import nn

from styleexp.registry import Registry
from styleexp.spec import Spec
from styleexp.targets import Targets

# renormalise=: how an element's terms add up. none: their weighted sum. running: each term divided by its own
# value wherever it is evaluated, as write-up 000's TensorFlow tutorial rescales its terms at every step
# (adj = 1 / (loss + 1e-10)): the gradient followed is sum_t w_t grad L_t / (L_t + eps), that of
# sum_t w_t log(L_t + eps). styleexp minimises exp(sum_t w_t log(L_t + eps) / sum_t w_t), the terms' weighted
# geometric mean: its gradient points the same way (it is that one times mean / sum_t w_t), and it stays a
# positive loss in the terms' units, as line searches and the stop rule need.
RENORMALISATIONS = ("none", "running")
RUNNING_EPS = 1e-10


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
        # A relative term's unit per element, NaN until first evaluated.
        self.register_buffer("reference", torch.full_like(self.weight, float("nan")), persistent=False)

    @property
    def layers(self) -> tuple[str, ...]:
        """The extractor layers ``parts`` reads."""
        return ()

    @classmethod
    def layers_for(cls, spec: Spec) -> list[str]:
        """The layers a term of this kind would read for ``spec``, before any is built (the extractor needs them
        first)."""
        return []

    @classmethod
    def build(cls, specs: Sequence[Spec], targets: Targets) -> list[Term]:
        """This kind's terms for a batch of ``specs``: one per group of elements that can share one."""
        raise NotImplementedError

    def parts(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor, own: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def next_step(self) -> bool:
        """Called before each optimiser step: whether the term's value changes with it (a stochastic term draws
        anew), so that what the last step evaluated cannot answer for this one."""
        return False

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
    renormalise: str = "none",
) -> dict[str, torch.Tensor]:
    """Every logged loss of the batch elements ``rows`` (all if None), each ``[len(rows)]``: ``loss/total`` is the
    optimised one, the terms' weighted sum, or under ``renormalise="running"`` their weighted geometric mean
    ``exp(sum_t w_t log(L_t + eps) / sum_t w_t)`` (see ``RENORMALISATIONS``; relative weights are then plain ones).

    ``features`` and ``image`` hold those elements, in order. Every registered term has its
    ``loss/<name>`` key, 0 for elements it does not apply to.
    """
    rows = list(range(image.shape[0])) if rows is None else list(rows)
    zero = image.new_zeros(image.shape[0])
    losses = {f"loss/{name}": zero for name in TERMS}
    weighted = logs = shares = zero
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
        if renormalise == "running":
            logs = _add(logs, positions, weight * torch.log(value + RUNNING_EPS))
            shares = _add(shares, positions, weight)
            continue
        if term.relative:
            weight = weight * _unit(term, own, take(weighted, positions))
        weighted = _add(weighted, positions, weight * value)
    if renormalise == "running":
        # An element no term applies to has nothing to optimise: 0, as under the weighted sum.
        mean = (logs / shares.clamp(min=torch.finfo(shares.dtype).tiny)).exp()
        weighted = torch.where(shares > 0, mean, zero)
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
    """A relative term's unit for its elements ``own``: ``others`` (their other weighted terms now) where not yet
    set."""
    unit = term.pick(term.reference, own)
    unset = torch.isnan(unit)
    if bool(unset.any()):
        unit = torch.where(unset, others.detach(), unit)
        if own is None:
            term.reference = unit
        else:
            term.reference = term.reference.index_copy(0, own, unit)
    return unit
