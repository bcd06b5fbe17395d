"""The Lightning Trainer of a scale: the arguments styleexp sets itself, the ``trainer.*`` and ``callbacks.*`` a
config may add, each mistake in them one line that names the fix."""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from styleexp import speed
from styleexp.errors import UserError

log = logging.getLogger(__name__)

# Trainer arguments that styleexp's own keys decide: a trainer.<key> would contradict them, so it is refused.
OWNED = {
    "max_steps": "steps (steps=300, or one number per scale)",
    "precision": "speed.precision (auto, fp32, tf32 or bf16; bf16 is Lightning's bf16-mixed)",
    "logger": "the logger group (logger=wandb, csv or none; logger.NAME=null drops one)",
    "callbacks": "callbacks.NAME (+callbacks.NAME._target_=CLASS adds one, ~callbacks.NAME drops one)",
    "enable_progress_bar": "callbacks.progress (~callbacks.progress turns the progress bar off)",
}
TRAINER_FLAGS = "https://lightning.ai/docs/pytorch/stable/common/trainer.html#trainer-flags"


def arguments() -> list[str]:
    """The arguments Lightning's Trainer takes."""
    return [name for name in inspect.signature(pl.Trainer.__init__).parameters if name != "self"]


def refusal(key: str) -> str | None:
    """Why ``trainer.<key>`` cannot be set, as the one line a user sees; None for a Trainer argument a config may
    set."""
    if key in OWNED:
        return f"trainer.{key} is set by styleexp; use {OWNED[key]}"
    if key not in arguments():
        close = difflib.get_close_matches(key, arguments(), n=1)
        hint = f"; did you mean trainer.{close[0]}?" if close else f" ({TRAINER_FLAGS})"
        if close and close[0] in OWNED:
            hint = f"; did you mean trainer.{close[0]}? styleexp sets that one: use {OWNED[close[0]]}"
        return f"trainer.{key} is not an argument of Lightning's Trainer{hint}"
    return None


def check(cfg: DictConfig) -> None:
    """Refuse a ``trainer.*`` styleexp sets itself or Lightning does not take, and a ``callbacks.*`` that names no
    Lightning callback."""
    for key in cfg.trainer:
        if (reason := refusal(str(key))) is not None:
            raise UserError(reason)
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        target = node.get("_target_") if OmegaConf.is_dict(node) else None
        if not target:
            raise UserError(
                f"callbacks.{name} has no _target_; name a Lightning callback class, e.g. "
                f"+callbacks.{name}._target_=pytorch_lightning.callbacks.Timer"
            )
        module, _, attribute = target.rpartition(".")
        try:
            made = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError, ValueError) as error:  # the name is what is wrong
            # lightning-hydra-template's configs name the `lightning` package's classes; styleexp's Trainer is
            # pytorch_lightning's, which takes only its own callbacks.
            ours = target.replace("lightning.pytorch.", "pytorch_lightning.", 1)
            hint = f"; styleexp runs on pytorch_lightning: {ours}" if ours != target else "; give its full module path"
            raise UserError(f"callbacks.{name}._target_={target} cannot be imported ({error}){hint}") from None
        if inspect.isclass(made) and not issubclass(made, pl.Callback):
            raise UserError(
                f"callbacks.{name}._target_={target} is not a Lightning callback (pytorch_lightning.Callback)"
            )


def make(cfg: DictConfig, cap: int, device: torch.device, callbacks: list[pl.Callback]) -> pl.Trainer:
    """The trainer of one scale: ``cfg.trainer``, at most ``cap`` steps, the run's precision on ``device``, no
    Lightning logger (each element logs to its own loggers, ``callbacks.py``), a progress bar if ``callbacks`` hold
    one."""
    given = OmegaConf.to_container(cfg.trainer, resolve=True)
    precision = speed.set_precision(speed.resolve(cfg.speed.precision.value, device), device)
    bar = any(isinstance(callback, ProgressBar) for callback in callbacks)
    log.debug("trainer: %s, max_steps=%s, precision=%s, callbacks: %s", given, cap, precision,
              [type(callback).__name__ for callback in callbacks])  # fmt: skip
    try:
        return pl.Trainer(
            **given, max_steps=cap, precision=precision, logger=False, enable_progress_bar=bar, callbacks=callbacks
        )
    except MisconfigurationException as error:  # a trainer.* value Lightning refuses (an accelerator not here, ...)
        raise explained(error) from error


def explained(error: BaseException) -> BaseException:
    """What ended a fit, as the user is to see it: Lightning's refusal of the trainer's settings or of a callback
    (``MisconfigurationException``) as one line naming where to look; anything else as it is."""
    if not isinstance(error, MisconfigurationException):
        return error
    reason = str(error).strip().splitlines()[0].rstrip(".")
    return UserError(f"Lightning refuses this run's trainer or callbacks: {reason}; check trainer.* and callbacks.*")
