"""Keeping the content's colours (Gatys et al. 2016, "Preserving colour information in neural artistic style transfer").

Images are ``[3, H, W]`` RGB in ``[0, 1]``; colours are split in YIQ (Y the luminance, I and Q the
chrominance), as in the paper. One function per ``colors`` option, in ``COLORS``:

- ``luminance``: the run sees the luminance of both images only (the style's shifted and scaled to the
  content's mean and spread, so the two luminances are comparable); the output's luminance is then
  put together with the content's chrominance (:func:`with_chroma`).
- ``match``: the style image's colours are moved to the content's mean and covariance before the run
  (a linear map, ``x -> A (x - mu_s) + mu_c`` with ``A = Sigma_c^1/2 Sigma_s^-1/2``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from styleexp.registry import Registry

RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)

# (content, style) -> (content, style) as the run sees them.
COLORS: Registry[Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]] = Registry("colors option")


def to_yiq(image: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` RGB -> YIQ, same shape."""
    return torch.einsum("ij,...jhw->...ihw", RGB_TO_YIQ.to(image), image)


def to_rgb(image: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` YIQ -> RGB, same shape (not clamped)."""
    return torch.einsum("ij,...jhw->...ihw", YIQ_TO_RGB.to(image), image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The grey image ``[3, H, W]`` of ``image``'s luminance: Y in every channel."""
    return to_yiq(image)[:1].expand(3, -1, -1).contiguous()


def with_chroma(image: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """``image``'s luminance with the chrominance ``chroma`` (``[..., 2, H, W]``, I and Q), in RGB clamped to [0, 1]."""
    yiq = torch.cat([to_yiq(image)[..., :1, :, :], chroma.to(image)], dim=-3)
    return to_rgb(yiq).clamp(0, 1)


def chroma_of(image: torch.Tensor) -> torch.Tensor:
    """``[..., 2, H, W]``: the I and Q channels of ``image``."""
    return to_yiq(image)[..., 1:, :, :]


def chroma_distance(output: torch.Tensor, content: torch.Tensor) -> float:
    """Root mean square difference of the chrominance (I, Q) of two images of one shape: 0 when the colours agree."""
    return float((chroma_of(output) - chroma_of(content)).pow(2).sum(-3).mean().sqrt())


@COLORS.register("luminance")
def luminance_only(content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images' luminances, the style's matched to the content's mean and standard deviation."""
    content_y, style_y = to_yiq(content)[0], to_yiq(style)[0]
    matched = (style_y - style_y.mean()) * (content_y.std() / style_y.std().clamp_min(1e-6)) + content_y.mean()
    return luminance(content), matched.clamp(0, 1).expand(3, -1, -1).contiguous()


@COLORS.register("match")
def match(content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The content, and the style with its pixels' colour mean and covariance moved to the content's."""
    mean_c, root_c, _ = _moments(content)
    mean_s, _, inverse_root_s = _moments(style)
    pixels = style.flatten(1).double()
    matched = root_c @ inverse_root_s @ (pixels - mean_s) + mean_c
    return content, matched.float().clamp(0, 1).reshape(style.shape)


def _moments(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The colour mean ``[3, 1]``, and the square root and inverse square root of the colour covariance ``[3, 3]``."""
    pixels = image.flatten(1).double()
    mean = pixels.mean(1, keepdim=True)
    covariance = torch.cov(pixels) + 1e-5 * torch.eye(3, dtype=torch.float64)  # a flat-coloured image stays invertible
    values, vectors = torch.linalg.eigh(covariance)
    root = vectors @ torch.diag(values.sqrt()) @ vectors.T
    inverse_root = vectors @ torch.diag(values.rsqrt()) @ vectors.T
    return mean, root, inverse_root
