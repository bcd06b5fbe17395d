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

The run, the validation, W&B and the report take every registered evaluator from ``EVALUATORS``;
a new evaluator is a new file here, which this package imports.
"""

from __future__ import annotations

from styleexp.measures.evaluator import (
    DEFAULT_EVALUATORS,
    EVALUATORS,
    Evaluator,
    always,
    chosen,
    default_objective,
    evaluators,
    higher_is_better,
    load,
    measure,
    names,
)
from styleexp.registry import discover

__all__ = [
    "DEFAULT_EVALUATORS", "EVALUATORS", "Evaluator", "always", "chosen", "default_objective", "evaluators",
    "higher_is_better", "load", "measure", "names",
]  # fmt: skip
discover(__name__, __path__)  # each evaluator's module registers it: a new evaluator is a new file here
