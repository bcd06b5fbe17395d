from __future__ import annotations

import pytest
import torch

from styleexp import preprocessing, statistics
from styleexp.module import StyleTransfer
from styleexp.targets import compute_targets
from styleexp.vgg import VGGFeatures
from styleexp.weights import random_state_dict

LAYERS = ["relu1_1", "relu2_1"]


def _module(**kwargs) -> StyleTransfer:
    extractor = VGGFeatures("vgg16", LAYERS, random_state_dict("vgg16", 0), preprocessing.torchvision())
    content, style = torch.rand(3, 16, 16), torch.rand(3, 16, 16)
    targets = compute_targets(extractor, content, style, "relu2_1", LAYERS, statistics.gram)
    weights = {"content": 1.0, "style": 1.0, "tv": 0.1}
    return StyleTransfer(extractor, torch.rand(3, 16, 16), targets, statistics.gram, weights, **kwargs)


def test_the_image_is_the_only_parameter_and_the_only_thing_saved():
    module = _module()
    assert [name for name, _ in module.named_parameters()] == ["image"]
    assert list(module.state_dict()) == ["image"]
    assert module.image.shape == (1, 3, 16, 16)


def test_losses_are_keyed_by_layer_and_total_is_their_weighted_sum():
    module = _module()
    losses = module.losses()
    assert set(losses) == {"loss/content", "loss/style", "loss/style/relu1_1", "loss/style/relu2_1", "loss/tv", "loss/total"}
    assert torch.isclose(losses["loss/style"], losses["loss/style/relu1_1"] + losses["loss/style/relu2_1"])
    expected = losses["loss/content"] + losses["loss/style"] + 0.1 * losses["loss/tv"]
    assert torch.isclose(losses["loss/total"], expected)


@pytest.mark.parametrize("optimizer, lr", [("lbfgs", 1.0), ("adam", 0.01)])
def test_one_optimiser_step_lowers_the_loss(optimizer, lr):
    module = _module(optimizer=optimizer, lr=lr)
    opt = module.configure_optimizers()
    before = module.losses()["loss/total"].item()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = module.training_step(None, 0)
        loss.backward()
        return loss

    opt.step(closure)
    assert module.losses()["loss/total"].item() < before
    assert module.evaluations >= 1 and module.initial_losses["loss/total"].item() == before


def test_lbfgs_steps_reuse_known_points_and_follow_one_long_lbfgs_run():
    torch.manual_seed(1)
    module = _module(optimizer="lbfgs")
    torch.manual_seed(1)
    reference = _module(optimizer="lbfgs")
    opt = module.configure_optimizers()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = module.training_step(None, 0)
        loss.backward()
        module.on_after_backward()  # as Lightning calls it
        return loss

    steps = 10
    for _ in range(steps):
        module.on_train_batch_start(None, 0)
        opt.step(closure)

    # torch's own L-BFGS, all iterations in one call: it never re-evaluates a known point.
    long_run = torch.optim.LBFGS([reference.image], lr=1.0, max_iter=steps, max_eval=steps * 26, history_size=100,
                                 line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0)
    evaluations = 0

    def reference_closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        long_run.zero_grad()
        loss = reference.losses()["loss/total"]
        loss.backward()
        return loss

    long_run.step(reference_closure)
    assert torch.allclose(module.image, reference.image, atol=1e-6)
    assert module.evaluations == evaluations  # one network pass per point, none repeated
