"""Settings checked before any work: a wrong value is one line that names it and says what would do.

The schema already refuses a string where a number belongs; these are the values of the right
type that cannot work (a learning rate of 0, a negative loss weight, NaN, a ``${...}`` that does
not resolve), which would otherwise cost a traceback or minutes of optimising nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from styleexp import measures, rules, trainer_args
from styleexp.errors import UserError
from styleexp.extractors import layer_names
from styleexp.optimizers import OPTIMIZERS
from styleexp.rules import finite, non_negative, positive, whole
from styleexp.style_losses import STYLE_LOSSES
from styleexp.terms import TERMS

SEEDS = (-(2**63), 2**64 - 1)  # what torch's generators take
# The numbers summary.json holds beside the measures and losses that a sweeper may minimise.
OBJECTIVE_KEYS = ("wall_time_s", "steps", "evaluations", "seconds_per_step", "peak_memory_mb")


def check(cfg: DictConfig) -> None:
    """Raise a ``UserError`` for the first setting of ``cfg`` that cannot work."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        key = f"{error.full_key}: " if getattr(error, "full_key", None) else ""
        reason = str(error).splitlines()[0]  # OmegaConf appends the key and types on lines of their own
        raise UserError(f"{key}{reason}; fix the ${{...}} in that setting") from None
    trainer_args.check(cfg)
    for size in [cfg.size, *(cfg.scales or [])]:
        whole(1, "size=256").check("size" if size == cfg.size else "scales", size)
    for steps in cfg.steps if OmegaConf.is_list(cfg.steps) else [cfg.steps]:
        whole(1, "steps=100").check("steps", steps)
    whole(1, "log_every=10").check("log_every", cfg.log_every)
    whole(0, "image_every=25 (0: none)").check("image_every", cfg.image_every)
    if cfg.threads is not None:
        whole(1, "threads=2 (null: all cores)").check("threads", cfg.threads)
    if not SEEDS[0] <= cfg.seed <= SEEDS[1]:
        raise UserError(
            f"seed={cfg.seed} is out of range; a seed is a whole number from -2**63 to 2**64-1, e.g. seed=0"
        )
    for setting in dataclasses.fields(OPTIMIZERS[cfg.optim.name.value].settings):
        if isinstance(rule := setting.metadata.get("rule"), rules.Rule):
            rule.check(f"optim.{setting.name}", cfg.optim[setting.name])
    _weights("loss", dict(cfg.loss), "loss.style=1e-5", {name: term.default_weight for name, term in TERMS.items()})
    if cfg.style_layers.weights:
        _weights("style_layers.weights", dict(cfg.style_layers.weights), example="style_layers.weights={relu1_1:1}")
    _styles(cfg)
    if cfg.init.name.value == "image" and not cfg.init.path:
        raise UserError("init=image needs an image to start from; set init.path=FILE, a sample name or a run folder")
    if cfg.stop.rtol is not None:
        non_negative("stop.rtol=1e-3 (null: off)").check("stop.rtol", cfg.stop.rtol)
    if cfg.stop.image_change is not None:
        non_negative("stop.image_change=0.5 (null: off)").check("stop.image_change", cfg.stop.image_change)
    if cfg.stop.rtol is not None or cfg.stop.image_change is not None:
        whole(1, "stop.window=20").check("stop.window", cfg.stop.window)
    objective(cfg)


def _weights(key: str, weights: dict[str, Any], example: str, typical: dict[str, float] | None = None) -> None:
    for name, value in weights.items():
        # Each weight's example is a value of its own: a bad loss.tv is not mended by setting loss.style.
        non_negative(f"{key}.{name}={(typical or {}).get(name, 1):g}").check(f"{key}.{name}", value)
    if not any(value > 0 for value in weights.values()):
        raise UserError(
            f"every {key} is 0, so there is nothing to optimise; give one a positive weight, e.g. {example}"
        )


def _styles(cfg: DictConfig) -> None:
    styles = cfg.style if OmegaConf.is_list(cfg.style) else None
    if styles is not None and (not styles or not all(isinstance(style, str) for style in styles)):
        raise UserError(
            f"style={list(styles)} must name one or more images; e.g. style=[starry_night.jpg,the_scream.jpg]"
        )
    positive("style_scale=0.5").check("style_scale", cfg.style_scale)
    name = cfg.gram.name.value
    if styles is not None and len(styles) > 1 and cfg.style_blend_mode.value == "statistics":
        if not STYLE_LOSSES[name].averaged:
            raise UserError(
                f"style_blend_mode=statistics averages the style images' targets, which gram={name} cannot (its "
                "targets are not statistics); use style_blend_mode=loss"
            )
    if cfg.style_blend is None:
        return
    count = len(styles) if styles is not None else int(cfg.style is not None)
    blend = list(cfg.style_blend)
    if len(blend) != count:
        raise UserError(
            f"style_blend={blend} has {len(blend)} weights for {count} style image{'s' * (count != 1)}; "
            f"give one per style, e.g. style_blend=[{','.join(['1'] * max(count, 1))}]"
        )
    if not all(finite(weight) and weight >= 0 for weight in blend):
        raise UserError(
            f"style_blend={blend}: every weight must be a finite number of at least 0; e.g. style_blend=[0.7,0.3]"
        )
    if not any(weight > 0 for weight in blend):
        raise UserError(
            f"style_blend={blend} gives every style image 0 weight; give one a positive weight, e.g. "
            "style_blend=[0.7,0.3]"
        )


def objective(cfg: DictConfig) -> None:
    """Refuse an ``objective`` that names no number the run records: a sweeper would get nothing back from any job."""
    if cfg.objective is None:
        return
    chosen = OmegaConf.to_container(cfg.objective) if OmegaConf.is_config(cfg.objective) else cfg.objective
    weights = chosen if isinstance(chosen, dict) else {chosen: 1}
    measured = [f"measure/{name}" for name in measures.names(list(cfg.measures.networks))]
    losses = ["loss/total", *(f"loss/{name}" for name in TERMS)]
    layers = layer_names(cfg.network.name.value)
    known = [*measured, *losses, *OBJECTIVE_KEYS]
    for key, weight in weights.items():
        if not finite(weight):
            raise UserError(f"objective.{key}={weight}: a weight must be a finite number; e.g. objective.{key}=1")
        term, _, layer = str(key).removeprefix("loss/").partition("/")
        if key in known or (str(key).startswith("loss/") and term in TERMS and layer in layers):
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        measures_named = ", ".join(measured) if measured else "none: measures.networks=[] takes no measures"
        raise UserError(
            f"objective={key} is not a number a run records; {hint}choose a measure ({measures_named}), "
            f"a loss ({', '.join(losses)}, or loss/TERM/LAYER) or one of {', '.join(OBJECTIVE_KEYS)}"
        )
