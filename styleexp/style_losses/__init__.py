"""Style losses: the accounts of "what is style" that a run can match, one per option of the ``gram`` group.

Each compares a batch's activations at one layer with a style image's, as pystiche's losses do: ``target`` turns the
style image's activations into what is kept of them (computed once, and cached), ``score`` compares the batch with one
target per element. The four statistics of ``statistics.py`` (``gram``, ``centered``, ``both``, ``mean_std``) are
losses here as a squared error between statistics; the field's other accounts each have a module of their own:
``mmd.py`` (Li et al. 2017), ``wasserstein.py`` (Gaussian W2 and sliced Wasserstein, Heitz et al. 2021),
``histogram.py`` (Risser et al. 2017), ``moments.py`` (central moment discrepancy, Kalischek et al. 2021) and
``mrf.py`` (Li & Wand 2016). A new account is a module here holding one ``StyleLoss`` subclass decorated with
``@register``; its ``Settings`` dataclass becomes the keys ``gram.*`` of its option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from styleexp.registry import Registry, discover


@dataclasses.dataclass(frozen=True)
class NoSettings:
    """The settings of a loss that has none."""


class StyleLoss:
    """One account of style, compared at one layer at a time.

    Activations are ``[n, C, H, W]`` (a batch of n images); a target is whatever ``target`` keeps of one style image's
    activations ``[1, C, H', W']`` (its shape is the loss's business, and may differ between style images of other
    sizes). ``score(features, targets, seeds)`` gives ``[n]``, one value per image against its own target; ``seeds``
    (one int per image, new at every optimiser step) seed what a stochastic loss draws, so that a run is repeatable and
    an image's result does not depend on the batch it ran in.
    """

    name: ClassVar[str]
    Settings: ClassVar[type] = NoSettings  # a frozen dataclass: the keys gram.<key> of this option, with defaults
    # Targets can be averaged (style_blend_mode=statistics blends them; otherwise only the losses are blended).
    averaged: ClassVar[bool] = False
    # The score is a mean squared error between targets: a blend of losses is then one comparison with the blended
    # target plus a constant (terms/style.py).
    squared_error: ClassVar[bool] = False
    # It draws at random (projections, positions): a new draw each optimiser step, the same within one.
    stochastic: ClassVar[bool] = False
    # What loss.style is multiplied by for this loss, so that one weight means about the same whatever the loss: the
    # median ratio of the Gram loss's value to this one's at a noise image against 4 bundled styles (brick,
    # rainbow_circles, coffee, checkers) at 128 px, VGG-19's five style layers, rounded to one digit (measured with
    # the script in docs/losses.md). The Gram family keeps 1: its runs' weights stay as they were.
    weight_unit: ClassVar[float] = 1.0

    def __init__(self, settings: Any = None):
        self.settings = settings if settings is not None else self.Settings()

    @property
    def key(self) -> tuple:
        """What identifies this loss: its name and settings (equal keys compute equal values)."""
        return (self.name, dataclasses.astuple(self.settings))

    @property
    def cache_kind(self) -> str:
        """The kind its targets are cached under: every setting that changes a target is in it."""
        values = dataclasses.asdict(self.settings)
        return "style-" + "-".join([self.name, *(f"{k}={v}" for k, v in values.items())])

    def target(self, features: torch.Tensor) -> torch.Tensor:
        """What is kept of a style image's activations ``[1, C, H, W]``."""
        raise NotImplementedError

    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        """``[n]``: each image's activations (``features[i]``) against its target ``targets[i]``."""
        raise NotImplementedError

    def extra_bytes(self, channels: int, positions: int, style_positions: int) -> float:
        """Working memory of one score of one image at a layer beyond its activations (the memory guard's share)."""
        return 0.0


STYLE_LOSSES: Registry[type[StyleLoss]] = Registry("style loss")


def register(cls: type[StyleLoss]) -> type[StyleLoss]:
    """Class decorator: add ``cls`` to ``STYLE_LOSSES`` under its ``name``."""
    return STYLE_LOSSES.add(cls.name, cls)


def make(name: str, settings: dict[str, Any] | None = None) -> StyleLoss:
    """The loss ``name`` with ``settings`` (its ``gram.*`` keys; defaults for those not given)."""
    cls = STYLE_LOSSES[name]
    return cls(cls.Settings(**(settings or {})))


def from_config(node: Any) -> StyleLoss:
    """The loss a config's ``gram`` node chooses, with its settings."""
    name = getattr(node.name, "value", node.name)
    return make(name, {key: value for key, value in node.items() if key != "name"})


def generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (a stochastic loss's draw for one image at one step)."""
    return torch.Generator(device=device).manual_seed(seed % 2**63)


discover(__name__, __path__)
