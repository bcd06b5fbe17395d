"""Where the optimisation starts: one function per ``init`` option, in ``INITS``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from styleexp.errors import UserError
from styleexp.registry import Registry
from styleexp.spec import Spec

INITS: Registry[Callable[[Spec], torch.Tensor]] = Registry("init")


@INITS.register("noise")
def noise(spec: Spec) -> torch.Tensor:
    """Uniform noise in [0, 1] of the output's shape, seeded by the spec's seed."""
    return torch.rand(spec.shape, generator=torch.Generator().manual_seed(spec.seed))


@INITS.register("content")
def content(spec: Spec) -> torch.Tensor:
    """The content image itself."""
    if spec.content is None:
        raise UserError("init=content needs a content image; set content= or use init=noise")
    return spec.content


@INITS.register("style")
def style(spec: Spec) -> torch.Tensor:
    """The style image, resized to the output's shape."""
    if spec.style is None:
        raise UserError("init=style needs a style image; set style= or use init=noise")
    return _resized(spec.style, spec)


@INITS.register("image")
def image(spec: Spec) -> torch.Tensor:
    """The image of ``init.path`` (a file, a sample or a run folder's ``final.png``), resized to the output's shape."""
    if spec.start is None:
        raise UserError("init=image needs an image to start from; set init.path=FILE, a sample name or a run folder")
    return _resized(spec.start, spec)


def _resized(image: torch.Tensor, spec: Spec) -> torch.Tensor:
    if image.shape == spec.shape:
        return image
    return F.interpolate(image[None], size=spec.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]


def init_image(spec: Spec) -> torch.Tensor:
    """The starting image ``[3, H, W]`` of ``spec``."""
    return INITS[spec.init](spec)
