"""The config schemas: allowed values and group options come from the registries, defaults from one place."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import MISSING, OmegaConf

from styleexp import config
from styleexp.cli import CONFIG_DIR, EXPERIMENTS_DIR, app
from styleexp.extractors import NETWORKS, POOLING
from styleexp.inits import INITS
from styleexp.optimizers import OPTIMIZERS
from styleexp.style_losses import STYLE_LOSSES
from styleexp.terms import TERMS

from .conftest import compose_config

GROUPS = {"network": NETWORKS, "pooling": POOLING, "gram": STYLE_LOSSES, "init": INITS, "optim": OPTIMIZERS}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_registered_choice_is_a_group_option(group):
    for name in GROUPS[group]:
        cfg = compose_config(f"{group}={name}", hydra=True)
        assert cfg.hydra.runtime.choices[group] == name


def test_a_typo_in_a_group_option_lists_the_registry():
    with pytest.raises(MissingConfigException) as error:
        compose_config("gram=covariance")
    assert all(name in str(error.value) for name in STYLE_LOSSES)
    with pytest.raises(ConfigCompositionException) as error:
        compose_config("gram.name=covariance")
    assert all(name in str(error.value.__cause__) for name in STYLE_LOSSES)


def test_loss_weights_are_the_registered_terms_with_their_own_defaults():
    cfg = compose_config()
    assert dict(cfg.loss) == {name: kind.default_weight for name, kind in TERMS.items()}
    with pytest.raises(ConfigCompositionException):
        compose_config("loss.histogram=1")


def test_each_optimizer_takes_its_own_settings_only():
    adam = compose_config("optim=adam")
    assert OmegaConf.to_container(adam.optim, enum_to_str=True) == {
        "name": "adam",
        **dataclasses.asdict(OPTIMIZERS["adam"].settings()),
    }
    with pytest.raises(ConfigCompositionException):
        compose_config("optim=adam", "optim.history_size=5")
    assert compose_config("optim=lbfgs", "optim.history_size=5").optim.history_size == 5


def test_plain_defaults_come_from_the_schema_alone():
    main_job = OmegaConf.load(Path(CONFIG_DIR) / "config.yaml")
    assert set(main_job) == {"defaults", "hydra"}  # group choices only: no second source of a default
    cfg = OmegaConf.to_container(compose_config(), resolve=False)
    for f in dataclasses.fields(config.Config):
        if f.default not in (dataclasses.MISSING, MISSING):
            assert cfg[f.name] == f.default, f.name


def test_help_lists_every_group_the_studies_presets_and_searches_and_the_companion_commands(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["styleexp", "--help"])
    with pytest.raises(SystemExit) as exit_:
        app()
    done = capsys.readouterr()
    assert exit_.value.code == 0
    assert f"gram: {', '.join(sorted(STYLE_LOSSES))}" in done.out
    for name, loss in STYLE_LOSSES.items():  # each style loss with its settings and their defaults
        assert f"  {name} " in done.out
        assert all(f"gram.{f.name}={f.default}" in done.out for f in dataclasses.fields(loss.Settings)), name
    for group in ("study", "preset", "search"):
        for path in (Path(EXPERIMENTS_DIR) / group).glob("*.yaml"):
            assert f"  {path.stem} " in done.out, path.stem
    assert "gram_variants       Study 2, pure style: which statistic is style?" in done.out
    for command in (
        "styleexp-report",
        "styleexp-resume",
        "styleexp-reproduce",
        "styleexp-bench",
        "styleexp-validate-measures",
    ):
        assert f"  {command} " in done.out
