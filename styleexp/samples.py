"""Sample images bundled with styleexp, named without a path (``astronaut``, ``checkers``, ...).

Content photographs and texture photographs come from scikit-image's bundled data: the photographs are public
domain or CC0; ``brick``, ``grass`` and ``gravel`` (greyscale) are CC0 Textures, ``hubble_deep_field`` is NASA's
(public domain), ``immunohistochemistry`` has no known copyright restrictions. The contrived
style images of the reference write-up (``shared/seeds/000_*.txt``) are drawn by code at the size
asked for, so they are sharp at any resolution.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from styleexp.errors import UserError
from styleexp.images import load_image, open_image, to_tensor

DEFAULT_SIZE = 512
_SUPERSAMPLE = 4  # draw shapes larger, then downsample: anti-aliased curved edges
_LIGHT, _DARK = (235, 235, 235), (25, 25, 25)
_RAINBOW = [(228, 3, 3), (255, 140, 0), (255, 237, 0), (0, 128, 38), (0, 77, 255), (75, 0, 130), (160, 40, 200)]
_LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip "
    "ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
    "fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia "
    "deserunt mollit anim id est laborum. "
)


def _photo(name: str) -> Callable[[int], Image.Image]:
    def load(size: int) -> Image.Image:
        import skimage.data  # deferred: importing scikit-image takes a second

        return Image.fromarray(getattr(skimage.data, name)())

    return load


def dark_circle(size: int) -> Image.Image:
    """A dark disc, 70 % of the side across, centred on a light background."""
    big = size * _SUPERSAMPLE
    image = Image.new("RGB", (big, big), _LIGHT)
    margin = 0.15 * big
    ImageDraw.Draw(image).ellipse((margin, margin, big - margin, big - margin), fill=_DARK)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def halves(size: int) -> Image.Image:
    """Light left half, dark right half, meeting at a straight vertical edge."""
    image = Image.new("RGB", (size, size), _LIGHT)
    ImageDraw.Draw(image).rectangle((size // 2, 0, size, size), fill=_DARK)
    return image


def checkers(size: int) -> Image.Image:
    """An 8 x 8 board of red and black squares."""
    image = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for row in range(8):
        for col in range(row % 2, 8, 2):
            draw.rectangle(
                (col * size // 8, row * size // 8, (col + 1) * size // 8 - 1, (row + 1) * size // 8 - 1),
                fill=(220, 0, 0),
            )
    return image


def rainbow_circles(size: int) -> Image.Image:
    """Concentric rings in rainbow order, red outermost, on white."""
    big = size * _SUPERSAMPLE
    image = Image.new("RGB", (big, big), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for ring, colour in enumerate(_RAINBOW):
        inset = 0.04 * big + ring * 0.06 * big
        draw.ellipse((inset, inset, big - inset, big - inset), fill=colour)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def lorem_ipsum(size: int) -> Image.Image:
    """A page of black lorem-ipsum text on white, in neat lines."""
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(6, size // 24))
    margin, line_height = size // 16, max(8, round(size / 24 * 1.4))
    words, y = (_LOREM * 8).split(), margin
    while y + line_height <= size - margin and words:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= size - 2 * margin:
            line += " " + words.pop(0)
        draw.text((margin, y), line, fill=(0, 0, 0), font=font)
        y += line_height
    return image


PHOTOS: dict[str, Callable[[int], Image.Image]] = {
    name: _photo(name) for name in ("astronaut", "coffee", "chelsea", "rocket")
}
# Textures: the same statistics everywhere and no objects, for "mostly style" beside the object photographs.
TEXTURES: dict[str, Callable[[int], Image.Image]] = {
    name: _photo(name) for name in ("brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry")
}
STYLES: dict[str, Callable[[int], Image.Image]] = {
    "dark_circle": dark_circle,
    "halves": halves,
    "checkers": checkers,
    "rainbow_circles": rainbow_circles,
    "lorem_ipsum": lorem_ipsum,
}
SAMPLES = {**PHOTOS, **TEXTURES, **STYLES}


def load(spec: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """Load a sample by name or an image file by path: RGB ``[3, H, W]`` in ``[0, 1]``.

    With ``size``, the longest side is ``size`` pixels. Generated styles are square and drawn
    directly at that size (``DEFAULT_SIZE`` without one).
    """
    name = str(spec)
    if name in SAMPLES:
        draw_size = size or DEFAULT_SIZE
        return to_tensor(SAMPLES[name](draw_size), size)
    if os.sep not in name and "." not in name and not os.path.exists(name):
        raise UserError(f"{name}: neither an image file nor a sample; samples are {', '.join(SAMPLES)}")
    return load_image(name, size)


def names(value: Any) -> list[str]:
    """The images a config value names: none (null), one, or several (a list, as for a style blend)."""
    if value is None:
        return []
    return [str(name) for name in value] if isinstance(value, Sequence) and not isinstance(value, str) else [str(value)]


def load_start(spec: str | os.PathLike, size: int) -> torch.Tensor:
    """The image ``init=image`` starts from, at ``size``: a run folder's ``final.png``, a sample or an image file."""
    path = Path(str(spec))
    if path.is_dir() and not (path / "final.png").is_file():
        raise UserError(
            f"{path}: a folder without final.png; name an image file, a sample or the folder of a run that ended"
        )
    return load(path / "final.png" if path.is_dir() else spec, size)


def aspect(spec: str | os.PathLike) -> float:
    """The short side over the long side of a sample or image file, read without decoding its pixels.

    1.0 where it cannot be read: loading the image later says what is wrong with it.
    """
    name = str(spec)
    if name in STYLES:
        return 1.0
    try:
        image = SAMPLES[name](DEFAULT_SIZE) if name in SAMPLES else open_image(name)
        with image:
            width, height = image.size
    except (OSError, ValueError):
        return 1.0
    return min(width, height) / max(width, height)
