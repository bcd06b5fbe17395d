"""Which jobs of a sweep can share a batch: the grouping ``hydra/launcher=batched`` hands to ``run.run_batch``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import Enum
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# What the elements of a batch share: one network, one optimiser's settings, one trainer and its callbacks,
# one scale plan and image shape, one way of adding up the loss terms. Everything else (images, statistic, layers,
# weights and their units, init, seed, step cap, stop rule) is each element's own.
SHARED = (
    "network",
    "renormalise",
    "optim",
    "speed",
    "trainer",
    "callbacks",
    "size",
    "scales",
    "threads",
    "weights_dir",
    "log_every",
    "image_every",
    "verbose",
)


def batch_key(cfg: DictConfig) -> str:
    """What jobs must have in common to share a batch, as one string: ``SHARED`` settings and the output's shape.

    A job whose shape cannot be found (a missing image) or whose config does not resolve gets a key
    of its own and runs alone, where its error is recorded.
    """
    from styleexp.build import spec_of

    try:  # each resolved where it stands: callbacks.* read keys outside SHARED (progress_every_s)
        shared = {key: _resolved(cfg, key) for key in SHARED}
    except OmegaConfBaseException as error:
        return f"unresolvable: {error} {id(cfg)}"
    if cfg.network.weights == "random":  # the network itself depends on the seed
        shared["seed"] = cfg.seed
    try:
        shape = list(spec_of(cfg, cfg.size).shape)
    except Exception as error:  # recorded by the job's own run
        shape = f"unreadable: {error} {id(cfg)}"
    return json.dumps([shared, shape], sort_keys=True)


def _resolved(cfg: DictConfig, key: str) -> Any:
    """``cfg.<key>`` as plain data, its interpolations resolved against the whole config (never ``hydra``, whose
    ``${job_dir:}`` claims a folder)."""
    value = cfg[key]
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True, enum_to_str=True)
    return value.name if isinstance(value, Enum) else value


def batches(cfgs: Sequence[DictConfig], batch_size: int | None, fit_memory: bool = True) -> list[list[int]]:
    """The indices of ``cfgs`` in batches: jobs with one ``batch_key``, in sweep order, at most ``batch_size``
    (None: all) and, with ``fit_memory``, as many as this machine's memory estimate allows."""
    from styleexp import memory

    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(batch_key(cfg), []).append(i)
    made = []
    for members in groups.values():
        size = min(batch_size or len(members), len(members))
        if fit_memory:
            size = memory.batch_that_fits(cfgs[members[0]], size)
        made += [members[start : start + size] for start in range(0, len(members), size)]
    return made
