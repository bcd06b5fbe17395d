"""Structured-config schemas, registered in Hydra's ConfigStore: a typo or a wrong type fails before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from styleexp import sweeps
from styleexp.vgg import layer_names


class Network(Enum):
    vgg16 = "vgg16"
    vgg19 = "vgg19"


class Pooling(Enum):
    max = "max"
    avg = "avg"


class Statistic(Enum):
    gram = "gram"
    centered = "centered"
    both = "both"
    mean_std = "mean_std"


class Optimizer(Enum):
    lbfgs = "lbfgs"
    adam = "adam"


class Precision(Enum):
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"


class Init(Enum):
    noise = "noise"
    content = "content"
    style = "style"


@dataclass
class NetworkConfig:
    name: Network = Network.vgg19
    weights: str = "caffe"  # caffe | torchvision | random | path to a .pth file
    preprocessing: Optional[str] = None  # needed only for a path: caffe | torchvision
    pooling: Pooling = Pooling.max
    download: bool = True


@dataclass
class StyleLayersConfig:
    layers: List[str] = field(default_factory=list)  # names or conv layer numbers
    first: Optional[int] = None  # keep only the first k layers of the set
    only: Optional[int] = None  # keep only the k-th layer of the set
    weights: Optional[Dict[str, float]] = None  # per layer; missing layers get 1 / number of layers


@dataclass
class OptimConfig:
    name: Optimizer = Optimizer.lbfgs
    lr: float = 1.0
    history_size: int = 100  # L-BFGS only
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam only
    eps: float = 1e-8  # Adam only


@dataclass
class InitConfig:
    name: Init = Init.noise


@dataclass
class LossWeights:
    content: float = 1.0
    style: float = 1.0
    tv: float = 0.0


@dataclass
class SpeedConfig:
    precision: Precision = Precision.fp32  # fp32 | tf32 (NVIDIA GPUs) | bf16 autocast, statistics in fp32
    channels_last: bool = False  # NHWC memory layout for the network
    compile: bool = False  # torch.compile the network (first steps pay the compilation)


@dataclass
class Config:
    content: Optional[str] = None  # path or sample name; null for pure style synthesis
    style: Optional[str] = None  # path or sample name; null for content reconstruction
    content_layer: str = "relu4_2"
    size: int = 256  # longest side of the output, in pixels
    steps: int = 100  # optimiser steps
    seed: int = 0
    threads: Optional[int] = None  # CPU threads; null: all cores, divided among a sweep's parallel jobs
    weights_dir: Optional[str] = None  # else $STYLEEXP_WEIGHTS_DIR, else the user cache
    log_every: int = 10  # losses to loggers and the progress bar
    image_every: int = 50  # intermediate images to the run folder and W&B
    statistic: Statistic = Statistic.gram
    loss: LossWeights = field(default_factory=LossWeights)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    style_layers: StyleLayersConfig = field(default_factory=StyleLayersConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    init: InitConfig = field(default_factory=InitConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    trainer: Dict[str, Any] = field(default_factory=dict)
    logger: Dict[str, Any] = field(default_factory=dict)


def _layers_of_kind(network: str | Network, kind: str) -> list[str]:
    return [name for name in layer_names(Network(network).value) if name.startswith(kind)]


def register() -> None:
    """Register the schema as ``config_schema``, the ``${vgg_layers:network,kind}`` resolver and the sweep resolvers."""
    ConfigStore.instance().store(name="config_schema", node=Config)
    sweeps.register_resolvers()
    if not OmegaConf.has_resolver("vgg_layers"):
        OmegaConf.register_new_resolver("vgg_layers", _layers_of_kind)
