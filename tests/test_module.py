from __future__ import annotations

import dataclasses

import pytest
import torch

from styleexp import preprocessing
from styleexp.extractors.vgg import VGGFeatures
from styleexp.module import StyleTransfer
from styleexp.optimizers import OPTIMIZERS
from styleexp.spec import Spec
from styleexp.style_losses import make
from styleexp.targets import Targets
from styleexp.terms import build_terms
from styleexp.terms.tv import tv_loss
from styleexp.weights import random_state_dict

LAYERS = ["relu1_1", "relu2_1"]


def _spec(seed: int = 0, statistic: str = "gram", tv: float = 0.1, style_layers: list[str] = LAYERS) -> Spec:
    generator = torch.Generator().manual_seed(seed)
    return Spec(
        content=torch.rand(3, 16, 16, generator=generator),
        styles=[torch.rand(3, 16, 16, generator=generator)],
        content_layer="relu2_1",
        style_layers=style_layers,
        layer_weights={layer: 1 / len(style_layers) for layer in style_layers},
        style_loss=make(statistic),
        weights={"content": 1.0, "style": 1.0, "tv": tv},
        init="noise",
        seed=seed,
    )


def _module(specs: list[Spec] | None = None, optimizer: str = "lbfgs", **settings) -> StyleTransfer:
    specs = specs or [_spec()]
    extractor = VGGFeatures("vgg16", LAYERS, random_state_dict("vgg16", 0), preprocessing.torchvision())
    terms = build_terms(specs, Targets(extractor))
    images = torch.stack([torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(100 + s.seed)) for s in specs])
    choice = OPTIMIZERS[optimizer]
    return StyleTransfer(extractor, images, terms, choice, choice.settings(**settings))


def test_the_image_is_the_only_parameter_and_the_only_thing_saved():
    module = _module()
    assert [name for name, _ in module.named_parameters()] == ["image"]
    assert list(module.state_dict()) == ["image"]
    assert module.image.shape == (1, 3, 16, 16)


def test_losses_are_keyed_by_layer_and_total_is_their_weighted_sum():
    module = _module()
    losses = module.losses()
    assert set(losses) == {
        "loss/content",
        "loss/style",
        "loss/style/relu1_1",
        "loss/style/relu2_1",
        "loss/tv",
        "loss/total",
    }
    assert torch.isclose(losses["loss/style"], losses["loss/style/relu1_1"] + losses["loss/style/relu2_1"])
    # TV's weight is relative: 0.1 times the other weighted terms at the first evaluation (this one).
    others = losses["loss/content"] + losses["loss/style"]
    assert torch.isclose(losses["loss/total"], others * (1 + 0.1 * losses["loss/tv"]))
    assert losses["loss/tv"].item() == pytest.approx(3 * float(tv_loss(module.image)), rel=1e-5)  # 1 for uniform noise


def test_the_tv_unit_is_fixed_at_the_first_evaluation_and_follows_each_element():
    batch = _module([_spec(0), _spec(1, tv=0.5)])
    first = batch.losses()
    unit = (first["loss/content"] + first["loss/style"]).detach()
    with torch.no_grad():
        batch.image.mul_(0.5)
    later = batch.losses()
    others = later["loss/content"] + later["loss/style"]
    assert torch.allclose(later["loss/total"], others + torch.tensor([0.1, 0.5]) * unit * later["loss/tv"], rtol=1e-5)


@pytest.mark.parametrize("optimizer, lr", [("lbfgs", 1.0), ("adam", 0.01)])
def test_one_optimiser_step_lowers_the_loss(optimizer, lr):
    module = _module(optimizer=optimizer, lr=lr)
    opt = module.configure_optimizers()
    before = module.losses()["loss/total"].item()
    module.step(opt)
    assert module.losses()["loss/total"].item() < before
    assert module.evaluations >= 1 and module.initial_losses["loss/total"].item() == before


def test_lbfgs_steps_reuse_known_points_and_follow_one_long_lbfgs_run():
    module = _module(optimizer="lbfgs")
    reference = _module(optimizer="lbfgs")
    opt = module.configure_optimizers()
    steps = 10
    for _ in range(steps):
        module.step(opt)

    # torch's own L-BFGS, all iterations in one call: it never re-evaluates a known point.
    long_run = torch.optim.LBFGS(
        [reference.image],
        lr=1.0,
        max_iter=steps,
        max_eval=steps * 26,
        history_size=100,
        line_search_fn="strong_wolfe",
        tolerance_grad=0,
        tolerance_change=0,
    )
    evaluations = 0

    def reference_closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        long_run.zero_grad()
        loss = reference.losses()["loss/total"].sum()
        loss.backward()
        return loss

    long_run.step(reference_closure)
    assert torch.allclose(module.image, reference.image, atol=1e-6)
    assert module.evaluations == evaluations  # one network pass per point, none repeated


def test_a_batch_holds_each_elements_own_settings_and_gives_each_its_solo_losses():
    specs = [_spec(0, "gram"), _spec(1, "centered", tv=0.0), _spec(2, "gram", style_layers=["relu1_1"])]
    batch = _module(specs)
    assert batch.image.shape == (3, 3, 16, 16)
    # Elements with the same statistic and layers share one style term; the others get their own.
    styles = [term for term in batch.terms if term.name == "style"]
    assert sorted((term.loss.name, term.elements) for term in styles) == [
        ("centered", [1]),
        ("gram", [0]),
        ("gram", [2]),
    ]
    together = batch.losses()
    for i, spec in enumerate(specs):
        alone = _module([spec])
        with torch.no_grad():
            alone.image.copy_(batch.image[i : i + 1])
        for key, value in alone.losses().items():
            assert torch.allclose(together[key][i], value[0], rtol=1e-5), (i, key)
    # A layer or term an element does not use is 0 for it.
    assert together["loss/style/relu2_1"][2] == 0 and together["loss/tv"][1] == 0 and together["loss/tv"][0] > 0


def test_adam_on_a_batch_takes_each_elements_solo_steps():
    # In float64: Adam divides by |gradient|, which turns last-bit differences of a batched float32
    # pass into visible ones where gradients are near zero.
    specs = [_spec(0), _spec(1, "both")]
    batch = _module(specs, optimizer="adam", lr=0.01).double()
    solos = [_module([spec], optimizer="adam", lr=0.01).double() for spec in specs]
    optimizers = [module.configure_optimizers() for module in (batch, *solos)]
    for _ in range(5):
        for module, optimizer in zip((batch, *solos), optimizers):
            module.step(optimizer)
    for i, solo in enumerate(solos):
        assert torch.allclose(batch.image[i], solo.image[0], atol=1e-6)


def test_the_losses_of_some_elements_are_their_values_in_the_whole_batch():
    batch = _module([_spec(0), _spec(1, "centered", tv=0.0), _spec(2, "gram", style_layers=["relu1_1"])])
    whole = batch.losses()
    some = batch.losses([0, 2])
    for key, value in whole.items():
        assert torch.allclose(some[key], value[[0, 2]], rtol=1e-5), key


def test_each_element_goes_through_the_network_only_as_deep_as_its_terms_read():
    shallow = dataclasses.replace(_spec(0, style_layers=["relu1_1"]), weights={"content": 0.0, "style": 1.0, "tv": 0.1})
    batch = _module([shallow, _spec(1), shallow])
    rows = []  # how many rows each pass takes through relu2_1, which only element 1 reads
    batch.extractor.features.relu2_1.register_forward_hook(lambda module, args, out: rows.append(len(out)))
    batch.losses([0, 2])
    assert rows == []
    whole = batch.losses()
    assert rows == [1]
    alone = [_module([spec]).losses() for spec in (shallow, _spec(1))]
    for key in ("loss/total", "loss/style", "loss/content"):
        assert torch.allclose(
            whole[key], torch.stack([alone[0][key][0], alone[1][key][0], alone[0][key][0]]), rtol=1e-5
        )


def test_a_finished_element_keeps_its_image_and_costs_no_evaluations_while_the_others_step():
    batch = _module([_spec(0), _spec(1)], optimizer="lbfgs")
    optimizer = batch.configure_optimizers()
    batch.step(optimizer)
    batch.finish(0, 1)
    frozen, passes = batch.image[0].detach().clone(), batch.element_evaluations[0]
    before = batch.losses()["loss/total"][1].item()
    for _ in range(3):
        batch.step(optimizer)
    assert torch.equal(batch.image[0].detach(), frozen) and batch.element_evaluations[0] == passes
    assert batch.element_evaluations[1] > passes and batch.losses()["loss/total"][1].item() < before
    assert batch.active == [False, True] and batch.finished_at == [1, None]
