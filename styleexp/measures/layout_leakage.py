"""``layout_leakage``, for pure style: whether a pure-style synthesis copied where things are in the style image, not
only its texture.

At small sizes a deep style layer sees few positions for many channels (relu5_1 at 128 px: 8 x 8 =
64 positions for 512 channels), so its Gram matrix nearly pins the feature map down and the
synthesis can come out as the style image itself, layout included. A copy keeps where the light,
dark and coloured masses are, so the measure compares layouts: an image's CIELAB colours averaged
over a ``GRID`` x ``GRID`` grid of cells, less their mean over the cells, as one unit vector.
Pixel averages rather than network activations, because activations answer to the speckle of an
unconverged copy: with them the style image under noise of 0.3 reads as no copy at all.

With ``c`` the cosine between two layouts, ``x`` the output, ``s`` the style image (resized to
``x``) and ``t`` the transforms that move the layout and keep the texture (circular shifts,
``SHIFTS``, and shuffles of a 4 x 4 grid of tiles, ``SHUFFLES``):

    gain(y) = c(y, s) - mean over t of c(y, t(s))
    layout_leakage = 1 - gain(x) / gain(s)

0 means the output's layout is the style image's; 1 that the output is no closer to the style
image as it is than to it moved (no layout copied); above 1, further from it than from it moved.
Shifts and shuffles move a centred disc or concentric rings as much as any image, unlike rotations
and flips. A transform that leaves the style image's layout nearly unchanged (a shift by its
period) says nothing and is left out; an image unchanged by all of them (a flat one) has no layout
to leak (None).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleexp.measures.evaluator import Evaluator, register

GRID = 4  # cells per side: finer grids let the texture's own placement count as layout
SHIFTS = ((1 / 2, 1 / 2), (1 / 2, 0.0), (0.0, 1 / 2), (1 / 3, 2 / 3), (2 / 3, 1 / 3))  # fractions of height, width
SHUFFLES = 3  # random permutations (seeded) of a 4 x 4 grid of tiles
UNCHANGED = 0.05  # a transform moving the style image's layout by less than this (relative) is left out


def moved(style: torch.Tensor) -> list[torch.Tensor]:
    """The style image ``[3, H, W]`` with its layout moved: circularly shifted, and its tiles shuffled."""
    height, width = style.shape[1:]
    shifted = [style.roll((round(dy * height), round(dx * width)), (1, 2)) for dy, dx in SHIFTS]
    return shifted + [shuffled(style, seed) for seed in range(SHUFFLES)]


def shuffled(image: torch.Tensor, seed: int, tiles: int = 4) -> torch.Tensor:
    """``image`` cut into ``tiles`` x ``tiles`` tiles put back in a random order (a remainder strip stays)."""
    h, w = image.shape[1] // tiles, image.shape[2] // tiles
    order = torch.randperm(tiles * tiles, generator=torch.Generator().manual_seed(seed)).tolist()
    pieces = [image[:, r * h : (r + 1) * h, c * w : (c + 1) * w] for r in range(tiles) for c in range(tiles)]
    rows = [torch.cat([pieces[i] for i in order[r * tiles : (r + 1) * tiles]], dim=2) for r in range(tiles)]
    out = image.clone()
    out[:, : tiles * h, : tiles * w] = torch.cat(rows, dim=1)
    return out


def layout(image: torch.Tensor) -> torch.Tensor:
    """The layout of an RGB ``[3, H, W]`` image: CIELAB averaged over ``GRID`` x ``GRID`` cells, less the mean cell,
    ``[3 * GRID * GRID]`` (float64, not normalised)."""
    from skimage.color import rgb2lab  # deferred: scikit-image takes a second to import

    lab = torch.from_numpy(rgb2lab(image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()))
    cells = F.adaptive_avg_pool2d(lab.permute(2, 0, 1)[None], GRID)[0]
    return (cells - cells.mean(dim=(1, 2), keepdim=True)).flatten()


def leakage(output: torch.Tensor, style: torch.Tensor) -> float | None:
    """``layout_leakage`` of ``output`` (``[3, H, W]``) against ``style``; None if the style image has no layout to
    leak."""
    if style.shape != output.shape:
        style = F.interpolate(
            style[None].float(), size=output.shape[1:], mode="bilinear", antialias=True, align_corners=False
        )[0]
    x, upright = layout(output), layout(style)
    others = [
        other for other in map(layout, moved(style)) if (other - upright).norm() ** 2 > UNCHANGED * upright.norm() ** 2
    ]
    if not others or float(upright.norm()) == 0:
        return None

    def gain(y: torch.Tensor) -> float:
        unit = y / y.norm().clamp_min(1e-12)
        return float(unit @ upright / upright.norm() - sum(unit @ o / o.norm() for o in others) / len(others))

    return 1 - gain(x) / gain(upright)


@register
class LayoutEvaluator(Evaluator):
    name = "layout_leakage"
    other = ("layout_leakage",)
    higher_is_better = frozenset(other)
    always = True

    def measure(
        self, output: torch.Tensor, content: torch.Tensor | None, style: torch.Tensor | None
    ) -> dict[str, float]:
        if content is not None or style is None:  # a measure of pure style only
            return {}
        value = leakage(output, style)
        return {} if value is None else {"layout_leakage": value}
