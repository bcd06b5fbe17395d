from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from styleexp.errors import UserError
from styleexp.images import load_image, save_image

RED = (200, 30, 10)


def _solid(mode_image: Image.Image, tmp_path, name: str, **save_args) -> torch.Tensor:
    path = tmp_path / name
    mode_image.save(path, **save_args)
    return load_image(path)


def _assert_rgb(image: torch.Tensor, height: int, width: int) -> None:
    assert image.shape == (3, height, width)
    assert image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1


def test_rgb_values_are_scaled_to_unit_range(tmp_path):
    image = _solid(Image.new("RGB", (6, 4), RED), tmp_path, "rgb.png")
    _assert_rgb(image, 4, 6)
    assert torch.allclose(image[:, 0, 0], torch.tensor(RED) / 255)


def test_greyscale_becomes_three_equal_channels(tmp_path):
    image = _solid(Image.new("L", (5, 5), 128), tmp_path, "grey.png")
    _assert_rgb(image, 5, 5)
    assert torch.allclose(image, torch.full_like(image, 128 / 255))


def test_palette_image_keeps_its_colours(tmp_path):
    image = _solid(Image.new("RGB", (4, 4), RED).convert("P", palette=Image.Palette.ADAPTIVE), tmp_path, "palette.png")
    assert torch.allclose(image[:, 2, 2], torch.tensor(RED) / 255, atol=1 / 255)


def test_transparent_pixels_are_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (4, 2), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (*RED, 255))
    image = _solid(rgba, tmp_path, "alpha.png")
    _assert_rgb(image, 2, 4)
    assert torch.allclose(image[:, 0, 0], torch.tensor(RED) / 255)
    assert torch.allclose(image[:, 1, 3], torch.ones(3))
    grey_alpha = _solid(Image.new("LA", (3, 3), (0, 0)), tmp_path, "la.png")
    assert torch.allclose(grey_alpha, torch.ones_like(grey_alpha))


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    image = _solid(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path, "cmyk.jpg", quality=95)
    _assert_rgb(image, 8, 8)
    red, green, blue = image[:, 4, 4]
    assert red > 0.9 and green < 0.1 and blue < 0.1


def test_sixteen_bit_greyscale_keeps_its_range(tmp_path):
    levels = np.array([[0, 16384], [32768, 65535]], dtype=np.uint16)
    image = _solid(Image.fromarray(levels), tmp_path, "deep.png")
    _assert_rgb(image, 2, 2)
    assert torch.allclose(image[0], torch.tensor(levels / 65535.0, dtype=torch.float32), atol=1e-6)


def test_exif_rotated_photo_comes_out_upright(tmp_path):
    upright = Image.new("RGB", (10, 20), (0, 0, 255))
    upright.paste(RED, (0, 0, 10, 5))  # red band at the top
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 clockwise to display
    image = _solid(stored, tmp_path, "rotated.jpg", exif=exif, quality=95)
    _assert_rgb(image, 20, 10)
    assert image[0, 1, 5] > 0.6 and image[2, 1, 5] < 0.3  # top is red
    assert image[2, 18, 5] > 0.8  # bottom is blue


def test_resize_sets_longest_side_and_keeps_aspect(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 200), RED).save(path)
    _assert_rgb(load_image(path, size=150), 100, 150)
    _assert_rgb(load_image(path, size=600), 400, 600)


def test_save_then_load_round_trips_and_leaves_no_temporary_files(tmp_path):
    image = torch.rand(3, 7, 9)
    path = save_image(image, tmp_path / "out" / "image.png")
    assert path.is_file()
    assert torch.allclose(load_image(path), image, atol=0.5 / 255 + 1e-6)
    save_image(image.unsqueeze(0) * 0, path)  # overwriting an image is allowed for the same file
    assert load_image(path).max() == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["image.png"]


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_text("not an image at all\n"), p)[1], "not an image file"),
    ],
    ids=["missing", "directory", "empty", "not-an-image"],
)
def test_bad_files_give_one_line_errors_naming_the_path(tmp_path, make, expected):
    path = make(tmp_path / "input.jpg")
    with pytest.raises(UserError) as error:
        load_image(path)
    message = str(error.value)
    assert str(path) in message and expected in message and "\n" not in message


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_file_gives_one_line_error(tmp_path, suffix):
    whole = tmp_path / f"whole.{suffix}"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(whole)
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or corrupt") as error:
        load_image(cut)
    assert str(cut) in str(error.value) and "\n" not in str(error.value)
