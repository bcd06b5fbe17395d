"""The distribution and patch style losses (``style_losses/``: mmd, wasserstein, histogram, moments, mrf): values and
gradients against direct formulas written here in numpy, their known special cases, one target per image, seeds and
bf16 autocast."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from styleexp.errors import UserError
from styleexp.style_losses import generator, make
from styleexp.style_losses.wasserstein import directions

LOSSES = ["mmd_linear", "mmd_poly", "mmd_gaussian", "gaussian_w2", "sliced_w", "histogram", "cmd", "mrf"]
STOCHASTIC = {"mmd_poly": {"positions": 8}, "mmd_gaussian": {"positions": 8}, "sliced_w": {}}


def activations(seed: int, channels: int, height: int, width: int) -> torch.Tensor:
    """Random float64 activations ``[1, C, H, W]``, ReLU-like (non-negative) and without ties."""
    return torch.rand(1, channels, height, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def value_and_gradient(name: str, image: torch.Tensor, style: torch.Tensor, seed: int = 0, **settings):
    """A loss's value of ``image`` against ``style``'s target, and its gradient, in numpy (``[C, H, W]``)."""
    loss = make(name, settings)
    image = image.clone().requires_grad_()
    value = loss.score(image, [loss.target(style)], [seed])
    (gradient,) = torch.autograd.grad(value.sum(), image)
    return value.item(), gradient[0].numpy()


def numeric_gradient(formula: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """The gradient of ``formula`` at ``x`` by central differences."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (formula(up) - formula(down)) / (2 * step)
    return gradient


def check(name: str, formula: Callable[[np.ndarray, np.ndarray], float], image, style, rtol=1e-6, **settings) -> None:
    """The loss's value and gradient at ``image`` are ``formula``'s (image, style ``[C, H, W]`` in numpy)."""
    value, gradient = value_and_gradient(name, image, style, **settings)
    x, s = image[0].numpy(), style[0].numpy()
    assert value == pytest.approx(formula(x, s), rel=rtol)
    expected = numeric_gradient(lambda y: formula(y, s), x)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-7 * np.abs(expected).max())


def interpolated(ordered: np.ndarray, count: int) -> np.ndarray:
    """Sorted samples resampled to ``count`` quantiles: sample k at level (k + 1/2) / M, linear in between."""
    size = len(ordered)
    return np.interp((np.arange(count) + 0.5) / count, (np.arange(size) + 0.5) / size, ordered)


def squared_mmd(kernel, x: np.ndarray, s: np.ndarray) -> float:
    """The biased squared MMD of the points (columns) of x and s."""
    return kernel(x, x).mean() + kernel(s, s).mean() - 2 * kernel(x, s).mean()


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ((x[:, :, None] - y[:, None, :]) ** 2).sum(0)


def mmd_linear(x, s):
    return squared_mmd(lambda a, b: np.einsum("ci,cj->ij", a, b), x.reshape(len(x), -1), s.reshape(len(s), -1))


def mmd_poly(degree: int, offset: float):
    kernel = lambda a, b: (np.einsum("ci,cj->ij", a, b) + offset) ** degree  # noqa: E731
    return lambda x, s: squared_mmd(kernel, x.reshape(len(x), -1), s.reshape(len(s), -1))


def median_heuristic(s: np.ndarray) -> float:
    """The lower median (torch's) of the squared distances between distinct positions of s ``[C, M]``."""
    distances = squared_distances(s, s)[np.triu_indices(s.shape[1], 1)]
    return float(np.sort(distances)[(len(distances) - 1) // 2])


def mmd_gaussian(variance: float | None):
    def formula(x, s):
        x, s = x.reshape(len(x), -1), s.reshape(len(s), -1)
        sigma2 = median_heuristic(s) if variance is None else variance
        return squared_mmd(lambda a, b: np.exp(-squared_distances(a, b) / (2 * sigma2)), x, s)

    return formula


def gaussian_w2(x, s):
    x, s = x.reshape(len(x), -1), s.reshape(len(s), -1)
    cov_x, cov_s = np.cov(x, bias=True), np.cov(s, bias=True)
    # tr (S^1/2 X S^1/2)^1/2 from the eigenvalues of X S, which are those of S^1/2 X S^1/2.
    cross = np.sqrt(np.clip(np.linalg.eigvals(cov_x @ cov_s).real, 0, None)).sum()
    return ((x.mean(1) - s.mean(1)) ** 2).sum() + np.trace(cov_x) + np.trace(cov_s) - 2 * cross


def sliced(projections: np.ndarray):
    def formula(x, s):
        x, s = x.reshape(len(x), -1), s.reshape(len(s), -1)
        total = 0.0
        for direction in projections:
            a, b = np.sort(direction @ x), interpolated(np.sort(direction @ s), x.shape[1])
            total += ((a - b) ** 2).mean()
        return total / len(projections)

    return formula


def remapped(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Each channel of x ``[C, M]`` given s's values of the same rank."""
    result = np.empty_like(x)
    for c in range(len(x)):
        result[c, np.argsort(x[c])] = interpolated(np.sort(s[c]), x.shape[1])
    return result


def histogram(x, s):
    x, s = x.reshape(len(x), -1), s.reshape(len(s), -1)
    return ((x - remapped(x, s)) ** 2).mean()


def cmd(order: int):
    def formula(x, s):
        x, s = x.reshape(len(x), -1), s.reshape(len(s), -1)
        spread = [np.sqrt(np.mean([s[c].var() for c in range(len(s))]))] * len(s)  # the style's, per layer
        moments = []
        for k in range(1, order + 1):
            differences = []
            for c in range(len(x)):
                if k == 1:
                    difference = x[c].mean() - s[c].mean()
                else:
                    difference = ((x[c] - x[c].mean()) ** k).mean() - ((s[c] - s[c].mean()) ** k).mean()
                differences.append(difference / spread[c] ** k)
            moments.append(np.sqrt(np.sum(np.square(differences))))
        return sum(moments)

    return formula


def mrf(size: int, stride: int):
    def patches(a):
        return [
            a[:, i : i + size, j : j + size].ravel()
            for i in range(0, a.shape[1] - size + 1, stride)
            for j in range(0, a.shape[2] - size + 1, stride)
        ]

    def formula(x, s):
        style, total = patches(s), 0.0
        for patch in patches(x):
            likeness = [patch @ t / np.linalg.norm(patch) / np.linalg.norm(t) for t in style]
            total += ((patch - style[int(np.argmax(likeness))]) ** 2).mean()
        return total / len(patches(x))

    return formula


IMAGE, STYLE = activations(1, 4, 5, 6), activations(2, 4, 6, 7)  # a style of another size: 42 positions against 30


@pytest.mark.parametrize(
    "name, formula, settings",
    [
        ("mmd_linear", mmd_linear, {}),
        ("mmd_poly", mmd_poly(2, 0.0), {}),
        ("mmd_poly", mmd_poly(3, 0.5), {"degree": 3, "offset": 0.5}),
        ("mmd_gaussian", mmd_gaussian(None), {}),
        ("mmd_gaussian", mmd_gaussian(0.7**2), {"bandwidth": 0.7}),
        ("gaussian_w2", gaussian_w2, {}),
        ("histogram", histogram, {}),
        ("cmd", cmd(5), {}),
        ("cmd", cmd(3), {"moments": 3}),
        ("mrf", mrf(3, 2), {}),
        ("mrf", mrf(2, 1), {"patch_size": 2, "stride": 1}),
    ],
)
def test_value_and_gradient_are_the_direct_formula_s(name, formula, settings):
    check(name, formula, IMAGE, STYLE, **settings)


@pytest.mark.parametrize("projections", [None, 3])
def test_sliced_w_is_the_direct_formula_over_the_step_s_directions(projections):
    count = projections or IMAGE.shape[1]
    drawn = directions(IMAGE.shape[1], count, generator(5, IMAGE.device), IMAGE)
    assert drawn.shape == (count, IMAGE.shape[1]) and torch.allclose(drawn.norm(dim=1), torch.ones(count).double())
    value, gradient = value_and_gradient("sliced_w", IMAGE, STYLE, seed=5, projections=projections)
    formula = sliced(drawn.numpy())
    x, s = IMAGE[0].numpy(), STYLE[0].numpy()
    assert value == pytest.approx(formula(x, s), rel=1e-10)
    np.testing.assert_allclose(gradient, numeric_gradient(lambda y: formula(y, s), x), rtol=1e-4, atol=1e-9)


def test_mmd_poly_of_degree_2_is_c_squared_times_the_gram_loss():
    gram = make("gram")
    expected = IMAGE.shape[1] ** 2 * gram.score(IMAGE, [gram.target(STYLE)], [0])
    assert make("mmd_poly").score(IMAGE, [make("mmd_poly").target(STYLE)], [0]) == pytest.approx(expected, rel=1e-10)


def test_mmd_linear_is_the_squared_distance_between_the_means():
    loss = make("mmd_linear")
    expected = (IMAGE.mean((2, 3)) - STYLE.mean((2, 3))).square().sum()
    assert loss.score(IMAGE, [loss.target(STYLE)], [0]).item() == pytest.approx(expected.item(), rel=1e-12)


def test_mmd_gaussian_keeps_sigma_squared_by_the_median_heuristic_or_the_bandwidth():
    target = make("mmd_gaussian").target(STYLE)
    assert target.shape == (1, 4, 43) and torch.equal(target[0, :, :-1], STYLE.flatten(2)[0])
    assert torch.all(target[0, :, -1] == target[0, 0, -1])
    assert target[0, 0, -1].item() == pytest.approx(median_heuristic(STYLE.flatten(2)[0].numpy()), rel=1e-12)
    assert make("mmd_gaussian", {"bandwidth": 0.5}).target(STYLE)[0, 0, -1].item() == pytest.approx(0.25)


def test_sampled_mmd_is_the_formula_over_the_positions_the_seed_draws():
    loss = make("mmd_gaussian", {"positions": 8})
    target = loss.target(STYLE)
    draw = generator(11, IMAGE.device)
    image_index, style_index = torch.randperm(30, generator=draw)[:8], torch.randperm(42, generator=draw)[:8]
    x, s = IMAGE.flatten(2)[0].numpy(), STYLE.flatten(2)[0].numpy()
    sigma2 = target[0, 0, -1].item()
    expected = squared_mmd(
        lambda a, b: np.exp(-squared_distances(a, b) / (2 * sigma2)), x[:, image_index], s[:, style_index]
    )
    assert loss.score(IMAGE, [target], [11]).item() == pytest.approx(expected, rel=1e-10)


def test_gaussian_w2_of_equal_covariances_is_the_squared_distance_between_the_means():
    shift = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64).view(1, 4, 1, 1)
    loss = make("gaussian_w2")
    value = loss.score(STYLE + shift, [loss.target(STYLE)], [0]).item()
    assert value == pytest.approx(shift.square().sum().item(), rel=1e-9)


def test_gaussian_w2_with_fewer_positions_than_channels_has_a_finite_gradient():
    image, style = activations(3, 8, 2, 3), activations(4, 8, 3, 2)  # 6 positions: covariances of rank 5 in R^8
    value, gradient = value_and_gradient("gaussian_w2", image, style)
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0
    # The eigenvalue floor lowers the value by at most 2e-4 tr Sigma_s.
    bound = 2e-4 * np.trace(np.cov(style.flatten(2)[0].numpy(), bias=True))
    assert abs(value - gaussian_w2(image[0].numpy(), style[0].numpy())) <= bound


def test_histogram_gradient_is_twice_the_difference_to_the_remapped_values_over_their_count():
    _, gradient = value_and_gradient("histogram", IMAGE, STYLE)
    x = IMAGE.flatten(2)[0].numpy()
    expected = 2 * (x - remapped(x, STYLE.flatten(2)[0].numpy())) / x.size
    np.testing.assert_allclose(gradient.reshape(x.shape), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["sliced_w", "histogram", "cmd", "mrf", "mmd_poly", "mmd_gaussian", "gaussian_w2"])
def test_the_style_s_own_activations_score_zero(name):
    loss = make(name)
    value = loss.score(STYLE, [loss.target(STYLE)], [7]).item()
    assert abs(value) < 1e-9


@pytest.mark.parametrize("name", ["sliced_w", "histogram", "cmd", "mmd_poly", "mmd_gaussian", "gaussian_w2"])
def test_a_distribution_loss_ignores_where_its_values_are(name):
    loss = make(name)
    permuted = STYLE.flatten(2)[:, :, torch.randperm(42)].view_as(STYLE)
    assert not torch.equal(permuted, STYLE)
    assert abs(loss.score(permuted, [loss.target(STYLE)], [7]).item()) < 1e-9


@pytest.mark.parametrize("name", LOSSES)
def test_each_image_is_scored_against_its_own_target_as_if_alone(name):
    loss = make(name)
    images = torch.cat([activations(5, 6, 7, 6), activations(6, 6, 7, 6)])
    targets = [loss.target(activations(7, 6, 8, 5)), loss.target(activations(8, 6, 5, 9))]
    together = loss.score(images, targets, [3, 4])
    assert together.shape == (2,)
    alone = torch.cat([loss.score(images[i : i + 1], [targets[i]], [3 + i]) for i in range(2)])
    torch.testing.assert_close(together, alone, rtol=1e-12, atol=0)
    assert not torch.allclose(together, loss.score(images, targets[::-1], [3, 4]))


@pytest.mark.parametrize("name, settings", STOCHASTIC.items())
def test_a_stochastic_loss_repeats_with_its_seed_and_changes_with_another(name, settings):
    loss = make(name, settings)
    assert loss.stochastic
    target = loss.target(STYLE)
    values = [loss.score(IMAGE, [target], [seed]).item() for seed in (1, 1, 2)]
    assert values[0] == values[1] != values[2]


@pytest.mark.parametrize("name", ["mmd_poly", "mmd_gaussian"])
def test_sampled_mmd_over_all_positions_does_not_depend_on_the_seed(name):
    loss = make(name, {"positions": 42})
    target = loss.target(STYLE)
    assert loss.score(IMAGE, [target], [1]).item() == loss.score(IMAGE, [target], [2]).item()


@pytest.mark.parametrize("name", LOSSES)
def test_a_score_under_bf16_autocast_is_computed_in_float32(name):
    loss = make(name)
    image = (torch.randn(2, 8, 6, 6, generator=torch.Generator().manual_seed(9)) * 2).relu().bfloat16()
    targets = [loss.target(torch.rand(1, 8, 7, 5, generator=torch.Generator().manual_seed(i)) * 2) for i in range(2)]
    expected = loss.score(image.float(), targets, [1, 2])
    image.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss.score(image, targets, [1, 2])
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    (gradient,) = torch.autograd.grad(value.sum(), image)
    assert gradient.dtype == torch.bfloat16 and torch.isfinite(gradient.float()).all()


@pytest.mark.parametrize("name", [name for name in LOSSES if name != "mmd_linear"])  # it keeps C means, like gram
def test_working_memory_grows_with_the_positions(name):
    loss = make(name)
    small, large = loss.extra_bytes(64, 1024, 1024), loss.extra_bytes(64, 4096, 4096)
    assert 0 < small < large


def test_mrf_matches_in_chunks_that_bound_the_similarity_matrix(monkeypatch):
    from styleexp.style_losses import mrf as module

    loss = make("mrf", {"stride": 1})
    target = loss.target(STYLE)
    whole = loss.score(IMAGE, [target], [0])
    monkeypatch.setattr(module, "SIMILARITY_ELEMENTS", 2 * target.shape[1])  # two rows at a time
    assert torch.equal(loss.score(IMAGE, [target], [0]), whole)


@pytest.mark.parametrize(
    "name, settings",
    [
        ("mmd_poly", {"positions": 0}),
        ("mmd_poly", {"degree": 0}),
        ("mmd_gaussian", {"bandwidth": 0.0}),
        ("sliced_w", {"projections": 0}),
        ("cmd", {"moments": 0}),
        ("mrf", {"stride": 0}),
    ],
)
def test_a_setting_out_of_range_is_a_user_error(name, settings):
    with pytest.raises(UserError, match=f"gram.{next(iter(settings))}"):
        make(name, settings)


def test_mrf_pads_a_map_narrower_than_its_patches_by_repeating_its_border():
    small = activations(0, 4, 2, 5)
    held = make("mrf").target(small)
    assert held.shape == (1, 2, 4 * 9)  # one row of 3x3 patches at stride 2 over a 3x5 map
    row = held[0, 0].reshape(4, 3, 3)
    assert torch.equal(row[:, 2], row[:, 1]) and torch.equal(row[:, :2], small[0, :, :, :3])
    assert make("mrf").score(small, [held], [0]).item() == 0
