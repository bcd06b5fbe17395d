from __future__ import annotations

import itertools

import pytest
import torch

from styleexp import statistics
from styleexp.errors import UserError


def _image(values) -> torch.Tensor:
    """A 2x2 one-channel image seen through a 1x1 identity filter: activations [1, 1, 2, 2]."""
    return torch.tensor(values, dtype=torch.float64).view(1, 1, 2, 2)


def test_toy_example_of_the_write_up():
    v = _image([1, 0, 0, 0])
    positions = 4  # statistics are divided by the number of spatial positions
    assert statistics.gram(v).item() * positions == pytest.approx(1.0)
    assert statistics.centered(v).item() * positions == pytest.approx(3 / 4)


def test_images_sharing_both_statistics_are_exactly_the_four_one_hot_images():
    target = statistics.both(_image([1, 0, 0, 0]))
    grid = [i / 4 for i in range(5)]
    matches = [
        values
        for values in itertools.product(grid, repeat=4)
        if torch.allclose(statistics.both(_image(values)), target)
    ]
    assert sorted(matches) == sorted(tuple(float(i == k) for i in range(4)) for k in range(4))
    gram_only = [
        values
        for values in itertools.product(grid, repeat=4)
        if torch.allclose(statistics.gram(_image(values)), target[:, :1])
    ]
    assert len(gram_only) > 4  # the plain Gram matrix alone admits other images, e.g. all pixels 1/2
    assert (0.5, 0.5, 0.5, 0.5) in gram_only


def test_gram_and_centered_against_hand_computed_values():
    # Two channels over four positions: a = [1, 2, 3, 4], b = [0, 1, 0, 1].
    features = torch.tensor([[1.0, 2, 3, 4], [0, 1, 0, 1]]).view(1, 2, 2, 2)
    expected_gram = torch.tensor([[30.0, 6], [6, 2]]) / 4
    assert torch.allclose(statistics.gram(features)[0], expected_gram)
    # Centered: a - 2.5 = [-1.5, -0.5, 0.5, 1.5], b - 0.5 = [-0.5, 0.5, -0.5, 0.5].
    expected_centered = torch.tensor([[5.0, 1], [1, 1]]) / 4
    assert torch.allclose(statistics.centered(features)[0], expected_centered)


def test_both_is_gram_stacked_on_centered():
    features = torch.rand(2, 3, 5, 4)
    stacked = statistics.both(features)
    assert stacked.shape == (2, 6, 3)
    assert torch.equal(stacked[:, :3], statistics.gram(features))
    assert torch.equal(stacked[:, 3:], statistics.centered(features))


def test_mean_std_holds_channel_means_and_spreads_but_not_their_correlation():
    features = torch.tensor([[1.0, 2, 3, 4], [0, 1, 0, 1]]).view(1, 2, 2, 2)
    expected = torch.tensor([[2.5, 0.5], [1.25**0.5, 0.5]])
    assert torch.allclose(statistics.mean_std(features)[0], expected)
    # Reversing one channel's positions keeps its mean and spread but changes how it co-varies.
    shuffled = torch.stack([features[0, 0].flatten().flip(0), features[0, 1].flatten()]).view(1, 2, 2, 2)
    assert torch.allclose(statistics.mean_std(shuffled), statistics.mean_std(features))
    assert not torch.allclose(statistics.gram(shuffled), statistics.gram(features))


@pytest.mark.parametrize("name", ["gram", "centered", "both"])
def test_gram_gradients_match_autograd_of_the_plain_formula(name):
    features = torch.rand(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.rand_like(statistics.STATISTICS[name](features))
    (statistics.STATISTICS[name](features) * weights).sum().backward()
    ours = features.grad.clone()
    features.grad = None
    flat = features.flatten(2)
    centered_flat = flat - flat.mean(dim=2, keepdim=True)
    plain = {
        "gram": torch.bmm(flat, flat.transpose(1, 2)) / 20,
        "centered": torch.bmm(centered_flat, centered_flat.transpose(1, 2)) / 20,
    }
    plain["both"] = torch.cat([plain["gram"], plain["centered"]], dim=1)
    (plain[name] * weights).sum().backward()
    assert torch.allclose(ours, features.grad)


def test_statistics_do_not_grow_with_image_size():
    small = torch.rand(1, 4, 8, 8)
    tiled = small.repeat(1, 1, 3, 3)  # same content, nine times the positions
    for statistic in statistics.STATISTICS.values():
        assert torch.allclose(statistic(tiled), statistic(small), atol=1e-5)


def test_unknown_statistic_names_the_choices():
    with pytest.raises(UserError, match="gram, centered, both"):
        statistics.STATISTICS["covariance"]
