"""``edge_sharpness``: how abrupt the image's edges are (write-up 000: the checkers synthesis keeps sharp edges)."""

from __future__ import annotations

import torch

from styleexp.traits.trait import TRAITS, Trait


def edge_sharpness(image: torch.Tensor) -> float | None:
    """One over the width of the image's edges in pixels, in [0, 1]; None for a flat image.

    Along rows and columns of every channel of ``[3, H, W]``, ``r`` is the energy of differences two
    pixels apart over that of neighbours' differences. A transition spread linearly over ``w`` pixels
    gives ``r = 4 - 2 / w`` (a wide difference sees twice the change of a narrow one, except at the
    ramp's two ends), so ``(4 - r) / 2 = 1 / w``: 1 for a step from one pixel to the next, 0.5 for
    edges two pixels wide, near 0 for smooth shading. Independent pixel noise gives ``r = 1`` and
    reads as 1 (it is clipped), as sharp as it gets.
    """
    pixels = image.detach().double().cpu()
    narrow = _energy(pixels, 1)
    if narrow == 0:
        return None
    ratio = _energy(pixels, 2) / narrow
    return float(min(max((4 - ratio) / 2, 0.0), 1.0))


def _energy(pixels: torch.Tensor, step: int) -> float:
    """The sum of squared differences ``step`` pixels apart, along rows and along columns."""
    rows = pixels[:, :, step:] - pixels[:, :, :-step]
    columns = pixels[:, step:, :] - pixels[:, :-step, :]
    return float(rows.pow(2).sum() + columns.pow(2).sum())


TRAITS.add("edge_sharpness", Trait(edge_sharpness, "000: checkers keeps sharp corners and edges"))
