"""``axis_alignment``: whether the edges run horizontally and vertically (write-up 000: the checkers synthesis has
"lots of straight vertical and horizontal edges"; the rainbow circles' edges are curved)."""

from __future__ import annotations

import torch

from styleexp.traits.pixels import gradients
from styleexp.traits.trait import TRAITS, Trait


def axis_alignment(image: torch.Tensor) -> float | None:
    """The mean of ``cos 4 theta`` over the edges of ``[3, H, W]``, weighted by edge strength, in [-1, 1]; None for a
    flat image.

    ``theta`` is the direction of the Sobel gradient (of the channels together, through their summed
    structure tensor). 1: every edge is horizontal or vertical (a checkerboard); 0: edge directions
    spread evenly (circles, noise); -1: every edge is diagonal (a board turned by 45 degrees).
    """
    dx, dy = gradients(image)
    xx, yy, xy = dx.pow(2).sum(0).double(), dy.pow(2).sum(0).double(), (dx * dy).sum(0).double()
    strength = xx + yy
    total = float(strength.sum())
    if total == 0:
        return None
    # With one gradient (|g| cos t, |g| sin t): (xx - yy)^2 - (2 xy)^2 = |g|^4 cos 4t, so dividing by |g|^2
    # weights each pixel's cos 4t by its edge energy.
    aligned = ((xx - yy).pow(2) - (2 * xy).pow(2)) / strength.clamp_min(1e-12)
    return float(aligned.sum() / total)


TRAITS.add("axis_alignment", Trait(axis_alignment, "000: checkers keeps straight vertical and horizontal edges"))
