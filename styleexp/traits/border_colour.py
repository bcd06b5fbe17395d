"""``border_colour``: whether the colour sits near the image's borders (write-up 000: "often the generated image pushes
the bright color of the flower to the border of the image")."""

from __future__ import annotations

import torch

from styleexp.traits.pixels import lab
from styleexp.traits.trait import TRAITS, Trait

GREY = 1.0  # mean CIELAB chroma below which an image has no colour to place (a just noticeable difference is ~2)


def border_colour(image: torch.Tensor) -> float | None:
    """``(outer - inner) / (outer + inner)`` of the mean CIELAB chroma of ``[3, H, W]``'s outer and inner halves, in
    [-1, 1]; None for a grey image (mean chroma below ``GREY``).

    The outer half is the band along the four borders holding half the pixels (those at most the
    median distance from a border). 1: all the colour is in that band; 0: colour is spread evenly
    (or as much in the band as inside it); -1: all of it is inside. Compare a synthesis's value with
    its style image's: a bright flower centred on a dull background gives a negative value; its
    colour pushed outward, a higher one.
    """
    chroma = lab(image)[1:].norm(dim=0)
    if float(chroma.mean()) < GREY:
        return None
    height, width = chroma.shape
    rows = torch.arange(height, dtype=torch.float64)
    columns = torch.arange(width, dtype=torch.float64)
    from_border = torch.minimum(
        torch.minimum(rows, height - 1 - rows)[:, None], torch.minimum(columns, width - 1 - columns)[None, :]
    )
    outer = from_border <= from_border.median()
    if outer.all():  # too small to have an inside
        return None
    outside, inside = float(chroma[outer].mean()), float(chroma[~outer].mean())
    return (outside - inside) / (outside + inside)


TRAITS.add("border_colour", Trait(border_colour, "000: flowers' bright colour is pushed to the borders"))
