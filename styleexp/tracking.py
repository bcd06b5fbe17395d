"""Where a run reports as it goes: the configured loggers (W&B, metrics.csv), images sent to W&B, the console."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.loggers import WandbLogger


def loggers(cfg: DictConfig, run_config: dict) -> list:
    """The configured loggers; nodes with a ``config`` key (W&B) get the resolved run config."""
    return [
        # Not recursive: the run config passed to W&B holds `_target_` nodes that must stay data.
        hydra.utils.instantiate({**node, "config": run_config} if "config" in node else node, _recursive_=False, _convert_="all")
        for node in OmegaConf.to_container(cfg.logger, resolve=True).values()
        if node is not None
    ]


def log_image(loggers: list, key: str, path: Path, step: int) -> None:
    """Send a saved PNG to every W&B logger among ``loggers`` at ``step``."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step)


def finish_wandb(loggers: list, step: int, final: Path | None, summary: dict[str, Any]) -> None:
    """Log the final image and the run's status, then close the W&B run however the run ended."""
    wandb_loggers = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not wandb_loggers:
        return
    import wandb

    try:
        if final is not None:
            log_image(wandb_loggers, "images/final", final, step)
        for logger in wandb_loggers:
            logger.experiment.summary.update(
                {"status": summary["status"], "message": summary["message"], "evaluations": summary.get("evaluations", 0)}
            )
    finally:
        wandb.finish(exit_code=0 if summary["status"] == "completed" else 1)


def progress_bar(every: int) -> TQDMProgressBar:
    """The console's progress bar, redrawn at logging steps."""
    return TQDMProgressBar(refresh_rate=every)


@contextmanager
def quiet_fit() -> Iterator[None]:
    """Silence Lightning's warnings that do not apply to a one-image optimisation."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")  # our fresh run folder
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # the frozen network
        yield
