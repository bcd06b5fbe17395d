"""The pixel representations several traits share: CIELAB colours, luminance and image gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleexp.colors import to_yiq

_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8


def lab(image: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` RGB in [0, 1] -> CIELAB ``[3, H, W]`` (float64): L* in [0, 100], a* and b* about [-128, 127]."""
    from skimage.color import rgb2lab  # deferred: scikit-image takes a second to import

    pixels = image.detach().double().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    return torch.from_numpy(rgb2lab(pixels)).permute(2, 0, 1)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` RGB -> ``[H, W]`` luminance (YIQ's Y), in [0, 1]."""
    return to_yiq(image.detach().float().cpu())[0]


def gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives ``(d/dx, d/dy)`` of each channel of ``[C, H, W]``, each ``[C, H - 2, W - 2]`` (no padding:
    a padded border would read as an edge)."""
    channels = image.detach().float().cpu()[:, None]
    dx = F.conv2d(channels, _SOBEL[None, None])[:, 0]
    dy = F.conv2d(channels, _SOBEL.T[None, None])[:, 0]
    return dx, dy
