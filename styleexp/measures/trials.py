"""The trials of the validation's forced-choice tests: which of two images is closer to a third.

Each trial is an ``(anchor, partner, negative)`` triplet of represented images; the right answer is
the partner. ``validation.py`` says what each test asks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from styleexp.measures import probes
from styleexp.measures.evaluator import Evaluator

Represented = TypeVar("Represented")
Triplet = tuple[Any, Any, Any]  # anchor, partner, negative


def forced_choices(
    rep: Callable[[torch.Tensor], Represented],
    judge: Evaluator,
    pictures: list[torch.Tensor],
    whole: list[Represented],
    measured: list[str],
) -> dict[str, list[Triplet]]:
    """Each forced-choice test's trials for ``judge``'s ``measured``, as represented images (``whole``: the
    pictures')."""
    count, tests = len(pictures), {}
    if any(m in judge.style for m in measured):
        split = [tuple(rep(half) for half in probes.halves(picture)) for picture in pictures]
        tests["discrimination"] = [
            (anchor, partner, negative)
            for i, pair in enumerate(split)
            for anchor, partner in (pair, pair[::-1])
            for j, other in enumerate(split)
            if j != i
            for negative in other
        ]
        periodic = [probes.periodic(picture) for picture in pictures]
        moved = [[rep(shifted) for shifted in probes.circular_shifts(image)] for image in periodic]
        tests["layout"] = [
            (anchor, partner, negative)
            for i, anchor in enumerate(rep(image) for image in periodic)
            for negative in [rep(probes.with_mean_colour(periodic[j], periodic[i])) for j in probes.others(i, count)]
            for partner in moved[i]
        ]
        side = max(picture.shape[1] for picture in pictures)
        textures = probes.textures(2 * side)
        quarters = [[rep(quarter) for quarter in probes.quadrants(texture)] for texture in textures]
        tests["texture"] = [
            (anchor, partner, negative)
            for t, texture in enumerate(textures)
            for negative in [
                rep(probes.with_mean_colour(quarter, texture))
                for u, other in enumerate(textures)
                if u != t
                for quarter in probes.quadrants(other)
            ]
            for anchor, partner in itertools.permutations(quarters[t], 2)
        ]
    if any(m in judge.content for m in measured):
        crops = [tuple(rep(crop) for crop in probes.shifted_crops(picture)) for picture in pictures]
        tests["shift"] = [(crops[i][0], crops[i][1], crops[j][0]) for i in range(count) for j in range(count) if j != i]
        tests["recolour"] = [
            (
                whole[i],
                rep(probes.with_palette(pictures[i], pictures[j])),
                rep(probes.with_palette(pictures[j], pictures[i])),
            )
            for i in range(count)
            for j in range(count)
            if j != i
        ]
    return tests
