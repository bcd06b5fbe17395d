"""What the image is optimised toward, computed once from the content and style images.

In a sweep, targets are also shared between jobs through a ``TargetCache`` on disk: one file per
image, network, weights, pooling, layer and statistic, so a job reuses what an earlier job computed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from styleexp.statistics import Statistic
from styleexp.vgg import VGGFeatures


@dataclass
class Targets:
    """``content``: {layer: activations [1, C, H, W]}; ``style``: {layer: statistic [1, ., C]}. Either may be empty."""

    content: dict[str, torch.Tensor]
    style: dict[str, torch.Tensor]


class TargetCache:
    """Targets as files in ``folder``, keyed by everything they depend on; safe for parallel jobs.

    ``network_key`` must name the extractor completely (network, weights file or seed, preprocessing,
    pooling). ``computed`` and ``reused`` count targets, one per layer.
    """

    def __init__(self, folder: Path, network_key: str):
        self.folder = Path(folder)
        self.network_key = network_key
        self.computed = 0
        self.reused = 0

    def path(self, image: torch.Tensor, layer: str, kind: str) -> Path:
        digest = hashlib.sha256(image.detach().cpu().contiguous().numpy().tobytes())
        digest.update(f"{list(image.shape)}|{self.network_key}|{layer}|{kind}".encode())
        return self.folder / f"{layer}-{kind}-{digest.hexdigest()[:24]}.pt"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cache's lock: parallel jobs wait rather than compute the same targets twice."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def load(self, path: Path, device: torch.device) -> torch.Tensor | None:
        return torch.load(path, map_location=device) if path.is_file() else None

    def save(self, path: Path, tensor: torch.Tensor) -> None:
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        torch.save(tensor.cpu(), partial)
        os.replace(partial, path)


@torch.no_grad()
def compute_targets(
    extractor: VGGFeatures,
    content: torch.Tensor | None,
    style: torch.Tensor | None,
    content_layer: str,
    style_layers: list[str],
    statistic: Statistic,
    cache: TargetCache | None = None,
) -> Targets:
    """Run the extractor once per given image (``[3, H, W]`` in [0, 1]) and keep what the losses compare to.

    With a ``cache``, targets found there are loaded instead and new ones are stored there.
    """
    content_targets, style_targets = {}, {}
    if content is not None:
        content_targets = _targets(extractor, content, [content_layer], lambda f: f, "content", cache)
    if style is not None:
        style_targets = _targets(extractor, style, style_layers, statistic, f"style-{statistic.__name__}", cache)
    return Targets(content_targets, style_targets)


def _targets(
    extractor: VGGFeatures,
    image: torch.Tensor,
    layers: list[str],
    transform: Callable[[torch.Tensor], torch.Tensor],
    kind: str,
    cache: TargetCache | None,
) -> dict[str, torch.Tensor]:
    device = next(extractor.buffers()).device
    if cache is None:
        features = extractor(image[None].to(device))
        return {layer: transform(features[layer]) for layer in layers}
    with cache.locked():
        paths = {layer: cache.path(image, layer, kind) for layer in layers}
        found = {layer: cache.load(path, device) for layer, path in paths.items()}
        missing = [layer for layer, target in found.items() if target is None]
        if missing:
            features = extractor(image[None].to(device))
            for layer in missing:
                found[layer] = transform(features[layer])
                cache.save(paths[layer], found[layer])
        cache.computed += len(missing)
        cache.reused += len(layers) - len(missing)
    return found
