from __future__ import annotations

import pytest
import torch
from PIL import Image

from styleexp import samples
from styleexp.errors import UserError


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_every_sample_loads_by_name_at_the_requested_size(name):
    image = samples.load(name, 96)
    assert image.shape[0] == 3 and max(image.shape[1:]) == 96
    assert 0 <= image.min() and image.max() <= 1
    assert image.std() > 0.05  # a real picture, not a blank


def test_dark_circle_is_dark_in_the_middle_and_light_at_the_corners():
    image = samples.load("dark_circle", 64)
    assert image[:, 32, 32].max() < 0.2
    assert image[:, 2, 2].min() > 0.8 and image[:, 61, 61].min() > 0.8


def test_halves_meet_at_a_straight_vertical_edge():
    image = samples.load("halves", 64).mean(0)
    assert (image[:, :32] > 0.8).all() and (image[:, 32:] < 0.2).all()


def test_checkers_are_red_and_black():
    image = samples.load("checkers", 64)
    red = (image[0] > 0.8) & (image[1] < 0.1) & (image[2] < 0.1)
    black = image.max(0).values < 0.1
    assert (red | black).all()
    assert abs(red.float().mean().item() - 0.5) < 0.05


def test_rainbow_circles_nest_red_outside_violet_inside():
    image = samples.load("rainbow_circles", 128)
    assert torch.allclose(image[:, 64, 64], torch.tensor([160, 40, 200]) / 255, atol=0.02)
    outer_ring = image[:, 64, 8]  # 6 % in from the edge: the first ring
    assert outer_ring[0] > 0.8 and outer_ring[1] < 0.1


def test_lorem_ipsum_is_dark_text_on_a_white_page():
    image = samples.load("lorem_ipsum", 256).mean(0)
    ink = (image < 0.5).float().mean().item()
    assert 0.03 < ink < 0.4
    rows_with_ink = (image < 0.5).any(dim=1).float().mean().item()
    assert 0.3 < rows_with_ink < 0.9  # lines of text with spacing between them


def test_photos_keep_their_aspect_ratio():
    coffee = samples.load("coffee", 120)  # scikit-image's coffee is 600 x 400
    assert coffee.shape == (3, 80, 120)


def test_a_path_still_loads_a_file(tmp_path):
    path = tmp_path / "file.png"
    Image.new("RGB", (10, 5), (0, 255, 0)).save(path)
    assert samples.load(path).shape == (3, 5, 10)


def test_unknown_sample_name_lists_the_samples():
    with pytest.raises(UserError, match="checkers"):
        samples.load("chekers")
