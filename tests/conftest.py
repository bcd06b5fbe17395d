"""Shared fixtures. Real-behaviour tests use genuine weights from $STYLEEXP_WEIGHTS_DIR (CI: ../shared/weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from styleexp import weights

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


def require_weights(network: str, source: str) -> Path:
    """The real weights file, or a skip naming where it was looked for."""
    path = weights.weights_file(network, source)
    if not path.is_file():
        pytest.skip(f"{path} not found: set {weights.ENV_VAR} to a directory of ImageNet VGG weights")
    return path


@pytest.fixture
def photo() -> Path:
    path = SHARED_IMAGES / "tubingen.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared test images are not beside the checkout")
    return path
