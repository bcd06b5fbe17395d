"""``colour_shift``: how far a transfer's colours moved from the content's to the style's (write-up 002: with a large
style weight "my hair turned red as Van Gogh's")."""

from __future__ import annotations

import torch

from styleexp.measures import load
from styleexp.traits.trait import TRAITS, Trait


def colour_shift(image: torch.Tensor, style: torch.Tensor, content: torch.Tensor) -> float | None:
    """Where ``image``'s colour distribution lies on the way from ``content``'s to ``style``'s: 0 at the content's,
    1 at the style's, whatever the layout; None if the two have the same colours.

    Each ``[3, H, W]`` image's pixel colours are represented as the ``colour`` measure represents
    them (``styleexp.measures.colour``: CIELAB pixels projected on fixed directions, each projection's
    quantiles), a space in which Euclidean distance is the sliced Wasserstein-2 distance of the colour
    distributions, means and spreads and shapes together. The trait is the projection of the image's
    representation ``x`` on the line from the content's ``c`` to the style's ``s``:
    ``<x - c, s - c> / |s - c|^2``. Below 0: further from the style than the content; above 1: past it.
    """
    colour = load("colour")
    x, s, c = (colour.represent(each) for each in (image, style, content))
    path = s - c
    length = float(path.pow(2).sum())
    if length < 1e-12:
        return None
    return float(((x - c) * path).sum() / length)


TRAITS.add(
    "colour_shift",
    Trait(colour_shift, "002: a large style weight turns the content's colours into the style's", ("style", "content")),
)
