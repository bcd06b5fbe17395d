"""Reading image files into tensors and writing tensors to PNG.

Convention: an image tensor is float32, shape ``[3, H, W]`` (RGB), values in ``[0, 1]``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from styleexp.errors import UserError

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """Read any ordinary image file as an upright RGB tensor ``[3, H, W]`` in ``[0, 1]``.

    Greyscale, palette, alpha (composited on white), CMYK and 16-bit files are converted;
    EXIF orientation is applied. With ``size``, the longest side is resized to it, keeping aspect.
    Raises :class:`UserError` naming the path for a missing, empty, truncated or non-image file.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not an image file; name a file inside it")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty; replace it with a real image")
    try:
        with open_image(path) as image:
            image.load()
            return to_tensor(image, size)
    except UnidentifiedImageError:
        raise UserError(f"{path}: not an image file Pillow can read; convert it to PNG or JPEG") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path}: the image is truncated or corrupt ({reason}); re-export or re-download it") from None


def open_image(path: str | os.PathLike) -> Image.Image:
    """``path`` opened with its header read and no pixel decoded; a ``UserError`` for more pixels than Pillow's limit.

    Pillow's ``Image.MAX_IMAGE_PIXELS`` guards against decompression bombs, a few bytes that declare an image too
    large to decode; Pillow itself only warns past it, and raises a traceback's worth past twice it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            width, height = _declared_size(path)
            raise UserError(
                f"{path}: {width} x {height} pixels, more than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} pixels "
                "against decompression bombs; scale it down first (a run resizes it to size= pixels anyway)"
            ) from None


def _declared_size(path: str | os.PathLike) -> tuple[int, int]:
    """The width and height a file's header declares, with Pillow's pixel limit lifted for the header alone."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            return image.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def to_tensor(image: Image.Image, size: int | None = None) -> torch.Tensor:
    """Convert a PIL image of any mode to an upright RGB tensor ``[3, H, W]`` in ``[0, 1]``."""
    image = _normalise_mode(ImageOps.exif_transpose(image))
    if size is not None:
        image = resize(image, size)
    if image.mode == "F":
        grey = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).clamp_(0, 1)
        return grey.expand(3, -1, -1).contiguous()
    array = np.asarray(image, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


def resize(image: Image.Image, size: int) -> Image.Image:
    """Resize so the longest side is ``size`` pixels, keeping the aspect ratio (Lanczos)."""
    if size < 1:
        raise UserError(f"image size must be a positive number of pixels, got {size}")
    width, height = image.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.LANCZOS)


def save_image(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write ``[3, H, W]`` or ``[1, 3, H, W]`` in ``[0, 1]`` as an 8-bit PNG, atomically.

    The file is written beside its target and renamed over it, so an interrupted write never
    leaves a half-written image where the last good one was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = image.detach().squeeze(0).clamp(0, 1).mul(255).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).cpu().numpy()
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    Image.fromarray(array).save(partial, format="PNG")
    os.replace(partial, path)
    return path


def _normalise_mode(image: Image.Image) -> Image.Image:
    """Return an "RGB" image, or an "F" (float greyscale in [0, 1]) one for high bit depths."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return Image.fromarray(np.asarray(image, dtype=np.float32) / 65535.0)
    if image.mode == "F":
        return image
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        # Transparent pixels hold arbitrary colours: composite on white instead of dropping alpha.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
