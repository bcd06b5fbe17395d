"""Feature extractors: one module per family of networks, each registering its ``Network`` in ``NETWORKS``.

``network.py`` says what a network is and what its extractor does; ``vgg.py`` registers VGG-16 and
VGG-19. A new network is a new module here, which this package imports.
"""

from __future__ import annotations

from styleexp.extractors.network import (
    NETWORKS,
    POOLING,
    Extractor,
    Network,
    build_extractor,
    conv_layers,
    layer_names,
    positions,
    positions_warning,
    resolve_layer,
    sees_enough,
)
from styleexp.registry import discover

__all__ = [
    "NETWORKS", "POOLING", "Extractor", "Network", "build_extractor", "conv_layers", "layer_names", "positions",
    "positions_warning", "resolve_layer", "sees_enough",
]  # fmt: skip
discover(__name__, __path__)
