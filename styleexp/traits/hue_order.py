"""``hue_order``: whether colour patches meet their neighbours in hue, as a rainbow's bands do (write-up 000: with the
rainbow circles style "the ordering of the colors is preserved (e.g. red patches are nested between orange and
purple)")."""

from __future__ import annotations

import torch

from styleexp.traits.pixels import lab
from styleexp.traits.trait import TRAITS, Trait

SHARE = 0.01  # a flat colour covering at least this share of the reference is one of its palette's
CHROMA = 20.0  # CIELAB chroma below which a colour is a grey (white, black), outside the hue circle
NEAR = 20.0  # CIELAB distance (delta E) within which a pixel is taken for a palette colour
STEP = 2  # pixels this far apart along rows and columns are pairs: past a one-pixel anti-aliased blend


def palette(reference: torch.Tensor) -> torch.Tensor:
    """The flat, coloured colours of ``[3, H, W]`` in CIELAB, ``[K, 3]``, in order of hue angle around the circle."""
    levels = reference.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8).flatten(1).T
    colours, counts = levels.unique(dim=0, return_counts=True)
    common = colours[counts >= SHARE * levels.shape[0]].double().div(255)
    found = lab(common.T[:, :, None])[:, :, 0].T
    found = found[found[:, 1:].norm(dim=1) >= CHROMA]
    return found[torch.atan2(found[:, 2], found[:, 1]).argsort()]


def hue_order(image: torch.Tensor, reference: torch.Tensor) -> float | None:
    """How often two different palette colours that meet in ``image`` are neighbours in hue, rescaled so that chance
    reads 0: in [-2 / (K - 3), 1]; None without an order to keep.

    The palette is ``reference``'s flat colours (:func:`palette`), K of them, in hue order around the
    circle, so violet neighbours red. Pixels of ``image`` within ``NEAR`` of a palette colour take its
    label; of the pairs ``STEP`` pixels apart whose labels differ, the share ``f`` that are
    neighbours is compared with ``c = 2 / (K - 1)``, the share for labels placed at random:
    ``(f - c) / (1 - c)``. 1: every boundary joins hue neighbours (concentric rings in rainbow order);
    0: no more than chance; below 0: fewer (the same rings shuffled). None when the palette has fewer
    than 4 colours (with 3, every pair neighbours) or no two labelled colours meet.
    """
    colours = palette(reference)
    count = len(colours)
    if count < 4:
        return None
    distances = (lab(image).flatten(1).T[:, None, :] - colours[None]).norm(dim=2)
    nearest, labels = distances.min(dim=1)
    labels = torch.where(nearest <= NEAR, labels, -1).reshape(image.shape[1:])
    along_rows = torch.stack([labels[:, :-STEP], labels[:, STEP:]]).flatten(1)
    along_columns = torch.stack([labels[:-STEP, :], labels[STEP:, :]]).flatten(1)
    pairs = torch.cat([along_rows, along_columns], dim=1)
    pairs = pairs[:, (pairs >= 0).all(0) & (pairs[0] != pairs[1])]
    if pairs.shape[1] == 0:
        return None
    gap = (pairs[0] - pairs[1]).abs()
    neighbours = float((torch.minimum(gap, count - gap) == 1).double().mean())
    chance = 2 / (count - 1)
    return (neighbours - chance) / (1 - chance)


TRAITS.add("hue_order", Trait(hue_order, "000: rainbow_circles keeps the rainbow's order of colours", ("style",)))
