"""``styleexp``: the Hydra app, with a mistake in the overrides or the config as one line and exit 2.

The habits of lightning-hydra-template's users hold: ``experiment=NAME`` is ``study=NAME``, and
``--version`` names styleexp's version (and Hydra's).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from importlib import resources
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.errors import ConfigCompositionException, OverrideParseException, SearchPathException
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.styleexp_batched.batched_launcher import BatchedLauncher
from styleexp import __version__, config, logs
from styleexp.errors import UserError
from styleexp.help import experiments_text, style_losses_text

log = logging.getLogger(__name__)
# Other names for a group, as other projects' users type them: lightning-hydra-template's `experiment`.
ALIASES = {"experiment": "study"}


def _folder(package: str, folder: str) -> str:
    """The repository's ``folder``, installed as ``package`` (pyproject.toml): the same folder in an editable
    install, a copy inside site-packages from a wheel, the checkout's own when it runs uninstalled (a lent GPU
    machine: ``make gpu-check``)."""
    try:
        return str(resources.files(package))
    except ModuleNotFoundError:
        return str(Path(__file__).resolve().parents[1] / folder)


CONFIG_DIR = _folder("styleexp.conf", "conf")
EXPERIMENTS_DIR = _folder("styleexp.experiments", "experiments")
config.register()
# Hydra finds plugins by listing the hydra_plugins folders; an editable install's is not one of them.
Plugins.instance().register(BatchedLauncher)
if not OmegaConf.has_resolver("experiments_dir"):
    OmegaConf.register_new_resolver("experiments_dir", lambda: EXPERIMENTS_DIR)
    OmegaConf.register_new_resolver("styleexp_experiments", lambda: experiments_text(EXPERIMENTS_DIR))
    OmegaConf.register_new_resolver("styleexp_style_losses", style_losses_text)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """``styleexp [overrides]``: one style transfer run (Hydra app; ``--help`` lists the config groups).

    In a sweep (``-m``) a job that goes wrong is recorded and the sweep goes on; Ctrl-C stops the sweep.
    Returns the run's objective for sweepers (Optuna); None for a failed job, which Optuna records as
    a failed trial (a NaN would end its whole sweep).
    """
    # Deferred: Lightning and the rest of a run load only once Hydra has a config to run.
    from styleexp import signals

    with signals.deferred():
        from styleexp import checks, outcome, sweeps
        from styleexp.run import run

    try:
        sweeps.check_search()
        checks.objective(cfg)  # every job of a sweep would return its sweeper nothing: the launch stops at once
    except UserError as error:
        outcome.refuse(error)
    with logs.recorded():
        log.debug("overrides: %s", " ".join(HydraConfig.get().overrides.task))
        return outcome.conclude(run(cfg), sweeps.is_multirun())


def app() -> None:
    """``styleexp``: the Hydra app, with a mistake in the overrides or the config as one line and exit 2."""
    if "--version" in sys.argv[1:]:  # before Hydra, whose own --version names only itself
        print(f"styleexp {__version__} (hydra-core {hydra.__version__})")
        return
    users, typed = os.environ.get("HYDRA_FULL_ERROR"), sys.argv
    # Hydra then raises what went wrong in composing the config, instead of printing it and exiting 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = [typed[0], *map(aliased, typed[1:])]
    try:
        main()
    except (ConfigCompositionException, OverrideParseException, SearchPathException) as error:
        if users == "1":  # the user asked for Hydra's whole story
            raise
        print(f"styleexp: error: {composition_message(error)}", file=sys.stderr)
        sys.exit(2)
    finally:
        sys.argv = typed
        if users is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = users


def aliased(argument: str) -> str:
    """A command-line ``argument`` with an alias of a group (``experiment=gram_variants``, ``+experiment=...``,
    ``~experiment``) turned into the group's own name (``study=gram_variants``); any other argument as it is."""
    prefix, key, rest = re.match(r"([+~]*)([\w.\-/]*)(.*)", argument, re.DOTALL).groups()
    return f"{prefix}{ALIASES.get(key, key)}{rest}"


def launch(arguments: list[str]) -> None:
    """Run the Hydra app with ``arguments`` in this process; a non-zero exit ends this command too."""
    sys.argv = ["styleexp", *arguments]
    try:
        app()
    except SystemExit as done:
        if done.code:
            raise


def composition_message(error: Exception) -> str:
    """Hydra's and OmegaConf's account of a config that does not compose, as one line that says what would."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    cause = str(error.__cause__).splitlines()[0] if error.__cause__ is not None else ""
    full_key = getattr(error.__cause__, "full_key", None)
    if full_key and " not in " in cause:
        if full_key.startswith("trainer."):
            from styleexp.trainer_args import refusal  # here only: it loads Lightning

            key = full_key.removeprefix("trainer.")
            return refusal(key) or f"{full_key} is not in the config; add it with +{full_key}=VALUE"
        close = difflib.get_close_matches(full_key, _setting_names(), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{full_key} is not a setting{hint} (styleexp --cfg job lists them all)"
    if any(line.startswith("Available options in") for line in lines):
        start = next(i for i, line in enumerate(lines) if line.startswith("Available options in"))
        options = [line for line in lines[start + 1 :] if not line.startswith(("Config search path", "provider="))]
        wanted = re.search(r"Could not find '([^']+)'", lines[0])
        group, _, option = (wanted.group(1) if wanted else "").rpartition("/")
        close = difflib.get_close_matches(option, options, n=1)
        hint = f"; did you mean {group}={close[0]}?" if close else ""
        return f"{group}={option} is not an option of {group}{hint} (options: {', '.join(options)})"
    if already := re.search(r"An item is already at '([^']+)'", lines[0]):  # a `+key=value` for a key that is there
        return f"{already[1]} is already in the config; set it without the +: {already[1]}=VALUE"
    if isinstance(error, OverrideParseException):
        return f"{lines[0]}; overrides look like key=value (https://hydra.cc/docs/advanced/override_grammar/basic)"
    return f"{lines[0]}: {cause}" if cause else lines[0]


def _setting_names() -> list[str]:
    """The dotted names of every setting of the default config."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config"), resolve=False)

    def leaves(node: object, prefix: str) -> list[str]:
        if isinstance(node, dict):
            return [prefix.rstrip(".")] * bool(prefix) + [
                name for key, child in node.items() for name in leaves(child, f"{prefix}{key}.")
            ]
        return [prefix.rstrip(".")]

    return leaves(cfg, "")
