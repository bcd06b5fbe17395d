"""Traits: one number each, read off a saved synthesis, that tests one claim of the write-ups (``shared/seeds``).

Each trait is a function in a file of this package, registered in ``TRAITS`` (``trait.py`` says
what one is); a new trait is a new file here, which this package imports. ``python -m
styleexp.traits SWEEP_DIR`` scores a finished sweep with them (``cli.py``); docs/traits.md says
what each measures, its range, and the claim it tests.
"""

from __future__ import annotations

import importlib
import pkgutil

from styleexp.traits.trait import INPUTS, TRAITS, Trait

__all__ = ["INPUTS", "TRAITS", "Trait"]
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "__main__":  # each other module registers its trait; this one is ``python -m`` running
        importlib.import_module(f"{__name__}.{_module.name}")
