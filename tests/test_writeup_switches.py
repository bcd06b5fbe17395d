"""The write-ups' own settings as switches, each against its direct formula: write-up 000's unnormalised Gram
matrices in a mean squared error and its per-step renormalisation, Gatys et al.'s units and normalised network,
and the layers (before or after the ReLU) each write-up used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from styleexp import normalisation, preprocessing
from styleexp.batching import batches
from styleexp.build import build, spec_of
from styleexp.extractors import conv_layers, layer_names
from styleexp.extractors.vgg import VGGFeatures
from styleexp.weights import load_weights, random_state_dict
from tests.conftest import compose_config, require_weights

TINY = ("network.weights=random", "trainer=cpu", "logger=none", "size=32")


def _unnormalised(features: torch.Tensor, centered: bool) -> torch.Tensor:
    """``F F^T`` of ``[1, C, H, W]`` activations as write-up 000's TensorFlow computes it, centred or not."""
    matrix = features[0].flatten(1).T.double()  # tf.reshape(tensor, [-1, num_channels]): [M, C]
    if centered:
        matrix = matrix - matrix.mean(dim=0, keepdim=True)
    return matrix.T @ matrix


def test_positions_squared_weighting_is_write_up_000s_mean_squared_error_of_unnormalised_gram_matrices():
    cfg = compose_config(*TINY, "network=vgg16", "content=null", "style=checkers", "gram=both",
                         "style_layers=all_relu", "style_layers.weighting=positions_squared")  # fmt: skip
    module = build([cfg]).module
    layers = [name for name in layer_names("vgg16") if name.startswith("relu")]
    ours = module.extractor(module.image.detach())
    theirs = module.extractor(spec_of(cfg, 32).style[None])
    # Per layer: tf.concat([gram, gram_centered], axis=0), then mean_squared_error; reduce_mean over the layers.
    direct = {
        layer: torch.cat([_unnormalised(ours[layer], c) - _unnormalised(theirs[layer], c) for c in (False, True)])
        .pow(2)
        .mean()
        / len(layers)
        for layer in layers
    }
    losses = module.losses()
    for layer in layers:
        assert losses[f"loss/style/{layer}"].item() == pytest.approx(direct[layer].item(), rel=1e-5), layer
    assert losses["loss/style"].item() == pytest.approx(sum(direct.values()).item(), rel=1e-5)
    # Block 1 then outweighs block 5 by (16 x 16)^2 positions squared, which styleexp's equal weighting removes.
    equal = spec_of(compose_config(*TINY, "network=vgg16", "content=null", "style_layers=all_relu"), 32).layer_weights
    weights = spec_of(cfg, 32).layer_weights
    assert weights["relu1_1"] / weights["relu5_1"] == 16**4 * equal["relu1_1"] / equal["relu5_1"]


def test_running_renormalisation_follows_the_tutorials_gradient_of_each_term_over_its_value():
    weights = {"content": 1.5, "style": 10.0, "tv": 0.3}  # the tutorial's weight_content, weight_style, weight_denoise
    overrides = [f"loss.{name}={value}" for name, value in weights.items()]
    module = build([compose_config(*TINY, "renormalise=running", *overrides)]).module
    losses = module.losses()
    values = {name: losses[f"loss/{name}"] for name in weights}
    grads = {
        name: torch.autograd.grad(value.sum(), module.image, retain_graph=True)[0] for name, value in values.items()
    }
    # adj_t = 1 / (loss_t + 1e-10); the gradient of sum_t weight_t * adj_t * loss_t with adj_t held.
    direct = sum(weights[name] * grads[name] / (values[name] + 1e-10) for name in weights)
    mean = torch.exp(sum(w * torch.log(values[name] + 1e-10) for name, w in weights.items()) / sum(weights.values()))
    assert losses["loss/total"].item() == pytest.approx(mean.item(), rel=1e-5)
    ours = torch.autograd.grad(losses["loss/total"].sum(), module.image)[0]
    expected = direct * mean / sum(weights.values())
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    plain = build([compose_config(*TINY, *overrides, "loss.tv=0")]).module.losses()
    assert plain["loss/total"].item() == pytest.approx(
        1.5 * plain["loss/content"].item() + 10 * plain["loss/style"].item()
    )


def test_gatys_units_give_the_papers_loss_for_an_image_of_any_aspect_ratio():
    alpha, beta = 2.0, 3.0
    cfg = compose_config(*TINY, "size=48", "content=rocket", "style=rocket", "loss_units=gatys",
                         f"loss.content={alpha}", f"loss.style={beta}", "loss.tv=0")  # fmt: skip
    module, spec = build([cfg]).module, spec_of(cfg, 48)
    assert tuple(spec.shape[1:]) == (32, 48)  # not square: the content layer has 4 x 6 positions
    ours, content = module.extractor(module.image.detach()), module.extractor(spec.content[None])
    style_layers = list(spec.style_layers)
    content_loss = 0.5 * (ours["relu4_2"] - content["relu4_2"]).double().pow(2).sum()  # 1/2 sum (F - P)^2
    e = [  # E_l = sum (G - A)^2 / (4 N^2 M^2), G = F F^T
        (_unnormalised(ours[layer], False) - _unnormalised(content[layer], False)).pow(2).sum()
        / (4 * ours[layer].shape[1] ** 2 * (ours[layer].shape[2] * ours[layer].shape[3]) ** 2)
        for layer in style_layers
    ]
    direct = alpha * content_loss + beta * sum(e) / len(e)
    assert module.losses()["loss/total"].item() == pytest.approx(direct.item(), rel=1e-5)


def test_presets_convert_their_write_ups_weights_for_the_actual_image():
    preset = compose_config("preset=artistic_style_2018", "content=rocket", "size=64")
    spec = spec_of(preset, 64)
    height, width = spec.shape[1:]
    assert (height, width) == (43, 64)
    assert spec.weights["content"] == pytest.approx(1e-4 * 512 * (height // 8) * (width // 8) / 2)
    assert spec.weights["style"] == pytest.approx(5 / 4)
    assert spec_of(compose_config("preset=gatys2016", "content=rocket", "size=64"), 64).weights["style"] == 250


def test_gatys_normalisation_makes_every_filters_mean_activation_one_and_divides_each_channel_by_it():
    state_dict = random_state_dict("vgg16", 0)
    images = [torch.rand(3, 32, 48), torch.rand(3, 40, 32)]
    means = normalisation.filter_means("vgg16", state_dict, preprocessing.torchvision(), images)
    rescaled = normalisation.normalised("vgg16", state_dict, means)
    after = normalisation.filter_means("vgg16", rescaled, preprocessing.torchvision(), images)
    for conv, mean in after.items():
        alive = means[conv] > 0
        # A filter barely active (a hundredth of its layer's typical mean or less) is 1 only to float32's rounding.
        clear = means[conv] > 1e-2 * means[conv][alive].median()
        torch.testing.assert_close(mean[clear], torch.ones_like(mean[clear]), rtol=1e-4, atol=0)
        torch.testing.assert_close(mean[alive], torch.ones_like(mean[alive]), rtol=0.05, atol=0)
        assert bool((mean[~alive] == 0).all())
    names = layer_names("vgg16")
    for pooling in ("max", "avg"):
        original, normal = (
            VGGFeatures("vgg16", names, weights, preprocessing.torchvision(), pooling)(images[0][None])
            for weights in (state_dict, rescaled)
        )
        for name in names:
            conv = [layer for layer in conv_layers("vgg16") if names.index(layer) <= names.index(name)][-1]
            scale = torch.where(means[conv] > 0, means[conv], 1).float()
            # Compared in the original units: a nearly dead filter's tiny mean magnifies float32's rounding.
            atol = 1e-5 * original[name].abs().max().item()
            torch.testing.assert_close(normal[name] * scale[None, :, None, None], original[name], rtol=1e-4, atol=atol)


def test_gatys_normalisation_measures_once_caches_beside_its_facts_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(normalisation, "IMAGES", ("checkers", "astronaut"))
    monkeypatch.setattr(normalisation, "SIZE", 32)
    weights = load_weights("vgg16", "random")
    rescaled, facts = normalisation.gatys(weights)
    assert Path(facts["means"]).parent == tmp_path / "styleexp" / "normalisation"
    saved = json.loads(Path(facts["means"]).read_text())
    assert saved["images"] == facts["images"] == ["checkers", "astronaut"] and saved["size"] == facts["size"] == 32
    monkeypatch.setattr(normalisation, "filter_means", lambda *args, **kwargs: pytest.fail("measured twice"))
    again, facts_again = normalisation.gatys(weights)
    assert facts_again == facts and all(torch.equal(again[key], rescaled[key]) for key in rescaled)
    network = build([compose_config(*TINY, "network=vgg16", "network.normalisation=gatys")])
    assert network.facts[0]["weights"]["normalisation"] == facts  # recorded, and part of the target cache's key


@pytest.mark.slow
def test_the_shipped_weights_normalised_have_mean_activation_one_over_the_stated_images(tmp_path, monkeypatch):
    require_weights("vgg19", "caffe")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    weights = load_weights("vgg19", "caffe")
    rescaled, facts = normalisation.gatys(weights)
    assert facts["images"] == list(normalisation.IMAGES) and facts["size"] == normalisation.SIZE
    after = normalisation.filter_means("vgg19", rescaled, preprocessing.caffe())
    live = torch.cat([mean[mean > 0] for mean in after.values()])
    assert len(live) + facts["dead_filters"] == sum(len(mean) for mean in after.values())
    torch.testing.assert_close(live, torch.ones_like(live), rtol=1e-3, atol=0)


def test_the_content_study_and_the_presets_use_the_layers_after_the_relu_as_their_write_ups_did():
    study = compose_config("study=content_layers", hydra=True).hydra.sweeper.params
    assert study.content_layer.split(",") == [name for name in layer_names("vgg16") if name.startswith("relu")]
    for preset, content in [
        ("artistic_style_2018", "relu4_2"),
        ("keras_tutorial", "relu5_2"),
        ("gatys2016", "relu4_2"),
    ]:
        cfg = compose_config(f"preset={preset}")
        assert cfg.content_layer == content
        assert list(cfg.style_layers.layers) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert compose_config("preset=gatys2016").network.normalisation.value == "gatys"
    assert list(compose_config("style_layers=gatys_conv").style_layers.layers)[0] == "conv1_1"  # the ablation


def test_switches_that_change_the_network_or_how_terms_add_up_split_a_batch_the_others_share_it():
    base = ("content=null", "style=checkers", "logger=none", "size=32")
    cfgs = [
        compose_config(*base),
        compose_config(*base, "style_layers.weighting=positions_squared", "loss_units=gatys"),
        compose_config(*base, "renormalise=running"),
        compose_config(*base, "network.normalisation=gatys"),
    ]
    assert batches(cfgs, None, fit_memory=False) == [[0, 1], [2], [3]]
