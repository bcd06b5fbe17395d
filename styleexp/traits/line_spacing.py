"""``line_spacing``: whether ink comes in rows at one regular spacing, as lines of text do (write-up 000: in the lorem
ipsum synthesis "the neat line spacing has been lost")."""

from __future__ import annotations

import torch

from styleexp.traits.pixels import luminance
from styleexp.traits.trait import TRAITS, Trait

TILE = 96  # pixels: a few lines of text; lines kept in patches at different heights still count
SHORTEST = 4  # pixels: the shortest line spacing looked for


def line_spacing(image: torch.Tensor) -> float | None:
    """How strongly rows repeat at one spacing: the highest peak of the rows' autocorrelation past its first dip, in
    [0, 1]; None for an image without ink.

    ``[3, H, W]`` is cut into ``TILE`` x ``TILE`` squares (the whole image if smaller); in each, the
    row profile (mean darkness of each row) is correlated with itself shifted by 1 to half the tile
    rows; these correlations are averaged over the squares, weighted by each profile's variance, and
    the trait is their highest value at the shifts from the first at which they turn negative (and
    at least ``SHORTEST``); 0 if they never do. 1: every square's rows repeat exactly with one
    spacing (neat lines of text); near 0: no spacing repeats (noise, shuffled rows, text lines at
    uneven heights). Horizontal lines only, as in the style image.
    """
    darkness = 1 - luminance(image).double()
    tile = min(TILE, *darkness.shape)
    squares = darkness.unfold(0, tile, tile).unfold(1, tile, tile).reshape(-1, tile, tile)
    profiles = squares.mean(dim=2)
    profiles = profiles - profiles.mean(dim=1, keepdim=True)
    weights = profiles.pow(2).sum(dim=1)
    if float(weights.sum()) < 1e-12:
        return None
    correlations = torch.stack([_correlation(profiles, lag) for lag in range(1, tile // 2 + 1)], dim=1)
    mean = (correlations * weights[:, None]).sum(0) / weights.sum()
    negative = (mean < 0).nonzero()
    if len(negative) == 0:
        return 0.0
    later = mean[max(int(negative[0]), SHORTEST - 1) :]
    return float(later.max().clamp_min(0))


def _correlation(profiles: torch.Tensor, lag: int) -> torch.Tensor:
    """Each profile's correlation with itself ``lag`` rows later, over the rows they share: ``[squares]``."""
    head, tail = profiles[:, :-lag], profiles[:, lag:]
    scale = (head.pow(2).sum(1) * tail.pow(2).sum(1)).sqrt().clamp_min(1e-12)
    return (head * tail).sum(1) / scale


TRAITS.add("line_spacing", Trait(line_spacing, "000: lorem_ipsum loses the neat line spacing"))
