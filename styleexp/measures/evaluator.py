"""What an evaluator is, and the registry of them, ``EVALUATORS``: one class per evaluator, one file each."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import torch

from styleexp.registry import Registry


class Evaluator:
    """Scores an output image against the images it came from, the same way whatever run made it.

    Images are RGB ``[3, H, W]`` in [0, 1]. ``style`` and ``content`` name the measures it takes by
    comparing representations: ``represent`` each image once, then ``style_distances`` (output against
    the style image) or ``content_distances`` (against the content image). These are what the
    validation tests and what the report compares outputs with. ``other`` names measures taken from
    the images in another way (``measure`` overridden). ``higher_is_better`` and ``symmetric`` (the
    distance does not depend on which image is the reference) are subsets of its measures.

    An evaluator that is ``always`` on is taken in every measured run, whatever ``measures.networks``
    chooses, and its measures keep their plain names; the others are chosen by name.
    """

    name: ClassVar[str]
    style: ClassVar[tuple[str, ...]] = ()
    content: ClassVar[tuple[str, ...]] = ()
    other: ClassVar[tuple[str, ...]] = ()
    higher_is_better: ClassVar[frozenset[str]] = frozenset()
    symmetric: ClassVar[frozenset[str]] = frozenset()
    always: ClassVar[bool] = False

    def __init__(self, weights_dir: str | None = None, device: str = "cpu") -> None:
        self.weights_dir, self.device = weights_dir, device

    @classmethod
    def measures(cls) -> tuple[str, ...]:
        return (*cls.style, *cls.content, *cls.other)

    def represent(self, image: torch.Tensor) -> Any:
        """What the distances compare, for one image."""
        return image.detach().float().cpu()

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


EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator")


def register(kind: type[Evaluator]) -> type[Evaluator]:
    """Class decorator: ``kind`` becomes the evaluator called ``kind.name``."""
    return EVALUATORS.add(kind.name, kind)


@functools.cache
def load(name: str, weights_dir: str | None = None, device: str = "cpu") -> Evaluator:
    """The evaluator called ``name``, built once per process (a network evaluator loads its weights then)."""
    return EVALUATORS[name](weights_dir, device)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b||^2 / ||b||^2``: 0 when equal, 1 when ``a`` is zero."""
    return float((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12))
