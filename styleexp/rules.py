"""What a setting's value must be: a whole number of at least some bound, a finite positive number, ...

A rule checks one value and raises a one-line ``UserError`` that names the key and gives an example.
``checks.py`` applies them to the config; an optimiser attaches them to its own settings (field
metadata ``rule``), so that ``checks.py`` needs to know no optimiser's keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from styleexp.errors import UserError


def finite(value: Any) -> bool:
    """A number (not a bool) that is neither infinite nor NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """``kind`` is ``whole`` (an int of at least ``least``), ``positive`` (finite, above 0) or ``non_negative``."""

    kind: str
    example: str
    least: int = 0

    def check(self, key: str, value: Any) -> None:
        if self.kind == "whole" and (not isinstance(value, int) or isinstance(value, bool) or value < self.least):
            raise UserError(f"{key}={value} must be a whole number of at least {self.least}; e.g. {self.example}")
        if self.kind == "positive" and (not finite(value) or value <= 0):
            raise UserError(f"{key}={value} must be a finite number above 0; e.g. {self.example}")
        if self.kind == "non_negative" and (not finite(value) or value < 0):
            raise UserError(f"{key}={value} must be a finite number of at least 0; e.g. {self.example}")


def whole(least: int, example: str) -> Rule:
    return Rule("whole", example, least)


def positive(example: str) -> Rule:
    return Rule("positive", example)


def non_negative(example: str) -> Rule:
    return Rule("non_negative", example)
