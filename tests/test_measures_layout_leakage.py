"""Layout leakage on cases whose answer is known: the style image itself, its layout moved, a noisy copy, no layout."""

from __future__ import annotations

import pytest
import torch

from styleexp import measures, samples
from styleexp.measures import layout_leakage

STYLES = ["dark_circle", "rainbow_circles", "coffee"]  # a disc and rings: unchanged by a rotation or a flip
NO_COPY = 0.6  # below the chance readings of unrelated outputs (noise: 1.0, sd 0.08-0.16; docs/measures.md)


def _noise(image: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.rand(image.shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", STYLES)
def test_the_style_image_reads_0_and_its_layout_moved_reads_as_no_copy(name):
    style = samples.load(name, 128)
    double = samples.load(name, 256)  # drawn twice as large: a crop of it is the same texture elsewhere
    height, width = style.shape[1:]
    assert layout_leakage.leakage(style, style) == pytest.approx(0, abs=1e-9)
    moved = {
        "shifted by half": style.roll((height // 2, width // 2), (1, 2)),
        "cropped at a corner": double[:, :height, :width],
        "tiles shuffled": layout_leakage.shuffled(style, seed=11),  # an order the reference set does not use
    }
    for how, image in moved.items():
        assert layout_leakage.leakage(image, style) > NO_COPY, how


@pytest.mark.parametrize("name", STYLES)
def test_a_noisy_copy_reads_as_a_copy_far_below_any_unrelated_output(name):
    style = samples.load(name, 128)
    copy = (style + 0.3 * torch.randn(style.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    order = torch.randperm(style[0].numel(), generator=torch.Generator().manual_seed(1))
    scattered = style.flatten(1)[:, order].view_as(style)  # its very colours, no layout at all
    unrelated = [layout_leakage.leakage(image, style) for image in [scattered, *(_noise(style, s) for s in range(5))]]
    assert layout_leakage.leakage(copy, style) < 0.1
    assert all(value > NO_COPY for value in unrelated)


def test_a_synthesis_of_a_disc_has_a_leakage_and_a_flat_style_has_none():
    disc = samples.load("dark_circle", 64)
    assert layout_leakage.leakage(_noise(disc, 0), disc) == pytest.approx(1, abs=0.4)
    assert layout_leakage.leakage(torch.rand(3, 32, 48), disc) is not None  # any output shape: the style is resized
    assert layout_leakage.leakage(_noise(disc, 0), torch.full((3, 64, 64), 0.5)) is None


def test_the_measure_is_taken_for_pure_style_only():
    judge = measures.load("layout_leakage")
    disc = samples.load("dark_circle", 32)
    assert set(judge.measure(_noise(disc, 0), None, disc)) == {"layout_leakage"}
    assert judge.measure(_noise(disc, 0), disc, disc) == {}
