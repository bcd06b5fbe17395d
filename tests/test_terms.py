from __future__ import annotations

import pytest
import torch

from styleexp import statistics
from styleexp.terms import content_loss, style_loss, tv_loss


def test_content_loss_is_the_mean_squared_error_per_layer():
    target = {"relu4_2": torch.zeros(1, 2, 3, 3)}
    features = {"relu4_2": torch.full((1, 2, 3, 3), 2.0), "relu1_1": torch.ones(1, 1, 1, 1)}
    parts = content_loss(features, target)
    assert list(parts) == ["relu4_2"]
    assert parts["relu4_2"].item() == pytest.approx(4.0)
    assert content_loss(target, target)["relu4_2"].item() == 0


def test_style_loss_parts_default_to_equal_weights_and_sum_to_the_loss():
    style = {"relu1_1": torch.rand(1, 3, 6, 6), "relu2_1": torch.rand(1, 5, 3, 3)}
    image = {layer: torch.rand_like(value) for layer, value in style.items()}
    targets = {layer: statistics.gram(value) for layer, value in style.items()}
    parts = style_loss(image, targets, statistics.gram)
    for layer in style:
        unweighted = torch.mean((statistics.gram(image[layer]) - targets[layer]) ** 2)
        assert parts[layer].item() == pytest.approx(0.5 * unweighted.item())
    weighted = style_loss(image, targets, statistics.gram, {"relu1_1": 2.0})
    assert weighted["relu1_1"].item() == pytest.approx(4 * parts["relu1_1"].item())
    assert weighted["relu2_1"].item() == pytest.approx(parts["relu2_1"].item())
    assert all(v.item() == 0 for v in style_loss(style, targets, statistics.gram).values())


def test_no_style_targets_give_no_parts():
    assert style_loss({"relu1_1": torch.rand(1, 3, 4, 4)}, {}, statistics.gram) == {}


def test_style_loss_uses_the_statistic_it_is_given():
    style = {"relu1_1": torch.rand(1, 3, 6, 6)}
    shifted = {"relu1_1": style["relu1_1"] + 1.0}  # same covariance, other means
    targets = {"relu1_1": statistics.centered(style["relu1_1"])}
    assert style_loss(shifted, targets, statistics.centered)["relu1_1"].item() == pytest.approx(0, abs=1e-10)
    gram_targets = {"relu1_1": statistics.gram(style["relu1_1"])}
    assert style_loss(shifted, gram_targets, statistics.gram)["relu1_1"].item() > 0.1


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
