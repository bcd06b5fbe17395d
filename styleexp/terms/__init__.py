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

A new term is a new module here holding one ``Term`` subclass decorated with ``@register``
(``term.py`` says what a term is): it says which layers it reads, how it is built from the batch's
specs (computing its targets once), and its parts. Its weight becomes the config key ``loss.<name>``
(default ``default_weight``), its value the logged ``loss/<name>`` and a report column.
"""

from __future__ import annotations

from styleexp.registry import discover
from styleexp.statistics import mse
from styleexp.terms.term import RENORMALISATIONS, TERMS, Term, build_terms, layers_for, register, total

__all__ = ["RENORMALISATIONS", "TERMS", "Term", "build_terms", "layers_for", "mse", "register", "total"]
discover(__name__, __path__)  # each term's module registers it: a new term is a new file here
