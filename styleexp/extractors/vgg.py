"""VGG-16 and VGG-19 features by layer name: frozen, max or average pooling, cut at the deepest layer.

Layer names follow the VGG paper's blocks for both networks: ``conv1_1, relu1_1, conv1_2, relu1_2,
pool1, conv2_1, ...``. The k-th convolutional layer can also be named by its number k (1..13 for
VGG-16, 1..16 for VGG-19), as the literature does: layers 1, 3, 5, 9, 13 of VGG-19 are conv1_1,
conv2_1, conv3_1, conv4_1, conv5_1, and its 10th layer is conv4_2.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence

import torch
from torch import nn

from styleexp.errors import UserError
from styleexp.extractors.network import NETWORKS, POOLING, Extractor, Network, layer_names, resolve_layer
from styleexp.preprocessing import Preprocess

# Each network's output channels of each 3x3 convolution, "M" a pooling (torchvision's configurations),
# filled by ``register_vgg``. Written out because importing torchvision.models (every model it has) takes seconds.
CONFIGURATIONS: dict[str, list[int | str]] = {}


def _names(configuration: list[int | str]) -> tuple[str, ...]:
    names, block, index = [], 1, 1
    for item in configuration:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return tuple(names)


def min_input_size(network: str, layer: str) -> int:
    """Smallest image side, in pixels, that still gives ``layer`` a non-empty output: 2 per pooling before it."""
    names = layer_names(network)
    return 2 ** sum(name.startswith("pool") for name in names[: names.index(layer) + 1])


def channels(network: str, layer: str) -> int:
    """The number of channels of ``layer``'s output: its block's convolutions' (64, 128, 256, 512, 512)."""
    names = layer_names(network)
    convs = [item for item in CONFIGURATIONS[network] if item != "M"]
    return convs[sum(name.startswith("conv") for name in names[: names.index(layer) + 1]) - 1]


def make_features(network: str, pooling: str = "max") -> nn.Sequential:
    """torchvision's ``features`` for ``network`` (randomly initialised, the same modules and state dict keys),
    pooling max or average."""
    configuration = CONFIGURATIONS[NETWORKS[network].name]
    pool = POOLING[pooling]
    layers: list[nn.Module] = []
    channels = 3
    for item in configuration:
        if item == "M":
            layers.append(pool())
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers)


class VGGFeatures(Extractor):
    """A frozen VGG that returns the activations of the requested layers in one forward pass.

    Input: RGB ``[N, 3, H, W]`` in ``[0, 1]``; ``preprocess`` maps it to what the weights expect.
    Output: ``{layer name: [N, C, H', W']}`` for each requested layer. The network is cut after the
    deepest requested layer, so no work is spent past it.
    """

    def __init__(
        self,
        network: str,
        layers: Iterable[str | int],
        state_dict: Mapping[str, torch.Tensor],
        preprocess: Preprocess,
        pooling: str = "max",
    ):
        super().__init__()
        self.network = network
        self.layers = tuple(dict.fromkeys(resolve_layer(network, layer) for layer in layers))
        if not self.layers:
            raise UserError("no layers requested from the network; name at least one layer")
        names = layer_names(network)
        with torch.device("meta"):  # no random initialisation of weights that are replaced at once
            full = make_features(network, pooling)
        full.load_state_dict(state_dict, assign=True)
        depth = max(names.index(layer) for layer in self.layers) + 1
        self.features = nn.Sequential(OrderedDict(zip(names[:depth], full[:depth])))
        for previous, module in zip(names, self.features[1:]):
            if isinstance(module, nn.ReLU):
                # In place saves memory, but would overwrite a requested conv output.
                module.inplace = previous not in self.layers
        for module in self.features:
            _freeze(module)
        self.preprocess = preprocess
        self.memory_format = torch.contiguous_format  # speed.py may switch it to channels_last
        self.eval()

    @property
    def min_input_size(self) -> int:
        return max(min_input_size(self.network, layer) for layer in self.layers)

    def train(self, mode: bool = True) -> VGGFeatures:
        # Frozen whatever the caller (e.g. Lightning's fit loop) asks for.
        return super().train(False)

    def forward(self, image: torch.Tensor, needs: Sequence[Collection[str]] | None = None) -> dict[str, torch.Tensor]:
        x = self.preprocess(image).contiguous(memory_format=self.memory_format)
        names = [name for name, _ in self.features.named_children()]
        needs = [self.layers] * len(image) if needs is None else needs
        # Each row goes as deep as its deepest needed layer, and no further: a batch of shallow and deep
        # elements costs what each element needs, not the deepest one's depth for every element.
        depths = [max((names.index(layer) for layer in need), default=-1) for need in needs]
        wanted = set().union(*needs)
        rows = list(range(len(image)))
        activations = {}
        for index, (name, module) in enumerate(self.features.named_children()):
            if len(activations) == len(wanted):
                break
            going = [position for position, row in enumerate(rows) if depths[row] >= index]
            if len(going) < len(rows):
                x, rows = x[going], [rows[position] for position in going]
            x = module(x)
            if name in wanted:
                activations[name] = x if len(rows) == len(image) else _spread(x, rows, len(image))
        return activations


def _spread(x: torch.Tensor, rows: list[int], count: int) -> torch.Tensor:
    """``x`` (``[len(rows), ...]``) as the rows ``rows`` of a batch of ``count``, zeros elsewhere (rows that do not
    read this layer)."""
    index = torch.tensor(rows, device=x.device)
    return x.new_zeros(count, *x.shape[1:]).index_copy(0, index, x)


def features_of(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A whole VGG's state dict (``features.0.weight``, ``classifier...``) as its features' (``0.weight``); a features
    state dict as it is."""
    if any(key.startswith("features.") for key in state_dict):
        return {
            key.removeprefix("features."): value for key, value in state_dict.items() if key.startswith("features.")
        }
    return dict(state_dict)


def _freeze(module: nn.Module) -> None:
    """Turn weights into non-persistent buffers: no optimiser, checkpoint or ``parameters()`` sees them."""
    for name, parameter in list(module.named_parameters(recurse=False)):
        delattr(module, name)
        module.register_buffer(name, parameter.detach(), persistent=False)


def register_vgg(
    name: str,
    configuration: list[int | str],
    downloads: dict[str, str] | None = None,
    features_sha256: dict[str, str] | None = None,
) -> Network:
    """Register a VGG of ``configuration`` as ``network=name``: its layer names, architecture, extractor and defaults.

    ``downloads`` maps a weights source to the URL of its state dict (a whole model or its features);
    ``features_sha256`` to the SHA-256 of its genuine features (``weights.features_sha256``).
    """
    CONFIGURATIONS[name] = list(configuration)
    return NETWORKS.add(
        name,
        Network(
            name=name,
            layer_names=_names(configuration),
            architecture=lambda pooling: make_features(name, pooling),
            extractor=lambda layers, state_dict, preprocess, pooling: VGGFeatures(
                name, layers, state_dict, preprocess, pooling
            ),
            min_input_size=lambda layer: min_input_size(name, layer),
            channels=lambda layer: channels(name, layer),
            content_layer="relu4_2",
            style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),  # Gatys et al.'s
            features_of=features_of,
            bytes_per_pixel=2500.0,  # measured for VGG-19 to relu5_1 on the CPU, float32 (memory.py)
            downloads=downloads or {},
            features_sha256=features_sha256 or {},
        ),
    )


# The VGG team's Caffe models converted to PyTorch, as neural-style(-pt) uses them (whole models, features
# and classifier; only the features are kept), and torchvision's IMAGENET1K_V1 ones. The SHA-256 of the
# genuine weights' features were checked on ../shared/weights; torchvision's VGG-19 is not among them: its
# file name carries its SHA-256 prefix, which the download checks instead.
register_vgg(
    "vgg16",
    [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    downloads={
        "caffe": "https://web.eecs.umich.edu/~justincj/models/vgg16-00b39a1b.pth",
        "torchvision": "https://download.pytorch.org/models/vgg16-397923af.pth",
    },
    features_sha256={
        "caffe": "8af96336e510d2693b53c6e02a85ecf1d499f69cc4a16c8273f3ec23a949ea12",
        "torchvision": "4759aaf22cf07ec30cbe24f3b7b56955560291cef9d4cade806a7b0e554dd123",
    },
)
register_vgg(
    "vgg19",
    [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
    downloads={
        "caffe": "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth",
        "torchvision": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    },
    features_sha256={"caffe": "f21368d58aa5d43d13fa1b30a0b820a9414fbc01a1bcafbaeed36b804feca1d7"},
)
