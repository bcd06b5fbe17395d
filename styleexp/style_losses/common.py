"""What the distribution losses share: float32 under autocast, scoring per image, drawing positions, resampling
sorted values.

Activations flattened per image are ``[C, M]``: C channels (the coordinates of a point) at M positions (the points).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from styleexp.errors import UserError
from styleexp.style_losses import StyleLoss

Method = TypeVar("Method", bound=Callable)


def in_fp32(method: Method) -> Method:
    """A loss's ``target`` or ``score`` computed in float32 (float64 stays) even under bf16 autocast.

    Sums over thousands of positions, sorts and kernels need the bits; the cast is differentiable, so the gradient
    reaches bf16 activations as bf16.
    """

    @functools.wraps(method)
    def wrapped(self: object, features: torch.Tensor, *args: object) -> torch.Tensor:
        with torch.autocast(features.device.type, enabled=False):
            return method(self, as_float(features), *args)

    return wrapped  # type: ignore[return-value]


def as_float(tensor: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """``tensor`` in the dtype of ``like``, or without ``like`` in float32 unless it is float32 or float64."""
    if like is not None:
        return tensor.to(like.dtype)
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


class PerImageLoss(StyleLoss):
    """A loss scored one image at a time (``score_one``): for the losses whose targets differ in shape between images,
    which cannot be stacked. Its target, unless it says otherwise: the style's activations ``[1, C, M_s]``."""

    @in_fp32
    def target(self, features: torch.Tensor) -> torch.Tensor:
        return features.flatten(2)

    @in_fp32
    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        return torch.stack(
            [
                self.score_one(flat, target.to(flat.dtype), seed)
                for flat, target, seed in zip(features.flatten(2), targets, seeds)
            ]
        )

    def score_one(self, flat: torch.Tensor, target: torch.Tensor, seed: int) -> torch.Tensor:
        """One image's activations ``[C, M]`` against its target (in their dtype), drawing from ``seed`` if at all."""
        raise NotImplementedError


def draw_positions(flat: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """At most ``count`` positions of ``flat`` ``[C, M]``, drawn without replacement: ``[C, min(M, count)]``.

    With ``M <= count`` every position, in order, and nothing is drawn: the loss is then exact and deterministic.
    """
    if flat.shape[1] <= count:
        return flat
    index = torch.randperm(flat.shape[1], generator=generator, device=flat.device)[:count]
    return flat[:, index]


def fixed_positions(flat: torch.Tensor, count: int) -> torch.Tensor:
    """At most ``count`` positions of ``flat`` ``[C, M]`` drawn once and for all (a fixed seed, drawn on the CPU so
    that every device picks the same ones)."""
    if flat.shape[1] <= count:
        return flat
    index = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(0))[:count]
    return flat[:, index.to(flat.device)]


def quantiles(ordered: torch.Tensor, count: int) -> torch.Tensor:
    """Sorted values ``[..., M_s]`` resampled to ``count`` quantiles by linear interpolation: ``[..., count]``.

    Each of M sorted samples stands for the quantile level at the middle of its 1/M of probability, ``(k + 1/2) / M``;
    the k-th of ``count`` values is the style's quantile function, interpolated linearly between those levels (and
    constant beyond the first and last), at ``(k + 1/2) / count``. ``count == M_s`` returns the values unchanged.
    """
    size = ordered.shape[-1]
    if size == count:
        return ordered
    where = ((torch.arange(count, device=ordered.device, dtype=ordered.dtype) + 0.5) * size / count - 0.5).clamp(
        0, size - 1
    )
    below = where.floor().long().clamp(max=size - 2) if size > 1 else where.long()
    above = (below + 1).clamp(max=size - 1)
    share = where - below
    return torch.lerp(ordered[..., below], ordered[..., above], share)


def at_least(value: int | float | None, least: float, name: str) -> None:
    """Refuse a setting ``gram.<name>`` below ``least`` (None passes: it means the setting's automatic choice)."""
    if value is not None and value < least:
        raise UserError(f"gram.{name}={value} must be at least {least:g}")
