"""Config -> the module to optimise: images, weights, extractor, targets, loss terms, initial image, optimiser."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from styleexp import colors, conventions, devices, logs, normalisation, preprocessing, samples, speed, sweeps
from styleexp.colors import COLORS
from styleexp.errors import UserError
from styleexp.extractors import Extractor, build_extractor, positions_warning, resolve_layer, sees_enough
from styleexp.inits import init_image
from styleexp.module import StyleTransfer
from styleexp.optimizers import OPTIMIZERS
from styleexp.rundir import weights_facts
from styleexp.spec import Spec
from styleexp.style_losses import from_config
from styleexp.targets import TargetCache, Targets
from styleexp.terms import build_terms, layers_for
from styleexp.weights import load_weights

log = logging.getLogger(__name__)


@dataclass
class FrozenNetwork:
    """The run's frozen network, built once for all its scales, where its weights came from, and the device it
    works on."""

    extractor: Extractor
    weights: dict[str, Any]
    source: str
    device: torch.device


@dataclass
class Built:
    """A batch at one scale, ready to optimise: its module, its elements' specs, what each element's summary records
    of its settings, and the targets the batch computed or reused (counts and seconds)."""

    module: StyleTransfer
    specs: list[Spec]
    facts: list[dict[str, Any]]
    targets: dict[str, Any]


def scale_plan(cfg: DictConfig) -> list[tuple[int, int]]:
    """``(size, steps)`` of each scale, coarse to fine: ``scales`` (ending at ``size``) with ``steps`` per scale."""
    sizes = list(cfg.scales) if cfg.scales else [cfg.size]
    steps = list(cfg.steps) if OmegaConf.is_list(cfg.steps) else [cfg.steps] * len(sizes)
    if sizes[-1] != cfg.size or sorted(sizes) != sizes:
        raise UserError(
            f"scales={sizes} must grow to size={cfg.size}; e.g. scales=[{cfg.size // 4},{cfg.size // 2},{cfg.size}]"
        )
    if len(steps) != len(sizes):
        raise UserError(
            f"steps={steps} has {len(steps)} entries for {len(sizes)} scales; give one number, or one per scale"
        )
    return list(zip(sizes, steps))


def prepare(cfg: DictConfig, specs: Sequence[Spec] | None = None) -> FrozenNetwork:
    """The frozen network of a batch (its shared settings from ``cfg``), on its device, computing every layer
    ``specs`` read.

    ``specs``: the batch elements' at their final size, if already made (default: ``cfg``'s alone).
    """
    specs = specs or [spec_of(cfg, cfg.size)]
    device = devices.device_of(cfg)
    weights = load_weights(
        cfg.network.name.value,
        cfg.network.weights,
        directory=cfg.weights_dir,
        preprocessing_name=cfg.network.preprocessing,
        seed=cfg.seed,
        download=cfg.network.download,
    )
    sweep_dir = Path(HydraConfig.get().sweep.dir) if sweeps.is_multirun() else None
    for spec in specs:
        if spec.style is not None and (
            warning := positions_warning(cfg.network.name.value, spec.style_layers, tuple(spec.style.shape[1:]))
        ):
            logs.warn_once(warning, sweep_dir)
    facts, state_dict = weights_facts(weights), weights.state_dict
    if cfg.network.normalisation.value == "gatys":  # recorded with the weights, so targets are cached apart
        state_dict, facts["normalisation"] = normalisation.gatys(weights, device)
    extractor = build_extractor(
        cfg.network.name.value, layers_for(specs), state_dict, preprocessing.get(weights.preprocessing),
        cfg.network.pooling.value,
    )  # fmt: skip
    speed.configure(extractor, cfg.speed.channels_last, cfg.speed.compile)
    log.debug("network: %s on %s, weights %s, layers %s", cfg.network.name.value, device, facts, extractor.layers)
    return FrozenNetwork(extractor, facts, weights.source, device)


def build(
    cfgs: Sequence[DictConfig],
    network: FrozenNetwork | None = None,
    size: int | None = None,
    starts: Sequence[torch.Tensor | None] | None = None,
) -> Built:
    """The module of the batch whose elements ``cfgs`` describe, at ``size`` (default: their size).

    The elements share the settings of the batch (network, optimiser, size, precision: the first
    config's); each has its own images, terms and starting image: its ``starts`` entry (resized) if
    given and not None, else its init. A solo run is a batch of one config.
    """
    cfg = cfgs[0]
    specs = [spec_of(element, size or cfg.size) for element in cfgs]
    network = network or prepare(cfg, specs)
    # Here for every scale: Lightning moves the module, this extractor within it, back to the CPU after each fit.
    network.extractor.to(network.device, torch.float32)
    for element, spec in zip(cfgs, specs):
        smallest = min(spec.styles, key=lambda style: min(style.shape[1:]), default=None)
        check_size(network.extractor, element.style_scale, content=spec.content, style=smallest)
    targets = Targets(network.extractor, _sweep_cache(cfg, network.weights, network.source))
    started = time.perf_counter()
    terms = build_terms(specs, targets)
    targets_seconds = round(time.perf_counter() - started, 4)
    starts = starts or [None] * len(specs)
    first = torch.stack(
        [init_image(spec) if start is None else _resized(start, spec) for spec, start in zip(specs, starts)]
    )
    optimizer = OPTIMIZERS[cfg.optim.name.value]
    coloured = [spec.chroma is not None for spec in specs]
    chroma = (
        torch.stack(
            [spec.chroma if spec.chroma is not None else spec.content.new_zeros(2, *spec.shape[1:]) for spec in specs]
        )
        if any(coloured)
        else None
    )
    module = StyleTransfer(
        network.extractor,
        first,
        terms,
        optimizer,
        optimizer.settings_of(OmegaConf.to_container(cfg.optim)),
        chroma,
        coloured,
        cfg.renormalise.value,
    )
    facts = [
        {
            "content_layer": spec.content_layer if spec.content is not None else None,
            "style_layers": spec.style_layers,
            "style_blend": spec.style_blend if spec.styles else None,
            "style_shape": list(spec.style.shape[1:]) if spec.styles else None,
            "weights": network.weights,
            "loss_weights": spec.weights,  # as the terms take them: in styleexp's units, for this scale's image
            "layer_weights": spec.layer_weights if spec.styles else None,
        }
        for spec in specs
    ]
    return Built(
        module, specs, facts, {"computed": targets.computed, "reused": targets.reused, "seconds": targets_seconds}
    )


def _resized(image: torch.Tensor, spec: Spec) -> torch.Tensor:
    """``image`` (``[3, h, w]``, an earlier scale's result) at ``spec``'s size; unchanged if it has it already."""
    return F.interpolate(image[None].float().cpu(), size=spec.shape[1:], mode="bilinear", align_corners=False)[0]


def spec_of(cfg: DictConfig, size: int) -> Spec:
    """The images (at ``size``, as the network is to see them) and resolved settings of the run ``cfg`` describes."""
    content, styles = load_images(cfg, size)
    network = cfg.network.name.value
    style_layers = select_style_layers(cfg) if styles else []
    per_layer = layer_weights(cfg, style_layers)
    if size < cfg.size and cfg.coarse_layers.value == "enough" and styles:
        # The kept layers share the whole style weight, so that the style loss keeps its scale.
        style_layers = coarse_layers(network, style_layers, tuple(styles[0].shape[1:]))
        kept = sum(per_layer[layer] for layer in style_layers)
        per_layer = {layer: per_layer[layer] * sum(per_layer.values()) / kept for layer in style_layers}
    chroma = None
    if cfg.colors is not None:
        if content is None or not styles:
            raise UserError(
                f"colors={cfg.colors.value} keeps the content's colours in a style transfer; set both content= and "
                "style=, or colors=null"
            )
        chroma = colors.chroma_of(content) if cfg.colors.value == "luminance" else None
        recoloured = [COLORS[cfg.colors.value](content, style) for style in styles]
        content, styles = recoloured[0][0], [style for _, style in recoloured]
    start = None
    if cfg.init.name.value == "image" and cfg.init.path is not None:
        start = samples.load_start(cfg.init.path, size)
        if chroma is not None:  # the run optimises a luminance image
            start = colors.luminance(start)
    output_shape = None
    if (
        content is None and cfg.style_scale != 1
    ):  # synthesis: the output keeps `size`, the style is seen smaller or larger
        output_shape = tuple(samples.load(samples.names(cfg.style)[0], size).shape)
    spec = Spec(
        content=content,
        styles=styles,
        content_layer=resolve_layer(network, cfg.content_layer),
        style_layers=style_layers,
        layer_weights=per_layer,
        style_loss=from_config(cfg.gram),
        weights=OmegaConf.to_container(cfg.loss),
        init=cfg.init.name.value,
        seed=cfg.seed,
        style_blend=style_blend(cfg),
        blend_mode=cfg.style_blend_mode.value,
        chroma=chroma,
        start=start,
        output_shape=output_shape,
    )
    return conventions.applied(cfg, spec)


def load_images(cfg: DictConfig, size: int) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
    """The content image at ``size`` (or None) and the style images at ``size`` times ``style_scale`` (maybe none),
    not colour-handled."""
    if cfg.content is None and cfg.style is None:
        raise UserError("neither content nor style is set; give content=PATH_OR_SAMPLE, style=PATH_OR_SAMPLE or both")
    content = samples.load(cfg.content, size) if cfg.content is not None else None
    style_size = max(1, round(size * cfg.style_scale))
    return content, [samples.load(style, style_size) for style in samples.names(cfg.style)]


def style_blend(cfg: DictConfig) -> list[float]:
    """One weight per style image, summing to 1: ``style_blend`` normalised, or equal weights."""
    count = len(samples.names(cfg.style))
    weights = [float(w) for w in cfg.style_blend] if cfg.style_blend is not None else [1.0] * count
    return [w / sum(weights) for w in weights] if count else []


def select_style_layers(cfg: DictConfig) -> list[str]:
    """The style layer names of ``cfg.style_layers``, after ``first`` (first k of the set) or ``only`` (k-th alone)."""
    network = cfg.network.name.value
    layers = [resolve_layer(network, layer) for layer in cfg.style_layers.layers]
    first, only = cfg.style_layers.first, cfg.style_layers.only
    if first is not None and only is not None:
        raise UserError("set style_layers.first or style_layers.only, not both")
    for key, k in (("first", first), ("only", only)):
        if k is not None and not 1 <= k <= len(layers):
            raise UserError(f"style_layers.{key}={k} is out of range; the set has layers 1..{len(layers)}")
    if first is not None:
        layers = layers[:first]
    if only is not None:
        layers = [layers[only - 1]]
    if not layers:
        raise UserError("no style layers; pick a set with style_layers=gatys (or another) or drop style")
    return layers


def coarse_layers(network: str, style_layers: list[str], shape: tuple[int, int]) -> list[str]:
    """The ``style_layers`` that see enough positions in a style image of ``shape`` (``sees_enough``); the first alone
    if none does."""
    return [layer for layer in style_layers if sees_enough(network, layer, shape)] or style_layers[:1]


def layer_weights(cfg: DictConfig, style_layers: list[str]) -> dict[str, float]:
    """A weight for every style layer: ``style_layers.weights`` where given, else 1 / number of layers."""
    network = cfg.network.name.value
    given = {resolve_layer(network, layer): float(w) for layer, w in (cfg.style_layers.weights or {}).items()}
    unused = sorted(set(given) - set(style_layers))
    if unused:
        raise UserError(f"style_layers.weights names {', '.join(unused)}, which are not style layers of this run")
    return {layer: given.get(layer, 1.0 / len(style_layers)) for layer in style_layers}


def check_size(extractor: Extractor, style_scale: float, **images: torch.Tensor | None) -> None:
    """Refuse images too small for the deepest layer the extractor computes."""
    need = extractor.min_input_size
    for name, image in images.items():
        if image is not None and min(image.shape[1:]) < need:
            height, width = image.shape[1:]
            fix = "raise style_scale=, raise size=" if name == "style" and style_scale < 1 else "raise size="
            raise UserError(
                f"the {name} image is {width}x{height} px, too small for {extractor.layers[-1]} "
                f"(needs {need} px per side); {fix} or use shallower layers"
            )


def _sweep_cache(cfg: DictConfig, weights: dict[str, Any], source: str) -> TargetCache | None:
    """The sweep's shared target cache, keyed by everything that makes the extractor what it is; None for a single
    run."""
    if not sweeps.is_multirun():
        return None
    network_key = json.dumps([weights, cfg.network.pooling.value, cfg.seed if source == "random" else None])
    return TargetCache(Path(HydraConfig.get().sweep.dir) / ".targets", network_key)
