"""What a network is (``Network``, registered in ``NETWORKS``), the interface of its extractor, and its layers."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from styleexp.errors import UserError
from styleexp.preprocessing import Preprocess
from styleexp.registry import Registry


class Extractor(nn.Module):
    """A frozen network that returns the activations of the requested layers in one forward pass.

    Input: RGB ``[N, 3, H, W]`` in ``[0, 1]``; the extractor applies its weights' preprocessing.
    Output: ``{layer: [N, C, H', W']}`` for each name in ``layers``. ``forward`` may be told which of
    them each row needs: a row then goes no deeper than its own deepest layer, and reads zeros at a
    layer it does not need. Its weights are non-persistent buffers: it has no parameters and an
    empty state dict.
    """

    layers: tuple[str, ...]

    @property
    def min_input_size(self) -> int:
        """Smallest image side, in pixels, that gives every requested layer a non-empty output."""
        raise NotImplementedError

    def forward(self, image: torch.Tensor, needs: Sequence[Collection[str]] | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError


@dataclass(frozen=True)
class Network:
    """A network the project knows.

    ``architecture(pooling)`` builds its feature layers, randomly initialised: their state dict is
    the layout its weights files hold. ``extractor(layers, state_dict, preprocess, pooling)`` builds
    the frozen :class:`Extractor`. ``downloads`` maps a weights source (``caffe``, ``torchvision``)
    to the URL of a state dict, and ``features_sha256`` to the SHA-256 of the genuine features tensors
    (``weights.features_sha256``), which a download must match. ``min_input_size(layer)`` is the
    smallest side that layer accepts, which is also how many input pixels one of its positions spans
    along a side; ``channels(layer)`` is its number of channels.
    """

    name: str
    layer_names: tuple[str, ...]
    architecture: Callable[[str], nn.Module]
    extractor: Callable[[Iterable[str | int], Mapping[str, torch.Tensor], Preprocess, str], Extractor]
    min_input_size: Callable[[str], int]
    channels: Callable[[str], int]
    content_layer: str
    style_layers: tuple[str, ...]
    features_of: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] = dict
    bytes_per_pixel: float = 2500.0
    downloads: dict[str, str] = field(default_factory=dict)
    features_sha256: dict[str, str] = field(default_factory=dict)


NETWORKS: Registry[Network] = Registry("network")
POOLING: Registry[Callable[[], nn.Module]] = Registry("pooling")
POOLING.add("max", lambda: nn.MaxPool2d(kernel_size=2, stride=2))
POOLING.add("avg", lambda: nn.AvgPool2d(kernel_size=2, stride=2))


def layer_names(network: str) -> list[str]:
    """Names of ``network``'s feature layers in order (``conv1_1``, ``relu1_1``, ..., ``pool5`` for VGG)."""
    return list(NETWORKS[network].layer_names)


def conv_layers(network: str) -> list[str]:
    """Names of the convolutional layers in order; layer number k is ``conv_layers(network)[k - 1]``."""
    return [name for name in layer_names(network) if name.startswith("conv")]


def resolve_layer(network: str, layer: str | int) -> str:
    """The name of ``layer``, given as a name (``relu4_2``) or a conv layer number (``10`` or ``"10"``)."""
    names = layer_names(network)
    text = str(layer).strip()
    convs = conv_layers(network)
    if text.isdigit():
        if not 1 <= int(text) <= len(convs):
            raise UserError(f"{network} has conv layers 1..{len(convs)}, not layer {text}")
        return convs[int(text) - 1]
    if text not in names:
        raise UserError(f"{network} has no layer {text!r}; valid layers: {', '.join(names)} or numbers 1..{len(convs)}")
    return text


def build_extractor(
    network: str,
    layers: Iterable[str | int],
    state_dict: Mapping[str, torch.Tensor],
    preprocess: Preprocess,
    pooling: str = "max",
) -> Extractor:
    """The frozen extractor of ``network`` for ``layers``, with the given weights and pooling."""
    return NETWORKS[network].extractor(layers, state_dict, preprocess, pooling)


def positions(network: str, layer: str, shape: tuple[int, int]) -> int:
    """``M``, the number of positions of ``layer``'s output for an image of ``shape`` (height, width), whatever its
    aspect ratio: ``(H // s) * (W // s)``, ``s`` the input pixels one position spans along a side."""
    step = NETWORKS[network].min_input_size(layer)
    return (shape[0] // step) * (shape[1] // step)


def sees_enough(network: str, layer: str, shape: tuple[int, int]) -> bool:
    """Whether ``layer`` sees at least as many positions as it has channels in an image of ``shape`` (height, width):
    below that, its Gram matrix (rank at most the positions) nearly pins its feature map down, layout included."""
    return positions(network, layer, shape) >= NETWORKS[network].channels(layer)


def positions_warning(network: str, layers: list[str], shape: tuple[int, int]) -> str | None:
    """A warning naming the style layers that see fewer positions than they have channels for an image of ``shape``.

    Their Gram matrices (rank at most the number of positions) then nearly determine the feature
    maps, layout included. The warning names the size (longest side) from which every layer has
    enough positions.
    """
    known = NETWORKS[network]
    height, width = shape
    few = [layer for layer in layers if not sees_enough(network, layer, shape)]
    if not few:
        return None
    longest = max(height, width)
    size = longest
    while any(
        not sees_enough(network, layer, (round(height * size / longest), round(width * size / longest)))
        for layer in few
    ):
        size += 8
    worst = min(few, key=lambda layer: positions(network, layer, shape) / known.channels(layer))
    return (
        f"at size={longest} the style layers {', '.join(few)} see fewer positions than channels ({worst}: "
        f"{positions(network, worst, shape)} for {known.channels(worst)}): their statistics can copy the style "
        f"image's layout, not only its texture; from size={size} they see enough"
    )
