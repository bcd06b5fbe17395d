"""The images the validation tests measures on.

Test images made square, their halves, shifted crops, noise and blur; seamless rearrangements of
their layout (circular shifts of their periodic component); other images given their mean colour
or their palette; crops of the bundled texture photographs. The bundled samples in ``REFERENCE``
are kept for fitting reference statistics (the texture statistics' spread) and never validated on.
"""

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
REFERENCE = ("astronaut", "rocket", "grass", "hubble_deep_field", "checkers", "lorem_ipsum")
# Not multiples of 1/4: a pattern of that period (the 8 x 8 checkerboard) would come back unchanged.
SHIFTS = ((1 / 2, 1 / 2), (1 / 3, 0.0), (0.0, 1 / 3))  # circular shifts, in fractions of the height and width
OTHERS = 4  # how many other images' textures each image's is told from in the layout test (every pair: too costly)


def bundled_images(size: int = SIZE) -> dict[str, torch.Tensor]:
    """The bundled samples not in ``REFERENCE``, longest side ``size``."""
    return {name: samples.load(name, size) for name in samples.SAMPLES if name not in REFERENCE}


def textures(side: int) -> list[torch.Tensor]:
    """The bundled texture photographs not in ``REFERENCE``, square, ``[3, side, side]``."""
    return [square(samples.load(name, side), side) for name in samples.TEXTURES if name not in REFERENCE]


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


def quadrants(image: torch.Tensor) -> list[torch.Tensor]:
    """The four quarters of ``[3, H, W]``: crops of one texture at different places."""
    h, w = image.shape[1] // 2, image.shape[2] // 2
    return [image[:, top : top + h, left : left + w] for top in (0, h) for left in (0, w)]


def others(i: int, count: int) -> list[int]:
    """Up to ``OTHERS`` indices other than ``i`` among ``count``, the next ones round the list."""
    return [(i + k) % count for k in range(1, min(OTHERS, count - 1) + 1)]


def periodic(image: torch.Tensor) -> torch.Tensor:
    """The periodic component of ``[3, H, W]`` (Moisan 2011): the image less the smooth field that its opposite edges'
    jumps call for, so that circular shifts of it have no seams, clamped to [0, 1]."""
    height, width = image.shape[1:]
    jumps = torch.zeros_like(image)
    jumps[:, 0] += image[:, -1] - image[:, 0]
    jumps[:, -1] += image[:, 0] - image[:, -1]
    jumps[:, :, 0] += image[:, :, -1] - image[:, :, 0]
    jumps[:, :, -1] += image[:, :, 0] - image[:, :, -1]
    q = torch.arange(height, dtype=torch.float64).view(-1, 1)
    r = torch.arange(width, dtype=torch.float64).view(1, -1)
    laplacian = 2 * torch.cos(2 * torch.pi * q / height) + 2 * torch.cos(2 * torch.pi * r / width) - 4
    laplacian[0, 0] = 1  # the constant term: the smooth field has mean 0
    smooth_spectrum = torch.fft.fft2(jumps.double()) / laplacian
    smooth_spectrum[:, 0, 0] = 0
    return (image - torch.fft.ifft2(smooth_spectrum).real.float()).clamp(0, 1)


def circular_shifts(image: torch.Tensor) -> list[torch.Tensor]:
    """``image`` rolled by each of ``SHIFTS`` (the shift by half of both sides swaps its quarters diagonally)."""
    height, width = image.shape[1:]
    return [image.roll((round(dy * height), round(dx * width)), (1, 2)) for dy, dx in SHIFTS]


def with_mean_colour(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``image`` given the mean colour of ``like`` exactly: shifted, its contrast lowered where the shift would leave
    [0, 1]."""
    mean, target = image.mean(dim=(1, 2), keepdim=True), like.mean(dim=(1, 2), keepdim=True)
    centred = image - mean
    room_up = ((1 - target) / centred.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)).amin()
    room_down = (target / (-centred).amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)).amin()
    return target + centred * min(1.0, float(room_up), float(room_down))


def with_palette(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``image`` recoloured with the colours of ``like``: each channel's histogram matched to ``like``'s."""
    from skimage.exposure import match_histograms  # deferred: scikit-image takes a second to import

    matched = match_histograms(image.permute(1, 2, 0).numpy(), like.permute(1, 2, 0).numpy(), channel_axis=2)
    return torch.from_numpy(matched).permute(2, 0, 1).float().contiguous()
