"""The input conventions VGG weights were trained with, applied to RGB images in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

from styleexp.errors import UserError


class Preprocess(nn.Module):
    """Map RGB ``[B, 3, H, W]`` in ``[0, 1]`` to a network's input: ``(x * scale)[channels] - mean) / std``.

    ``mean`` and ``std`` are given in the network's channel order (BGR when ``bgr``).
    """

    def __init__(self, name: str, scale: float, bgr: bool, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.name = name
        self.bgr = bgr
        std_t = torch.tensor(std).view(1, 3, 1, 1)
        # One fused multiply-add per pixel: x * (scale / std) - mean / std.
        self.register_buffer("gain", scale / std_t, persistent=False)
        self.register_buffer("offset", -torch.tensor(mean).view(1, 3, 1, 1) / std_t, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            image = image.flip(1)
        return torch.addcmul(self.offset, image, self.gain)

    def extra_repr(self) -> str:
        return self.name


def caffe() -> Preprocess:
    """The VGG team's Caffe models: BGR, range [0, 255], minus the ImageNet mean, no std division."""
    return Preprocess("caffe", 255.0, True, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))


def torchvision() -> Preprocess:
    """torchvision's ImageNet models: RGB in [0, 1], minus mean, divided by std."""
    return Preprocess("torchvision", 1.0, False, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


PREPROCESSING = {"caffe": caffe, "torchvision": torchvision}


def get(name: str) -> Preprocess:
    """The preprocessing called ``name`` (``caffe`` or ``torchvision``)."""
    if name not in PREPROCESSING:
        raise UserError(f"unknown preprocessing {name!r}; choose one of {', '.join(PREPROCESSING)}")
    return PREPROCESSING[name]()
