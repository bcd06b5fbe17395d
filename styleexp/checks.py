"""Settings checked before any work: a wrong value is one line that names it and says what would do.

The schema already refuses a string where a number belongs; these are the values of the right
type that cannot work (a learning rate of 0, a negative loss weight, NaN, a ``${...}`` that does
not resolve), which would otherwise cost a traceback or minutes of optimising nothing.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from styleexp.errors import UserError


def check(cfg: DictConfig) -> None:
    """Raise a ``UserError`` for the first setting of ``cfg`` that cannot work."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        key = f"{error.full_key}: " if getattr(error, "full_key", None) else ""
        reason = str(error).splitlines()[0]  # OmegaConf appends the key and types on lines of their own
        raise UserError(f"{key}{reason}; fix the ${{...}} in that setting") from None
    for size in [cfg.size, *(cfg.scales or [])]:
        _whole("size" if size == cfg.size else "scales", size, least=1, example="size=256")
    for steps in cfg.steps if OmegaConf.is_list(cfg.steps) else [cfg.steps]:
        _whole("steps", steps, least=1, example="steps=100")
    _whole("log_every", cfg.log_every, least=1, example="log_every=10")
    _whole("image_every", cfg.image_every, least=0, example="image_every=25 (0: none)")
    if cfg.threads is not None:
        _whole("threads", cfg.threads, least=1, example="threads=2 (null: all cores)")
    if "lr" in cfg.optim:
        _positive("optim.lr", cfg.optim.lr, example="optim.lr=1 for L-BFGS, 0.02 for Adam")
    if "history_size" in cfg.optim:
        _whole("optim.history_size", cfg.optim.history_size, least=1, example="optim.history_size=100")
    if "eps" in cfg.optim:
        _positive("optim.eps", cfg.optim.eps, example="optim.eps=1e-8")
    _weights("loss", dict(cfg.loss), example="loss.style=1e-5")
    if cfg.style_layers.weights:
        _weights("style_layers.weights", dict(cfg.style_layers.weights), example="style_layers.weights={relu1_1:1}")
    _styles(cfg)
    if cfg.init.name.value == "image" and not cfg.init.path:
        raise UserError("init=image needs an image to start from; set init.path=FILE, a sample name or a run folder")
    if cfg.stop.rtol is not None:
        _non_negative("stop.rtol", cfg.stop.rtol, example="stop.rtol=1e-3 (null: off)")
        _whole("stop.window", cfg.stop.window, least=1, example="stop.window=20")


def _whole(key: str, value: Any, least: int, example: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise UserError(f"{key}={value} must be a whole number of at least {least}; e.g. {example}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(key: str, value: Any, example: str) -> None:
    if not _finite(value) or value <= 0:
        raise UserError(f"{key}={value} must be a finite number above 0; e.g. {example}")


def _non_negative(key: str, value: Any, example: str) -> None:
    if not _finite(value) or value < 0:
        raise UserError(f"{key}={value} must be a finite number of at least 0; e.g. {example}")


def _weights(key: str, weights: dict[str, Any], example: str) -> None:
    for name, value in weights.items():
        _non_negative(f"{key}.{name}", value, example)
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
    _positive("style_scale", cfg.style_scale, example="style_scale=0.5")
    if cfg.style_blend is None:
        return
    count = len(styles) if styles is not None else int(cfg.style is not None)
    blend = list(cfg.style_blend)
    if len(blend) != count:
        raise UserError(
            f"style_blend={blend} has {len(blend)} weights for {count} style image{'s' * (count != 1)}; "
            f"give one per style, e.g. style_blend=[{','.join(['1'] * max(count, 1))}]"
        )
    if not all(_finite(weight) and weight >= 0 for weight in blend):
        raise UserError(
            f"style_blend={blend}: every weight must be a finite number of at least 0; e.g. style_blend=[0.7,0.3]"
        )
    if not any(weight > 0 for weight in blend):
        raise UserError(
            f"style_blend={blend} gives every style image 0 weight; give one a positive weight, e.g. style_blend=[0.7,0.3]"
        )
