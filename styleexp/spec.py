"""What one image of a batch is optimised toward, resolved from its config: the data terms are built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # style_losses imports the terms, which import this module
    from styleexp.style_losses import StyleLoss


def mode_of(content: object, style: object) -> str:
    """``transfer`` (content and style), ``reconstruction`` (content only) or ``synthesis`` (style only)."""
    if content is not None and style is not None:
        return "transfer"
    return "reconstruction" if content is not None else "synthesis"


@dataclass
class Spec:
    """One batch element's inputs and settings. A solo run is a batch of one spec.

    Images are RGB ``[3, H, W]`` in ``[0, 1]``, as the network is to see them (after ``colors``):
    ``content`` at the run's size, or None; ``styles`` at the style scale, one or more (a blend), or
    none. ``style_blend`` holds one weight per style, summing to 1; ``blend_mode`` says whether the
    style loss blends the per-style losses (``loss``) or compares with the blended statistics
    (``statistics``). Layer names are resolved (``relu4_2``, not ``10``); ``layer_weights`` holds a
    weight for every style layer; ``style_loss`` compares them (``style_losses/``); ``weights`` holds every term's loss
    weight by term name.
    ``chroma`` (``[2, H, W]``) is the content's chrominance given to the output (``colors=luminance``);
    ``start`` the image ``init=image`` starts from; ``output_shape`` the output's shape where neither
    the content nor the style image gives it.
    """

    content: torch.Tensor | None
    styles: list[torch.Tensor]
    content_layer: str
    style_layers: list[str]
    layer_weights: dict[str, float]
    style_loss: StyleLoss
    weights: dict[str, float]
    init: str
    seed: int
    style_blend: list[float] = field(default_factory=lambda: [1.0])
    blend_mode: str = "loss"
    chroma: torch.Tensor | None = None
    start: torch.Tensor | None = None
    output_shape: tuple[int, int, int] | None = None

    @property
    def style(self) -> torch.Tensor | None:
        """The first style image, or None."""
        return self.styles[0] if self.styles else None

    @property
    def mode(self) -> str:
        return mode_of(self.content, self.style)

    @property
    def shape(self) -> torch.Size:
        """The output's shape ``[3, H, W]``: the content's, else ``output_shape``, else the style's."""
        if self.content is not None:
            return self.content.shape
        return torch.Size(self.output_shape) if self.output_shape else self.style.shape
