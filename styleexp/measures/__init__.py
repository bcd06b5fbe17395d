"""Fair measures: every output scored by fixed evaluators and one fixed set of definitions.

A run's own final loss favours whatever it optimised (its network, statistic, layers), so runs are
compared with these instead. Each evaluator is one registered class in a file of this package
(``evaluator.py`` says what one is):

- chosen by ``measures.networks``: ``<network>_<source>`` (``network.py``: an ImageNet network's
  style statistics and content activations) and ``portilla_simoncelli`` (texture statistics with no
  learned weights). The first one's measures have plain names (``style/gram``); every other one's
  carry its name in front (``vgg16_torchvision/style/gram``). A measure taken with the network that
  produced an image favours the statistic that network matched, so the default evaluators are of
  different origins.
- always on whenever a run is measured, with plain names: ``ssim`` and ``chroma`` against the content
  image, ``colour`` against the style image, ``speckle``, and ``layout_leakage`` for pure style.

The run, the validation, W&B and the report take every registered evaluator from ``EVALUATORS``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from styleexp.errors import UserError
from styleexp.measures import chroma, colour, layout_leakage, network, portilla_simoncelli, speckle, ssim  # noqa: F401
from styleexp.measures.evaluator import EVALUATORS, Evaluator, load

DEFAULT_EVALUATORS = ("vgg19_caffe", "vgg16_torchvision", "portilla_simoncelli")
# Those always on, content measures first, then style, then the others.
ALWAYS = sorted(
    (name for name, kind in EVALUATORS.items() if kind.always),
    key=lambda n: (not EVALUATORS[n].content, not EVALUATORS[n].style),
)
HIGHER_IS_BETTER = frozenset(measure for kind in EVALUATORS.values() for measure in kind.higher_is_better)


def chosen(name: str) -> type[Evaluator]:
    """The evaluator class ``measures.networks`` names, without building it."""
    if name not in EVALUATORS or EVALUATORS[name].always:
        choices = [known for known in EVALUATORS if known not in ALWAYS]
        raise UserError(f"unknown evaluator {name!r} in measures.networks; choose from {', '.join(choices)}")
    return EVALUATORS[name]


def evaluators(names: Sequence[str], weights_dir: str | None = None, device: str = "cpu") -> list[Evaluator]:
    """The evaluators ``names`` chooses, then those always on; none if ``names`` is empty (measuring off)."""
    for name in names:
        chosen(name)
    return (
        [load(name, str(weights_dir) if weights_dir else None, device) for name in [*names, *ALWAYS]] if names else []
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
    plain = [*first.measures(), *(m for name in ALWAYS for m in EVALUATORS[name].measures())]
    return plain + [f"{kind.name}/{m}" for kind in others for m in kind.measures()]


def default_objective(mode: str, evaluator_names: Sequence[str] = DEFAULT_EVALUATORS) -> str | None:
    """What a sweeper minimises unless told: the first evaluator's first style distance, or content distance for reconstruction."""
    if not evaluator_names:
        return None
    first = chosen(evaluator_names[0])
    found = first.content if mode == "reconstruction" else first.style
    return f"measure/{found[0]}" if found else None
