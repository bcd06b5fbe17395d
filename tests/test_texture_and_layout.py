"""The evaluator with no learned weights (Portilla-Simoncelli statistics) and the warning about layouts copied (the
layout-leakage measure: test_measures_layout_leakage.py)."""

from __future__ import annotations

import math

import pytest
import torch

from styleexp import measures, samples
from styleexp.extractors import layer_names, positions_warning
from styleexp.measures import portilla_simoncelli

from .conftest import require_weights, run_in_process


def test_texture_distance_is_zero_for_an_image_against_itself_and_grows_with_noise():
    image = samples.load("coffee", 128)
    reference = portilla_simoncelli.texture(image)
    assert portilla_simoncelli.distance(reference, portilla_simoncelli.texture(image)) == 0
    distances = [
        portilla_simoncelli.distance(
            portilla_simoncelli.texture((image + sigma * torch.randn(image.shape)).clamp(0, 1)), reference
        )
        for sigma in (0.02, 0.05, 0.1, 0.2)
    ]
    assert distances == sorted(distances) and distances[0] > 0


@pytest.mark.parametrize(
    "shape, scales", [((64, 64), 3), ((128, 128), 4), ((256, 256), 4), ((48, 128), 2), ((32, 32), 2)]
)
def test_texture_statistics_work_at_any_size_and_aspect(shape, scales):
    image = torch.rand(3, *shape, generator=torch.Generator().manual_seed(0))
    texture = portilla_simoncelli.texture(image)
    assert texture.scales == scales and torch.isfinite(texture.statistics).all()
    other = portilla_simoncelli.texture(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1)))
    assert math.isfinite(portilla_simoncelli.distance(texture, other))  # compared at the scales both have


@pytest.mark.parametrize("name", ["halves", "checkers", "dark_circle"])
def test_flat_patterns_get_finite_statistics(name):
    flat = portilla_simoncelli.texture(samples.load(name, 64))
    assert torch.isfinite(flat.statistics).all()
    assert math.isfinite(portilla_simoncelli.distance(flat, portilla_simoncelli.texture(torch.full((3, 64, 64), 0.5))))


def test_the_shipped_spread_is_what_the_reference_set_gives():
    shipped = portilla_simoncelli.spread(1)
    again = portilla_simoncelli.reference_spread(portilla_simoncelli.reference_images(), range(1, 2))[1]
    assert torch.allclose(shipped, again, rtol=1e-4)


def test_the_texture_evaluator_is_named_and_ordered_like_the_others():
    assert measures.names(["vgg19_caffe", "portilla_simoncelli"])[-1] == "portilla_simoncelli/style/ps"
    assert measures.names(["portilla_simoncelli"])[0] == "style/ps"


def test_too_few_positions_for_a_style_layers_channels_are_warned_about(capsys, tmp_path):
    relu = [name for name in layer_names("vgg16") if name.startswith("relu")]
    warning = positions_warning("vgg16", relu, (64, 64))
    assert "relu5_1" in warning and "relu3_1" not in warning and "from size=368" in warning
    assert positions_warning("vgg16", relu, (512, 512)) is None
    require_weights("vgg16", "caffe")
    synthesis = [
        "logger=none",
        "content=null",
        "style=checkers",
        "network=vgg16",
        "style_layers=all_relu",
        "steps=1",
        "measures.networks=[]",
    ]
    run_in_process(tmp_path / "small", *synthesis, "size=64")
    assert (
        "styleexp: warning: at size=64 the style layers relu4_1, relu4_2, relu4_3, relu5_1" in capsys.readouterr().err
    )
    run_in_process(tmp_path / "shallow", *synthesis, "size=64", "style_layers.layers=[relu1_1,relu2_1,relu3_1]")
    assert "warning" not in capsys.readouterr().err  # relu3_1 at 64 px: 16 x 16 = 256 positions for 256 channels
