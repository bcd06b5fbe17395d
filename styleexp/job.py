"""A job: one run as Hydra prepared it, with its config, its folder, its overrides as typed and its group choices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@dataclass
class Job:
    """One run of a batch: its config, its folder, its overrides as typed, its group choices and its Hydra config."""

    cfg: DictConfig
    run_dir: Path
    overrides: list[str]
    choices: dict[str, str | None]
    hydra: DictConfig

    @classmethod
    def current(cls, cfg: DictConfig) -> Job:
        """The job Hydra is running now."""
        hydra_cfg = HydraConfig.get()
        choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
        overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)  # as typed, `${oops}` and all
        return cls(cfg, Path(hydra_cfg.runtime.output_dir), overrides, choices, HydraConfig.instance().cfg)

    @contextmanager
    def as_current(self) -> Iterator[None]:
        """Make this job Hydra's current one (``${hydra:runtime.output_dir}`` is its folder) for a while."""
        config, before = HydraConfig.instance(), HydraConfig.instance().cfg
        config.cfg = self.hydra
        try:
            yield
        finally:
            config.cfg = before
