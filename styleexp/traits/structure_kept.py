"""``structure_kept``: how much of the content image's layout a transfer keeps, whatever its colours and texture
(write-up 001: content layers before block 5 give no useful content)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleexp.traits.pixels import gradients, luminance
from styleexp.traits.trait import TRAITS, Trait

COARSE = 64  # pixels along the longer side: objects' outlines survive, a style's brush strokes and grain do not


def structure_kept(image: torch.Tensor, content: torch.Tensor) -> float | None:
    """The correlation of the edge maps of ``image`` and ``content`` seen coarsely, in [-1, 1]; None if either is
    flat.

    Both ``[3, H, W]`` are reduced to their luminance on one grid, ``COARSE`` pixels along the image's
    longer side (the content's shape does not matter); the trait is the Pearson correlation of their Sobel
    gradient magnitudes. 1: edges of the same strength in the same places (the content itself, or
    recoloured); 0: unrelated (a pure-style synthesis, another photograph); negative: edges where the
    content is flat.
    """
    edges = [_coarse_edges(each, image.shape[1:]) for each in (image, content)]
    centred = [each - each.mean() for each in edges]
    scale = float(centred[0].norm() * centred[1].norm())
    if scale < 1e-12:
        return None
    return float((centred[0] * centred[1]).sum() / scale)


def _coarse_edges(image: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The Sobel gradient magnitude of ``image``'s luminance at ``COARSE`` pixels along the longer side of ``shape``."""
    factor = COARSE / max(shape)
    size = (max(3, round(shape[0] * factor)), max(3, round(shape[1] * factor)))
    small = F.interpolate(luminance(image)[None, None], size=size, mode="area")[0]
    dx, dy = gradients(small)
    return (dx.pow(2) + dy.pow(2)).sqrt().double()


TRAITS.add(
    "structure_kept", Trait(structure_kept, "001: content layers before block 5 give no useful content", ("content",))
)
