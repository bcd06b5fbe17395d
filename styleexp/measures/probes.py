"""The images the validation tests measures on: test images made square, their halves, shifted crops, noise and blur."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from styleexp import samples
from styleexp.images import load_image

SIZE = 128  # longest side of every test image
NOISE = (0.03, 0.1, 0.3)  # standard deviations, in [0, 1] pixel units
BLUR = (0.7, 1.5, 3.0)  # Gaussian standard deviations, in pixels
SHIFT = 0.06  # of the side: how far the content test's crop moves
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def bundled_images(size: int = SIZE) -> dict[str, torch.Tensor]:
    """The bundled photographs and drawn styles, longest side ``size``: the set the measures' validation and the
    Portilla-Simoncelli spread were made on (the texture photographs are not yet part of it)."""
    return {name: samples.load(name, size) for name in {**samples.PHOTOS, **samples.STYLES}}


def folder_images(folders: Sequence[Path], size: int = SIZE) -> dict[str, torch.Tensor]:
    """Every image file directly in ``folders``, by file name."""
    return {
        path.name: load_image(path, size)
        for folder in folders
        for path in sorted(Path(folder).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    }


def square(image: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """The largest centred square of ``image``, resized to ``size``: every test image then has one shape."""
    side = min(image.shape[1:])
    top, left = (image.shape[1] - side) // 2, (image.shape[2] - side) // 2
    crop = image[:, top : top + side, left : left + side]
    return F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def resized(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(image[None], size=like.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]


def halves(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of ``[3, H, W]`` along its longer side."""
    if image.shape[2] >= image.shape[1]:
        middle = image.shape[2] // 2
        return image[:, :, :middle], image[:, :, middle : 2 * middle]
    middle = image.shape[1] // 2
    return image[:, :middle], image[:, middle : 2 * middle]


def shifted_crops(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop of ``image`` and the same-size crop moved by ``SHIFT`` of the side, down and right."""
    height, width = image.shape[1:]
    dy, dx = max(1, round(SHIFT * height)), max(1, round(SHIFT * width))
    return image[:, : height - dy, : width - dx], image[:, dy:, dx:]


def noisy(image: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    return (image + sigma * noise).clamp(0, 1)


def blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]
