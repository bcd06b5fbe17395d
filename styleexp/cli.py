"""Console entry point. Until the Hydra run lands: a demonstration of the library on a bundled sample."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from styleexp import preprocessing, samples, statistics
from styleexp.errors import UserError
from styleexp.images import save_image
from styleexp.losses import style_loss
from styleexp.vgg import VGGFeatures
from styleexp.weights import load_weights

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def demo(style: str = "rainbow_circles", size: int = 128, steps: int = 40) -> Path:
    """Synthesise the pure style of ``style`` from noise with L-BFGS; return the PNG written."""
    weights = load_weights("vgg16", "caffe")
    extractor = VGGFeatures("vgg16", LAYERS, weights.state_dict, preprocessing.get(weights.preprocessing))
    targets = {layer: statistics.both(f) for layer, f in extractor(samples.load(style, size)[None]).items()}
    image = torch.rand(1, 3, size, size, requires_grad=True)
    optimizer = torch.optim.LBFGS([image], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = sum(style_loss(extractor(image), targets, statistics.both).values())
        loss.backward()
        return loss

    optimizer.step(closure)
    return save_image(image.clamp(0, 1), Path("outputs") / "demo" / f"{style}.png")


def main() -> None:
    try:
        print(f"wrote {demo()}")
    except UserError as error:
        sys.exit(f"styleexp: error: {error}")
