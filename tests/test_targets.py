"""Targets are computed once per image and shared between jobs through the on-disk cache."""

from __future__ import annotations

import torch

from styleexp import preprocessing
from styleexp.extractors.vgg import VGGFeatures
from styleexp.statistics import gram
from styleexp.style_losses import make
from styleexp.targets import TargetCache, Targets
from styleexp.weights import random_state_dict

LAYERS = ["relu1_1", "relu2_1"]


class CountingExtractor(VGGFeatures):
    passes = 0

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        CountingExtractor.passes += 1
        return super().forward(image)


def _extractor() -> CountingExtractor:
    CountingExtractor.passes = 0
    return CountingExtractor("vgg16", LAYERS, random_state_dict("vgg16", 0), preprocessing.torchvision())


def test_targets_take_one_pass_per_image_and_match_the_extractor():
    extractor, image = _extractor(), torch.rand(3, 16, 16)
    targets = Targets(extractor)
    activations = targets.activations(image, "relu2_1")
    statistic = targets.style(image, "relu1_1", make("gram"))
    assert CountingExtractor.passes == 1 and targets.computed == 2 and targets.reused == 0
    features = extractor(image[None])
    assert torch.equal(activations, features["relu2_1"]) and torch.equal(statistic, gram(features["relu1_1"]))
    targets.activations(torch.rand(3, 16, 16), "relu2_1")
    assert CountingExtractor.passes == 3  # the check above, and the new image's own pass


def test_the_cache_is_shared_between_jobs_and_keyed_by_everything_a_target_depends_on(tmp_path):
    image = torch.rand(3, 16, 16)
    first = Targets(_extractor(), TargetCache(tmp_path, "vgg16|random|0"))
    stored = first.style(image, "relu1_1", make("centered"))
    assert (first.computed, first.reused) == (1, 0)

    second = Targets(_extractor(), TargetCache(tmp_path, "vgg16|random|0"))
    assert torch.equal(second.style(image, "relu1_1", make("centered")), stored)
    assert (second.computed, second.reused) == (0, 1) and CountingExtractor.passes == 0  # loaded, not computed

    cache = TargetCache(tmp_path, "vgg16|random|0")
    paths = {
        cache.path(image, "relu1_1", "style-centered"),
        cache.path(image, "relu2_1", "style-centered"),
        cache.path(image, "relu1_1", "style-gram"),
        cache.path(image + 1e-3, "relu1_1", "style-centered"),
        cache.path(image[:, :8], "relu1_1", "style-centered"),
        TargetCache(tmp_path, "vgg19|caffe").path(image, "relu1_1", "style-centered"),
    }
    assert len(paths) == 6
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pt") == [
        cache.path(image, "relu1_1", "style-centered").name
    ]
    assert not list(tmp_path.glob("*.partial"))


def test_a_damaged_cache_entry_is_recomputed_replaced_and_named(tmp_path, capsys):
    image = torch.rand(3, 16, 16)
    cache = TargetCache(tmp_path, "vgg16|random|0")
    stored = Targets(_extractor(), cache).style(image, "relu1_1", make("gram"))
    path = cache.path(image, "relu1_1", "style-gram")
    whole = path.read_bytes()
    for damage in (whole[: len(whole) // 2], whole[:-1] + bytes([whole[-1] ^ 1]), b""):
        path.write_bytes(damage)
        targets = Targets(_extractor(), cache)
        assert torch.equal(targets.style(image, "relu1_1", make("gram")), stored)
        assert (targets.computed, targets.reused) == (1, 0)
        assert f"the cached target {path} is damaged" in capsys.readouterr().err
        assert path.read_bytes() == whole  # replaced by a sound entry, which the next job reads
    again = Targets(_extractor(), cache)
    again.style(image, "relu1_1", make("gram"))
    assert (again.computed, again.reused) == (0, 1) and capsys.readouterr().err == ""
