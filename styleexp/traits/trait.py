"""What a trait is, and the registry of them (``TRAITS``).

A trait is one number read off a saved synthesis that tests one claim of the write-ups
(``shared/seeds/00*.txt``). Images are RGB ``[3, H, W]`` in [0, 1]. ``score(image, *inputs)``
takes the synthesis and then, in order, the inputs that ``needs`` names (``"style"``,
``"content"``); it returns None where the trait says nothing about the image (no edges, no colour).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from styleexp.registry import Registry

INPUTS = ("style", "content")


@dataclass(frozen=True)
class Trait:
    """One trait: how to score it, which inputs it needs besides the synthesis, and the claim it tests."""

    score: Callable[..., float | None]
    claim: str
    needs: tuple[str, ...] = ()

    def of(self, image: torch.Tensor, inputs: dict[str, torch.Tensor | None]) -> float | None:
        """The trait of ``image``; None where an input it needs is missing (no content image in pure style)."""
        needed = [inputs.get(name) for name in self.needs]
        return None if any(given is None for given in needed) else self.score(image, *needed)


TRAITS: Registry[Trait] = Registry("trait")
