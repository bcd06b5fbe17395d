"""The loss terms on hand-made features: what each compares, per element and per layer."""

from __future__ import annotations

import pytest
import torch

from styleexp import statistics
from styleexp.style_losses import make
from styleexp.terms.content import Content
from styleexp.terms.style import Style
from styleexp.terms.tv import tv_loss


def _style(targets: dict[str, torch.Tensor], statistic: str, layer_weights: list[float]) -> Style:
    held = {layer: [[target]] for layer, target in targets.items()}
    return Style([0], [1.0], make(statistic), held, torch.ones(1, 1), torch.tensor([layer_weights]),
                 torch.zeros(1, len(targets)), [0])  # fmt: skip


def test_the_content_term_is_the_mean_squared_error_of_activations_per_element():
    term = Content([0, 1], [1.0, 1.0], "relu4_2", torch.zeros(2, 2, 3, 3))
    features = {
        "relu4_2": torch.stack([torch.full((2, 3, 3), 2.0), torch.zeros(2, 3, 3)]),
        "relu1_1": torch.ones(2, 1, 1, 1),
    }
    assert term.layers == ("relu4_2",)
    assert term.parts(features, torch.zeros(2, 3, 4, 4))[""].tolist() == pytest.approx([4.0, 0.0])


def test_style_parts_are_weighted_per_layer_and_sum_to_the_style_loss():
    style = {"relu1_1": torch.rand(1, 3, 6, 6), "relu2_1": torch.rand(1, 5, 3, 3)}
    image = {layer: torch.rand_like(value) for layer, value in style.items()}
    targets = {layer: statistics.gram(value) for layer, value in style.items()}
    parts = _style(targets, "gram", [0.5, 0.5]).parts(image, torch.zeros(1, 3, 6, 6))
    for layer in style:
        unweighted = torch.mean((statistics.gram(image[layer]) - targets[layer]) ** 2)
        assert parts[layer].item() == pytest.approx(0.5 * unweighted.item())
    weighted = _style(targets, "gram", [1.0, 0.5]).parts(image, torch.zeros(1, 3, 6, 6))
    assert weighted["relu1_1"].item() == pytest.approx(2 * parts["relu1_1"].item())
    assert weighted["relu2_1"].item() == pytest.approx(parts["relu2_1"].item())
    assert all(
        v.item() == 0 for v in _style(targets, "gram", [0.5, 0.5]).parts(style, torch.zeros(1, 3, 6, 6)).values()
    )


def test_the_style_term_compares_the_statistic_it_is_given():
    style = {"relu1_1": torch.rand(1, 3, 6, 6)}
    shifted = {"relu1_1": style["relu1_1"] + 1.0}  # same covariance, other means
    centered = _style({"relu1_1": statistics.centered(style["relu1_1"])}, "centered", [1.0])
    assert centered.parts(shifted, torch.zeros(1, 3, 6, 6))["relu1_1"].item() == pytest.approx(0, abs=1e-10)
    gram = _style({"relu1_1": statistics.gram(style["relu1_1"])}, "gram", [1.0])
    assert gram.parts(shifted, torch.zeros(1, 3, 6, 6))["relu1_1"].item() > 0.1


def test_tv_loss_is_zero_for_flat_images_and_known_for_stripes():
    assert tv_loss(torch.full((1, 3, 4, 4), 0.3)).item() == 0
    stripes = torch.zeros(1, 3, 4, 4)
    stripes[..., ::2] = 1.0  # columns alternate 1, 0, 1, 0: every horizontal step is +-1
    assert tv_loss(stripes).item() == pytest.approx(1.0)


def test_losses_give_gradients_that_reduce_them():
    image = torch.rand(1, 3, 8, 8, requires_grad=True)
    loss = tv_loss(image)
    loss.backward()
    with torch.no_grad():
        assert tv_loss(image - 0.1 * image.grad).item() < loss.item()
