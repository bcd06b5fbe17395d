from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import models

from styleexp import preprocessing, samples, weights
from styleexp.errors import UserError
from styleexp.extractors import NETWORKS
from styleexp.extractors.vgg import VGGFeatures

from .conftest import require_weights

SHARED = [("vgg16", "caffe"), ("vgg16", "torchvision"), ("vgg19", "caffe")]


def _reference_input(image: torch.Tensor, convention: str) -> torch.Tensor:
    """Each convention written out by hand, independently of styleexp.preprocessing."""
    if convention == "caffe":
        bgr = image[:, [2, 1, 0]] * 255
        return bgr - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (image - mean) / std


@pytest.mark.slow
@pytest.mark.parametrize("network, source", SHARED)
def test_shared_weights_load_strictly_with_their_own_preprocessing(network, source, photo):
    path = require_weights(network, source)
    loaded = weights.load_weights(network, source)
    assert loaded.path == path and loaded.preprocessing == source
    reference = getattr(models, network)().features.eval()
    reference.load_state_dict(torch.load(path, weights_only=True), strict=True)

    image = samples.load(photo, 48).unsqueeze(0)
    extractor = VGGFeatures(network, ["relu3_1"], loaded.state_dict, preprocessing.get(loaded.preprocessing))
    ours = extractor(image)["relu3_1"]
    with torch.no_grad():
        expected = reference[:12](_reference_input(image, source))
    assert torch.allclose(ours, expected, rtol=1e-4, atol=1e-3)

    untrained = VGGFeatures(network, ["relu3_1"], weights.random_state_dict(network, 0), preprocessing.get(source))
    assert not torch.allclose(ours, untrained(image)["relu3_1"], rtol=0.1)


def test_random_weights_are_seeded():
    first, again, other = (weights.load_weights("vgg16", "random", seed=s) for s in (1, 1, 2))
    assert first.path is None and first.preprocessing == "torchvision"
    assert torch.equal(first.state_dict["0.weight"], again.state_dict["0.weight"])
    assert not torch.equal(first.state_dict["0.weight"], other.state_dict["0.weight"])


def test_weights_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.ENV_VAR, str(tmp_path / "env"))
    assert weights.weights_dir(tmp_path / "config") == tmp_path / "config"
    assert weights.weights_dir() == tmp_path / "env"
    monkeypatch.delenv(weights.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert weights.weights_dir() == tmp_path / "cache" / "styleexp" / "weights"
    assert (
        weights.weights_file("vgg19", "caffe")
        == tmp_path / "cache" / "styleexp" / "weights" / "vgg19_imagenet_caffe.pth"
    )


def test_missing_file_error_names_file_directory_and_remedy(tmp_path):
    with pytest.raises(UserError) as error:
        weights.load_weights("vgg19", "torchvision", directory=tmp_path, download=False)
    message = str(error.value)
    for part in ("vgg19_imagenet_torchvision.pth", str(tmp_path), weights.ENV_VAR):
        assert part in message
    assert "\n" not in message


def test_failed_download_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(NETWORKS["vgg16"].downloads, "caffe", (tmp_path / "nowhere" / "vgg16-00b39a1b.pth").as_uri())
    with pytest.raises(UserError, match="download from .* failed") as error:
        weights.load_weights("vgg16", "caffe", directory=tmp_path / "weights")
    assert "vgg16_imagenet_caffe.pth" in str(error.value)
    assert not (tmp_path / "weights" / "vgg16_imagenet_caffe.pth").exists()


@pytest.mark.slow
def test_a_download_is_stored_as_features_only_if_it_holds_the_genuine_weights(monkeypatch, tmp_path):
    genuine = torch.load(require_weights("vgg16", "caffe"), weights_only=True)
    whole = {f"features.{key}": value for key, value in genuine.items()}
    whole.update({key: value for key, value in models.vgg16().state_dict().items() if key.startswith("classifier.")})
    published = tmp_path / "server" / "vgg16-00b39a1b.pth"  # a whole model, as the published files are
    published.parent.mkdir()
    monkeypatch.setitem(NETWORKS["vgg16"].downloads, "caffe", published.as_uri())
    stored = tmp_path / "weights" / "vgg16_imagenet_caffe.pth"

    torch.save(
        {**whole, "features.28.weight": whole["features.28.weight"] + 1e-3}, published
    )  # not the genuine weights
    with pytest.raises(UserError, match="is not the genuine weights"):
        weights.load_weights("vgg16", "caffe", directory=tmp_path / "weights")
    assert not stored.exists() and not any(stored.parent.iterdir())  # nothing stored, no temporary leftovers

    torch.save(whole, published)
    loaded = weights.load_weights("vgg16", "caffe", directory=tmp_path / "weights")
    assert loaded.path == stored and stored.is_file()
    saved = torch.load(stored, weights_only=True)
    assert set(saved) == set(genuine) and torch.equal(saved["28.weight"], genuine["28.weight"])
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]


def test_a_file_path_needs_its_preprocessing_named(tmp_path):
    path = tmp_path / "mine.pth"
    torch.save(weights.random_state_dict("vgg16", 0), path)
    with pytest.raises(UserError, match="network.preprocessing"):
        weights.load_weights("vgg16", str(path))
    loaded = weights.load_weights("vgg16", str(path), preprocessing_name="caffe")
    assert loaded.path == path and loaded.preprocessing == "caffe"
    with pytest.raises(UserError, match="no such file"):
        weights.load_weights("vgg16", str(tmp_path / "absent.pth"), preprocessing_name="caffe")


def test_named_source_refuses_a_contradicting_preprocessing():
    with pytest.raises(UserError, match="expect torchvision preprocessing"):
        weights.load_weights("vgg16", "random", preprocessing_name="caffe")


def _bad_file(tmp_path: Path, content) -> Path:
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path


def test_files_with_wrong_keys_shapes_or_format_give_clear_errors(tmp_path):
    good = weights.random_state_dict("vgg16", 0)
    renamed = {("conv." + k if k.startswith("0.") else k): v for k, v in good.items()}
    with pytest.raises(UserError, match=r"missing 0\.bias, 0\.weight; unexpected conv\.0\.bias"):
        weights.load_weights("vgg16", str(_bad_file(tmp_path, renamed)), preprocessing_name="caffe")
    reshaped = dict(good, **{"2.weight": torch.zeros(32, 64, 3, 3)})
    with pytest.raises(UserError, match=r"wrong shape for 2\.weight .*\(32, 64, 3, 3\), expected \(64, 64, 3, 3\)"):
        weights.load_weights("vgg16", str(_bad_file(tmp_path, reshaped)), preprocessing_name="caffe")
    with pytest.raises(
        UserError, match=r"not vgg19 features weights: missing 16\.bias, 16\.weight, 23\.bias, 23\.weight and 8 more"
    ):
        weights.load_weights("vgg19", str(_bad_file(tmp_path, good)), preprocessing_name="caffe")
    with pytest.raises(UserError, match="not a PyTorch weights file"):
        weights.load_weights("vgg16", str(_bad_file(tmp_path, b"plain text")), preprocessing_name="caffe")
    with pytest.raises(UserError, match="not a state dict"):
        weights.load_weights("vgg16", str(_bad_file(tmp_path, [1, 2, 3])), preprocessing_name="caffe")
