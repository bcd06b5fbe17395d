"""What one image of a batch is optimised toward, resolved from its config: the data terms are built from."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def mode_of(content: object, style: object) -> str:
    """``transfer`` (content and style), ``reconstruction`` (content only) or ``synthesis`` (style only)."""
    if content is not None and style is not None:
        return "transfer"
    return "reconstruction" if content is not None else "synthesis"


@dataclass
class Spec:
    """One batch element's inputs and settings. A solo run is a batch of one spec.

    Images are RGB ``[3, H, W]`` in ``[0, 1]`` at the run's size; ``content`` or ``style`` is None
    when the run has none. Layer names are resolved (``relu4_2``, not ``10``); ``layer_weights``
    holds a weight for every style layer; ``weights`` holds every term's loss weight by term name.
    """

    content: torch.Tensor | None
    style: torch.Tensor | None
    content_layer: str
    style_layers: list[str]
    layer_weights: dict[str, float]
    statistic: str
    weights: dict[str, float]
    init: str
    seed: int

    @property
    def mode(self) -> str:
        return mode_of(self.content, self.style)

    @property
    def shape(self) -> torch.Size:
        """The output's shape ``[3, H, W]``: the content's, else the style's."""
        return (self.content if self.content is not None else self.style).shape
