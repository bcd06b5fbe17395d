"""What ``styleexp --help`` adds to Hydra's list of config groups: the style losses with their settings, and the
studies, presets and searches of ``experiments/``, each with the first sentence of its file's comment."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from styleexp.style_losses import STYLE_LOSSES

KINDS = {
    "study": "a ready ablation study; runs as a sweep: styleexp study=NAME (or experiment=NAME)",
    "preset": "a published configuration: styleexp preset=NAME content=... style=...",
    "search": "an Optuna search of the loss weights: styleexp search=NAME",
}
WIDTH = 80


def experiments_text(experiments_dir: str) -> str:
    """One block per group of ``experiments_dir``: the group, what it is, then each option and its description."""
    blocks = []
    for group, what in KINDS.items():
        files = sorted((Path(experiments_dir) / group).glob("*.yaml"))
        width = max((len(path.stem) for path in files), default=0)
        lines = [f"{group}: {what}"] + [f"  {path.stem:<{width}}  {description(path)}" for path in files]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def style_losses_text() -> str:
    """A line per style loss: its name, the first sentence of its docstring, and its settings with their defaults."""
    width = max(len(name) for name in STYLE_LOSSES)
    lines = []
    for name, loss in STYLE_LOSSES.items():
        settings = " ".join(f"gram.{f.name}={f.default}" for f in dataclasses.fields(loss.Settings))
        first = re.split(r"(?<=[.?!])\s", " ".join((loss.__doc__ or "").split()), maxsplit=1)[0]
        lines.append(f"  {name:<{width}}  {first}" + (f"\n  {'':<{width}}  {settings}" if settings else ""))
    return "\n".join(lines)


def description(path: Path) -> str:
    """The first sentence of the comment that opens a config file (after its ``# @package`` line), shortened to fit a
    line."""
    comment = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            comment.append(line.lstrip("# ").strip())
    sentence = re.split(r"(?<=[.?!])\s", " ".join(comment), maxsplit=1)[0]
    return sentence if len(sentence) <= WIDTH else sentence[: WIDTH - 3].rsplit(" ", 1)[0] + "..."
