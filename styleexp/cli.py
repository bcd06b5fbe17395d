"""Console entry points: turn user mistakes into one-line messages and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from styleexp import config
from styleexp.errors import UserError

config.register()
# The fixed layout keeps conf/ beside the package (installed editable, as the Makefile does).
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    """``styleexp [overrides]``: one style transfer run (Hydra app; ``--help`` lists the config groups)."""
    from styleexp.run import run  # deferred: `styleexp --help` need not import torch and Lightning

    try:
        result = run(cfg)
    except UserError as error:
        print(f"styleexp: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"styleexp: {result.message}", file=sys.stderr if result.exit_code else sys.stdout)
    if result.exit_code:
        sys.exit(result.exit_code)
