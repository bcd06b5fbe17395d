from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import models

from styleexp import preprocessing
from styleexp.errors import UserError
from styleexp.extractors import conv_layers, layer_names, resolve_layer
from styleexp.extractors.vgg import VGGFeatures, make_features
from styleexp.weights import random_state_dict


def _extractor(network: str, layers, pooling: str = "max") -> VGGFeatures:
    return VGGFeatures(network, layers, random_state_dict(network, seed=0), preprocessing.torchvision(), pooling)


@pytest.mark.parametrize("network, convs, modules", [("vgg16", 13, 31), ("vgg19", 16, 37)])
def test_layer_names_match_torchvision_modules(network, convs, modules):
    names = layer_names(network)
    with torch.device("meta"):  # the architecture alone, without initialising 138M parameters
        reference = getattr(models, network)().features
    assert len(names) == len(reference) == modules
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
    for name, module in zip(names, reference):
        assert isinstance(module, kinds[name[:4]]), name
    assert len(conv_layers(network)) == convs
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[-1] == "pool5"


def test_layer_numbers_follow_the_literature():
    assert [resolve_layer("vgg19", k) for k in (1, 3, 5, 9, 13)] == [
        "conv1_1",
        "conv2_1",
        "conv3_1",
        "conv4_1",
        "conv5_1",
    ]
    assert resolve_layer("vgg19", "10") == "conv4_2"
    assert resolve_layer("vgg19", 16) == "conv5_4"
    assert resolve_layer("vgg16", 13) == "conv5_3"
    assert resolve_layer("vgg16", 7) == "conv3_3"


def test_unknown_layers_give_errors_listing_the_valid_ones():
    with pytest.raises(UserError, match="relu5_1") as error:
        resolve_layer("vgg16", "relu5_4")  # exists only in VGG-19
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="1..13"):
        resolve_layer("vgg16", 14)
    with pytest.raises(UserError, match="vgg16, vgg19"):
        layer_names("vgg11")


def test_network_is_cut_after_the_deepest_requested_layer():
    extractor = _extractor("vgg16", ["relu1_1", "relu2_1"])
    assert list(dict(extractor.features.named_children())) == layer_names("vgg16")[:7]
    out = extractor(torch.rand(1, 3, 32, 32))
    assert set(out) == {"relu1_1", "relu2_1"}
    assert out["relu2_1"].shape == (1, 128, 16, 16)


def test_one_forward_pass_returns_every_requested_layer_with_its_shape():
    extractor = _extractor("vgg19", [1, "relu3_1", "pool4", 16])
    out = extractor(torch.rand(2, 3, 64, 48))
    assert extractor.layers == ("conv1_1", "relu3_1", "pool4", "conv5_4")
    assert out["conv1_1"].shape == (2, 64, 64, 48)
    assert out["relu3_1"].shape == (2, 256, 16, 12)
    assert out["pool4"].shape == (2, 512, 4, 3)
    assert out["conv5_4"].shape == (2, 512, 4, 3)


def test_requested_conv_outputs_are_not_overwritten_by_the_relu_after_them():
    out = _extractor("vgg16", ["conv1_1", "relu1_1", "relu1_2"])(torch.rand(1, 3, 16, 16))
    assert out["conv1_1"].min() < 0
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp(min=0))


def test_outputs_match_torchvision_run_module_by_module():
    state = random_state_dict("vgg16", seed=3)
    with torch.device("meta"):
        reference = models.vgg16().features.eval()
    reference = reference.to_empty(device="cpu")
    reference.load_state_dict(state)
    image = torch.rand(1, 3, 32, 32)
    pre = preprocessing.torchvision()
    extractor = VGGFeatures("vgg16", ["relu3_3"], state, pre)
    expected = reference[:16](pre(image))
    assert torch.allclose(extractor(image)["relu3_3"], expected, atol=1e-5)


def test_average_pooling_replaces_every_max_pool():
    features = make_features("vgg19", "avg")
    assert not any(isinstance(m, nn.MaxPool2d) for m in features)
    assert sum(isinstance(m, nn.AvgPool2d) for m in features) == 5
    image = torch.rand(1, 3, 32, 32)
    max_out = _extractor("vgg19", ["relu2_1"], "max")(image)["relu2_1"]
    avg_out = _extractor("vgg19", ["relu2_1"], "avg")(image)["relu2_1"]
    assert not torch.allclose(max_out, avg_out)
    with pytest.raises(UserError, match="max, avg"):
        make_features("vgg16", "min")


def test_extractor_is_frozen_but_passes_gradients_to_the_image():
    extractor = _extractor("vgg16", ["relu2_2"])
    extractor.train()
    assert not extractor.training and not any(m.training for m in extractor.modules())
    assert list(extractor.parameters()) == [] and extractor.state_dict() == {}
    assert all(not b.requires_grad for b in extractor.buffers())
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    extractor(image)["relu2_2"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(b.grad is None for b in extractor.buffers())


def test_min_input_size_counts_the_poolings_before_a_layer():
    assert _extractor("vgg16", ["relu1_1"]).min_input_size == 1
    assert _extractor("vgg16", ["relu2_1", "pool2"]).min_input_size == 4
    assert _extractor("vgg19", ["relu5_1"]).min_input_size == 16


def test_preprocessing_maps_pixels_as_each_convention_says():
    pixel = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1)
    caffe = preprocessing.caffe()(pixel).flatten()
    assert torch.allclose(caffe, torch.tensor([0.8 * 255 - 103.939, 0.5 * 255 - 116.779, 0.2 * 255 - 123.68]))
    tv = preprocessing.torchvision()(pixel).flatten()
    expected = (torch.tensor([0.2, 0.5, 0.8]) - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor(
        [0.229, 0.224, 0.225]
    )
    assert torch.allclose(tv, expected)
    with pytest.raises(UserError, match="caffe, torchvision"):
        preprocessing.get("imagenet")
