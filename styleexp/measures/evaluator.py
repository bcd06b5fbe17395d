"""What an evaluator is, the registry of them (``EVALUATORS``), and how a run's evaluators are chosen and applied."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from styleexp.errors import UserError
from styleexp.registry import Registry

DEFAULT_EVALUATORS = ("vgg19_caffe", "vgg16_torchvision", "portilla_simoncelli")


class Evaluator:
    """Scores an output image against the images it came from, the same way whatever run made it.

    Images are RGB ``[3, H, W]`` in [0, 1]. ``style`` and ``content`` name the measures it takes by
    comparing representations: ``represent`` each image once, then ``style_distances`` (output against
    the style image) or ``content_distances`` (against the content image). These are what the
    validation tests and what the report compares outputs with. ``other`` names measures taken from
    the images in another way (``measure`` overridden). ``higher_is_better``, ``symmetric`` (the
    distance does not depend on which image is the reference) and ``of_colour`` (content measures of
    colour itself, which the validation neither asks to ignore a recolouring nor to tell images apart by
    their structure: two grey images have the same colour) are subsets of its measures.

    An evaluator that is ``always`` on is taken in every measured run, whatever ``measures.networks``
    chooses, and its measures keep their plain names; the others are chosen by name.
    """

    name: ClassVar[str]
    style: ClassVar[tuple[str, ...]] = ()
    content: ClassVar[tuple[str, ...]] = ()
    other: ClassVar[tuple[str, ...]] = ()
    higher_is_better: ClassVar[frozenset[str]] = frozenset()
    symmetric: ClassVar[frozenset[str]] = frozenset()
    of_colour: ClassVar[frozenset[str]] = frozenset()
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


def always() -> list[str]:
    """The evaluators always on: content measures first, then style, then the others."""
    on = [name for name, kind in EVALUATORS.items() if kind.always]
    return sorted(on, key=lambda name: (not EVALUATORS[name].content, not EVALUATORS[name].style))


def higher_is_better(measure: str) -> bool:
    """Whether a larger value of ``measure`` (plain or prefixed by its evaluator) is better."""
    prefix, _, rest = measure.partition("/")
    base = rest if rest and prefix in EVALUATORS else measure
    return any(base in kind.higher_is_better for kind in EVALUATORS.values())


def chosen(name: str) -> type[Evaluator]:
    """The evaluator class ``measures.networks`` names, without building it."""
    if name not in EVALUATORS or EVALUATORS[name].always:
        choices = [known for known, kind in EVALUATORS.items() if not kind.always]
        raise UserError(f"unknown evaluator {name!r} in measures.networks; choose from {', '.join(choices)}")
    return EVALUATORS[name]


def evaluators(names: Sequence[str], weights_dir: str | None = None, device: str = "cpu") -> list[Evaluator]:
    """The evaluators ``names`` chooses, then those always on; none if ``names`` is empty (measuring off)."""
    for name in names:
        chosen(name)
    return (
        [load(name, str(weights_dir) if weights_dir else None, device) for name in [*names, *always()]] if names else []
    )


def measure(
    judges: Sequence[Evaluator],
    output: torch.Tensor,
    content: torch.Tensor | None,
    style: torch.Tensor | None,
    seconds: dict[str, float] | None = None,
) -> dict[str, float]:
    """Every measure of ``output`` that applies, named as the module says. ``seconds`` gets each evaluator's cost."""
    seconds = {} if seconds is None else seconds
    scores = {}
    first = next((judge for judge in judges if not judge.always), None)
    for judge in judges:
        started = time.perf_counter()
        prefix = "" if judge.always or judge is first else f"{judge.name}/"
        scores.update({prefix + key: value for key, value in judge.measure(output, content, style).items()})
        seconds[judge.name] = round(time.perf_counter() - started, 3)
    return scores


def names(evaluator_names: Sequence[str]) -> list[str]:
    """Every measure name the evaluators give, in report order: the first one's, those always on, then the others'."""
    if not evaluator_names:
        return []
    first, *others = (chosen(name) for name in evaluator_names)
    plain = [*first.measures(), *(m for name in always() for m in EVALUATORS[name].measures())]
    return plain + [f"{kind.name}/{m}" for kind in others for m in kind.measures()]


def default_objective(mode: str, evaluator_names: Sequence[str] = DEFAULT_EVALUATORS) -> str | None:
    """What a sweeper minimises unless told: the first evaluator's first style distance, or content distance for
    reconstruction."""
    if not evaluator_names:
        return None
    first = chosen(evaluator_names[0])
    found = first.content if mode == "reconstruction" else first.style
    return f"measure/{found[0]}" if found else None
