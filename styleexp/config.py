"""Structured-config schemas, registered in Hydra's ConfigStore: a typo or a wrong type fails before any work.

Allowed values come from the registries, and so do the options of the groups that pick one:
``network``, ``pooling``, ``gram`` (the style loss), ``init`` and ``optim`` are stored here
from ``NETWORKS``, ``POOLING``, ``STYLE_LOSSES``, ``INITS`` and ``OPTIMIZERS``, and the ``loss.*``
weights from ``TERMS``. Every default of a plain key lives in these dataclasses; ``conf/config.yaml``
picks the main job's group options.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, make_dataclass
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from styleexp import sweeps
from styleexp.colors import COLORS
from styleexp.conventions import UNITS, WEIGHTINGS
from styleexp.extractors import NETWORKS, POOLING, layer_names
from styleexp.inits import INITS
from styleexp.measures import DEFAULT_EVALUATORS
from styleexp.normalisation import NORMALISATIONS
from styleexp.optimizers import OPTIMIZERS
from styleexp.speed import PRECISIONS
from styleexp.style_losses import STYLE_LOSSES
from styleexp.terms import RENORMALISATIONS, TERMS
from styleexp.terms.style import BLEND_MODES

NetworkName = NETWORKS.enum("NetworkName", __name__)
PoolingName = POOLING.enum("PoolingName", __name__)
StyleLossName = STYLE_LOSSES.enum("StyleLossName", __name__)
InitName = INITS.enum("InitName", __name__)
OptimizerName = OPTIMIZERS.enum("OptimizerName", __name__)
PrecisionName = PRECISIONS.enum("PrecisionName", __name__)
ColorsName = COLORS.enum("ColorsName", __name__)
BlendMode = Enum("BlendMode", {mode: mode for mode in BLEND_MODES}, module=__name__)
CoarseLayers = Enum("CoarseLayers", {"all": "all", "enough": "enough"}, module=__name__)
Normalisation = Enum("Normalisation", {name: name for name in NORMALISATIONS}, module=__name__)
LayerWeighting = Enum("LayerWeighting", {name: name for name in WEIGHTINGS}, module=__name__)
LossUnits = Enum("LossUnits", {name: name for name in UNITS}, module=__name__)
Renormalisation = Enum("Renormalisation", {name: name for name in RENORMALISATIONS}, module=__name__)


@dataclass
class NetworkConfig:
    name: NetworkName = MISSING  # the `network` group
    weights: str = "caffe"  # caffe | torchvision | random | path to a .pth file
    preprocessing: Optional[str] = None  # needed only for a path: caffe | torchvision
    pooling: PoolingName = MISSING  # the `pooling` group
    download: bool = True
    # gatys: every filter scaled to mean activation 1 over a stated image set, as Gatys et al. normalised VGG-19
    # (styleexp/normalisation.py; the means are computed once from the weights and recorded) | none: as trained.
    normalisation: Normalisation = Normalisation.none


@dataclass
class InitConfig:
    name: InitName = MISSING  # the `init` group
    path: Optional[str] = None  # init=image: an image file, a sample name or a run folder (its final.png)


@dataclass
class StyleLayersConfig:
    layers: List[str] = field(default_factory=list)  # names or conv layer numbers
    first: Optional[int] = None  # keep only the first k layers of the set
    only: Optional[int] = None  # keep only the k-th layer of the set
    weights: Optional[Dict[str, float]] = None  # per layer; missing layers get 1 / number of layers
    # positions_squared: each layer's weight times its positions squared, as write-up 000's unnormalised Gram
    # matrices in a mean squared error weigh it (styleexp/conventions.py) | equal: the weights alone.
    weighting: LayerWeighting = LayerWeighting.equal


@dataclass
class SpeedConfig:
    # auto: bf16 where the device has it and it is faster, else fp32 | fp32 | tf32 (NVIDIA GPUs) | bf16 autocast,
    # statistics in fp32
    precision: PrecisionName = PrecisionName.auto
    channels_last: bool = False  # NHWC memory layout for the network
    compile: bool = False  # torch.compile the network (first steps pay the compilation)


@dataclass
class StopConfig:
    # A scale ends early, converged, when its total loss improved by less than `rtol` (relative) over
    # the last `window` steps, or when its image changed by less than `image_change` 8-bit levels (mean
    # absolute change of a pixel) over its last `window` steps; null turns a rule off.
    rtol: Optional[float] = 1e-3
    window: Optional[int] = 20
    image_change: Optional[float] = None


@dataclass
class MeasuresConfig:
    # Evaluators scoring every final image (styleexp/measures/): <network>_<source> or portilla_simoncelli, the
    # first named plainly; [] turns measuring off (and the measures always on with it).
    networks: List[str] = field(default_factory=lambda: list(DEFAULT_EVALUATORS))


@dataclass
class ReportConfig:
    # What styleexp-report does with a sweep of this config (a study sets these).
    replicate: List[str] = field(default_factory=lambda: ["seed"])  # keys that repeat a variant
    rank_by: Optional[str] = None  # a measure to order the runs by, best first, on the report page
    # The measures a study's rule names, stated before its numbers: only their comparisons make verdicts (one Holm
    # family, so fewer images can reach a verdict); null: every measure the runs hold.
    verdicts: Optional[List[str]] = None
    # A value of the compared key (gram) that each other value is compared with, instead of every pair: fewer
    # comparisons, so fewer images can reach a verdict; null: every pair.
    baseline: Optional[str] = None


# loss.<term>: one weight per registered loss term, defaulting to the term's own.
def _schema(name: str, fields: list[tuple]) -> type:
    """A dataclass made from ``fields``, living in this module so that launchers can pickle configs that hold it."""
    schema = make_dataclass(name, fields)
    schema.__module__ = __name__
    globals()[name] = schema
    return schema


LossWeights = _schema(
    "LossWeights", [(name, float, field(default=kind.default_weight)) for name, kind in TERMS.items()]
)


@dataclass
class Config:
    content: Optional[str] = "astronaut"  # path or sample name; null for pure style synthesis
    # Path or sample name; a list of them for a blend; null for content reconstruction.
    style: Any = "rainbow_circles"
    style_blend: Optional[List[float]] = None  # one weight per style image, normalised to sum 1; null: equal
    style_blend_mode: BlendMode = BlendMode.loss  # loss: blend the per-style losses | statistics: blend the targets
    style_scale: float = 1.0  # the style images' longest side, as a fraction of the output's
    colors: Optional[ColorsName] = None  # keep the content's colours: luminance | match; null: the style's
    content_layer: str = "${network_default:${network.name},content_layer}"  # the network's own unless given
    size: int = 256  # longest side of the output, in pixels
    # Coarse to fine: longest sides ending at `size`, each scale starting from the last one's result
    # upsampled; null: `size` alone.
    scales: Optional[List[int]] = None
    # The style layers of the scales before the last: all of them, or only those that see enough positions there (as
    # many as they have channels; the others would copy the style image's layout into the result).
    coarse_layers: CoarseLayers = CoarseLayers.all
    steps: Any = 100  # optimiser steps, the cap of each scale: one number, or one per scale
    stop: StopConfig = field(default_factory=StopConfig)
    seed: int = 0
    threads: Optional[int] = None  # CPU threads; null: all cores, divided among a sweep's parallel jobs
    weights_dir: Optional[str] = None  # else $STYLEEXP_WEIGHTS_DIR, else the user cache
    log_every: int = 10  # losses to loggers and the progress bar
    verbose: bool = False  # the libraries' own console output (W&B, Lightning, Hydra's launch lines) back on
    progress_every_s: Optional[float] = 30  # a sweep job's progress line at most this often; null: none
    # A job's state (image, optimiser, step: resume.pt), saved at logging steps at most this often so that a
    # requeued or resumed job goes on from there; 0: at every logging step; null: only when warned of preemption
    # (SIGUSR2), which always saves it.
    checkpoint_every_s: Optional[float] = 300
    image_every: int = 25  # intermediate images to the run folder and W&B
    # What the app returns to a sweeper (Optuna), to minimise: a summary key (measure/style/gram,
    # measure/ssim, loss/total), or {key: weight, ...} for a weighted sum; null: a style measure
    # (the content measure for reconstruction).
    objective: Any = None
    measures: MeasuresConfig = field(default_factory=MeasuresConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    # The units of loss.content and loss.style: styleexp's means | gatys: Gatys et al.'s alpha and beta, converted
    # for each image's actual size and aspect ratio (styleexp/conventions.py).
    loss_units: LossUnits = LossUnits.styleexp
    # running: each term divided by its own value wherever it is evaluated, as the TensorFlow tutorial of write-up
    # 000 rescales its terms at every step (styleexp/terms/term.py) | none: the weighted sum.
    renormalise: Renormalisation = Renormalisation.none
    network: NetworkConfig = field(default_factory=NetworkConfig)
    gram: Any = MISSING  # the `gram` group: the style loss's name and its settings (styleexp/style_losses/)
    style_layers: StyleLayersConfig = field(default_factory=StyleLayersConfig)
    optim: Any = MISSING  # the `optim` group: its option's settings (optimizers.py)
    init: InitConfig = field(default_factory=InitConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    trainer: Dict[str, Any] = field(default_factory=dict)
    logger: Dict[str, Any] = field(default_factory=dict)
    callbacks: Dict[str, Any] = field(default_factory=dict)  # the `callbacks` group: Lightning callbacks by name


def _optim_schema(name: str) -> type:
    """The ``optim`` node of option ``name``: the option's name, then its optimiser's settings."""
    settings = OPTIMIZERS[name].settings
    fields = [("name", OptimizerName, field(default=OptimizerName[name]))]
    fields += [
        (f.name, f.type, field(default=f.default, default_factory=f.default_factory))
        for f in dataclasses.fields(settings)
    ]
    return _schema(f"{name.title()}Config", fields)


OPTIM_SCHEMAS = {name: _optim_schema(name) for name in OPTIMIZERS}


def _style_loss_schema(name: str) -> type:
    """The ``gram`` node of option ``name``: the loss's name, then its settings."""
    settings = STYLE_LOSSES[name].Settings
    types = typing.get_type_hints(settings)  # the settings' annotations may be strings (postponed evaluation)
    fields = [("name", StyleLossName, field(default=StyleLossName[name]))]
    fields += [(f.name, types[f.name], field(default=f.default)) for f in dataclasses.fields(settings)]
    return _schema(f"{''.join(part.title() for part in name.split('_'))}StyleLossConfig", fields)


STYLE_LOSS_SCHEMAS = {name: _style_loss_schema(name) for name in STYLE_LOSSES}


def _layers_of_kind(network: Any, kind: str) -> list[str]:
    return [name for name in layer_names(getattr(network, "value", network)) if name.startswith(kind)]


def _network_default(network: Any, key: str) -> Any:
    value = getattr(NETWORKS[getattr(network, "value", network)], key)
    return list(value) if isinstance(value, tuple) else value


def register() -> None:
    """Register the schema as ``config_schema``, the registry-backed group options and the resolvers.

    ``${layers:network,kind}`` lists a network's layers of a kind (``relu``, ``conv``);
    ``${network_default:network,key}`` is a network's own ``content_layer`` or ``style_layers``.
    """
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    for name in NETWORKS:
        store.store(group="network", name=name, node={"name": name})
    for name in POOLING:
        store.store(group="pooling", name=name, node={"pooling": name}, package="network")
    for name in STYLE_LOSSES:
        store.store(group="gram", name=name, node=STYLE_LOSS_SCHEMAS[name])
    for name in INITS:
        store.store(group="init", name=name, node={"name": name})
    for name in OPTIMIZERS:
        store.store(group="optim", name=name, node=OPTIM_SCHEMAS[name])
    sweeps.register_resolvers()
    if not OmegaConf.has_resolver("layers"):
        OmegaConf.register_new_resolver("layers", _layers_of_kind)
        OmegaConf.register_new_resolver("network_default", _network_default)
