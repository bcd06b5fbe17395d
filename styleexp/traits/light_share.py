"""``light_share``: the balance of a two-tone style's light and dark tones (write-up 000: the checkers synthesis keeps
"a good balance of red and black"; the dark circle's, with both Gram matrices, "between light and dark")."""

from __future__ import annotations

import torch

from styleexp.traits.pixels import lab
from styleexp.traits.trait import TRAITS, Trait


def light_share(image: torch.Tensor, reference: torch.Tensor) -> float | None:
    """The share of the pixels of ``image`` lighter than the threshold between ``reference``'s light and dark tones,
    in [0, 1]; None if ``reference`` has one tone.

    Both are ``[3, H, W]``. ``reference``'s pixels are split into a light and a dark tone by Otsu's
    method on CIELAB lightness L*; the threshold is halfway between the two tones' mean L* (Otsu's own
    threshold sits anywhere in the gap between two flat tones, often at the dark one's edge), and it
    splits a synthesis and its style image the same way. A board of red and black squares gives 1/2
    (red is the lighter tone), a dark disc 70 % of the side across on light 1 - pi 0.35^2 = 0.62;
    compare a synthesis's value with its style image's.
    """
    from skimage.filters import threshold_otsu  # deferred: scikit-image takes a second to import

    tones = lab(reference)[0]
    if float(tones.max() - tones.min()) < 1.0:  # one tone, up to rounding: nothing to balance
        return None
    light = tones > threshold_otsu(tones.numpy())
    threshold = (tones[light].mean() + tones[~light].mean()) / 2
    return float((lab(image)[0] > threshold).double().mean())


TRAITS.add(
    "light_share",
    Trait(light_share, "000: checkers keeps its red/black balance; dark_circle its light/dark balance", ("style",)),
)
