"""The run folder as a contract: every file name in it, what a run writes about itself, and how others read it.

A run folder holds:

- ``final.png``, the result; ``images/step_NNNNNN.png`` every ``image_every`` steps and
  ``images/scale_<size>.png`` at the end of each scale;
- ``content.png``, ``style.png`` (and a blend's ``style_2.png``, ...): the inputs as given;
- ``metrics.csv`` (Lightning's CSV logger) and ``wandb/``: what the loggers recorded;
- ``summary.json``: how the run ended and what it was made of (status, losses, fair measures,
  config identity, weights, versions, timings);
- ``.hydra/``: the composed config and the command-line overrides; ``.claim``: who claimed the folder.

Sweeps, resume, reproduce, the report and the benchmark read run folders through this module.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from styleexp import measures
from styleexp.errors import UserError
from styleexp.images import load_image, save_image
from styleexp.weights import Weights, file_sha256

# Keys that do not change the image a run computes: where it logs and what watches it (its configurable
# callbacks), how many CPU threads it uses, where this machine keeps the weights (their SHA-256 is recorded), how
# the result is scored and reported.
NOT_IDENTITY = (
    "hydra",
    "logger",
    "callbacks",
    "threads",
    "weights_dir",
    "measures",
    "objective",
    "report",
    "verbose",
    "progress_every_s",
    "checkpoint_every_s",
)
FINAL = "final.png"
SUMMARY = "summary.json"
METRICS = "metrics.csv"
IMAGES = "images"
CLAIM = ".claim"
RESUME = "resume.pt"  # where an unfinished run stands (checkpoints.py); gone once it completes
CONFIG = ".hydra/config.yaml"
OVERRIDES = ".hydra/overrides.yaml"
INPUTS = ("content", "style")  # the input images' roles; a blend's further styles are style_2, style_3, ...


def step_image(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / IMAGES / f"step_{step:06d}.png"


def scale_image(run_dir: Path, size: int) -> Path:
    return Path(run_dir) / IMAGES / f"scale_{size}.png"


def image_file(run_dir: Path, name: str) -> Path:
    """The run folder's image called ``name``: ``final``, ``content``, ``style``, ``style_2``, ..."""
    return Path(run_dir) / f"{name}.png"


def save_inputs(run_dir: Path, content: torch.Tensor | None, styles: Sequence[torch.Tensor]) -> None:
    """The input images as given: ``content.png``, ``style.png`` and a blend's ``style_2.png``, ..."""
    if content is not None:
        save_image(content, image_file(run_dir, "content"))
    for k, style in enumerate(styles, start=1):
        save_image(style, image_file(run_dir, "style" if k == 1 else f"style_{k}"))


def input_files(run_dir: Path) -> list[Path]:
    """The run folder's input images: ``content.png``, ``style.png`` and a blend's ``style_2.png``, ..."""
    return sorted(Path(run_dir).glob("content.png")) + sorted(Path(run_dir).glob("style*.png"))


# Keys added after runs were saved, with the value that computes what those runs computed: left out of the identity
# at that value, so that a sweep saved before them is still the same configuration (resumed, reproduced, reported).
LATER_KEYS = {
    ("loss_units",): "styleexp",
    ("renormalise",): "none",
    ("network", "normalisation"): "none",
    ("style_layers", "weighting"): "equal",
}


def identity_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without ``NOT_IDENTITY`` keys, nor ``LATER_KEYS`` at their earlier value: what determines
    the run's image, and nothing machine-specific."""
    kept = OmegaConf.masked_copy(cfg, [key for key in cfg if key not in NOT_IDENTITY])
    identity = OmegaConf.to_container(kept, resolve=True, enum_to_str=True)
    for *parents, key in LATER_KEYS:
        section = identity
        for parent in parents:
            section = section.get(parent) or {}
        if key in section and section[key] == LATER_KEYS[(*parents, key)]:
            del section[key]
    return identity


def config_identity(cfg: DictConfig) -> str:
    """SHA-256 of ``identity_config``: equal identities, equal runs."""
    return hashlib.sha256(json.dumps(identity_config(cfg), sort_keys=True).encode()).hexdigest()


def read_summary(run_dir: Path) -> dict:
    """The ``summary.json`` of ``run_dir``, or {} if the run never wrote one."""
    try:
        return json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically: a reader sees the previous summary or this one, never half of one."""
    path = Path(run_dir) / SUMMARY
    partial = path.with_name(f".{SUMMARY}.{os.getpid()}.partial")
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(partial, path)
    return path


def completed_identity(run_dir: Path) -> str | None:
    """The config identity of the completed run in ``run_dir``, or None if it holds no completed run."""
    summary = read_summary(run_dir)
    return summary.get("config_sha256") if summary.get("status") == "completed" else None


def summary_value(summary: dict[str, Any], key: str) -> float | None:
    """A number of ``summary`` by its W&B key: ``measure/<name>``, ``loss/<name>``, or a top-level key; None if
    absent."""
    if key.startswith("measure/"):
        value = summary.get("measures", {}).get(key.removeprefix("measure/"))
    elif key.startswith("loss/"):
        value = summary.get("losses", {}).get(key)
    else:
        value = summary.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def objective_value(summary: dict[str, Any], objective: str | dict[str, float] | None) -> float | None:
    """The number a sweeper minimises: one summary key, or a weighted sum ``{key: weight}``; None if a key is
    missing."""
    if objective is None:
        return None
    weights = {objective: 1.0} if isinstance(objective, str) else dict(objective)
    values = {key: summary_value(summary, key) for key in weights}
    if any(value is None for value in values.values()):
        return None
    return sum(weight * values[key] for key, weight in weights.items())


@functools.cache
def versions() -> dict[str, str | None]:
    """Package versions, and the styleexp commit when it runs from a git checkout (asked once per process)."""
    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
        commit = git.stdout.strip() if git.returncode == 0 else None
    except OSError:  # no git on this machine
        commit = None
    return {
        "python": platform.python_version(),
        **{
            name: _version(name)
            for name in ("styleexp", "torch", "torchvision", "pytorch-lightning", "hydra-core", "wandb")
        },
        "styleexp_commit": commit,
    }


def _version(name: str) -> str | None:
    """An installed package's version; None for styleexp run from its checkout uninstalled (its commit says which)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def weights_facts(weights: Weights) -> dict[str, Any]:
    """Where a run's network weights came from, down to the file's SHA-256."""
    return {
        "network": weights.network,
        "source": weights.source,
        "preprocessing": weights.preprocessing,
        "file": str(weights.path) if weights.path else None,
        "sha256": file_sha256(weights.path) if weights.path else None,
    }


def measure(run_dir: Path, cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """The fair measures of the saved final image against the saved inputs (as a report would take them), and their
    cost.

    Measuring never fails the run: a measure that cannot be taken leaves its reason in the summary.
    """
    if not cfg.measures.networks:
        return {}
    started, seconds = time.perf_counter(), {}
    try:
        judges = measures.evaluators(list(cfg.measures.networks), cfg.weights_dir, str(device))
        final, content, style = (load_image(path) if path.is_file() else None for path in _measured(run_dir))
        if content is not None and final.shape != content.shape:  # interrupted at a coarser scale
            final = F.interpolate(final[None], size=content.shape[1:], mode="bilinear", align_corners=False)[0]
        scores = measures.measure(judges, final, content, style, seconds)
    except (UserError, KeyboardInterrupt) as caught:
        reason = str(caught) or "interrupted"
        print(f"styleexp: warning: no fair measures: {reason}", file=sys.stderr)
        return {"measures": {}, "measures_error": reason}
    return {
        "measures": scores,
        "evaluators": list(cfg.measures.networks),
        "measures_seconds": round(time.perf_counter() - started, 3),
        "measures_seconds_each": seconds,
    }


def _measured(run_dir: Path) -> tuple[Path, Path, Path]:
    return Path(run_dir) / FINAL, image_file(run_dir, "content"), image_file(run_dir, "style")


def objective(cfg: DictConfig, summary: dict[str, Any]) -> float | None:
    """What a sweeper minimises for the run ``summary`` records: ``cfg.objective``, else the first evaluator's
    default."""
    chosen = cfg.objective or measures.default_objective(summary.get("mode", "transfer"), list(cfg.measures.networks))
    return objective_value(summary, OmegaConf.to_container(chosen) if OmegaConf.is_config(chosen) else chosen)
