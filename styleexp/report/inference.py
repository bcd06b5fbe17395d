"""The report's inference, with the image as the unit: intervals over replicates, paired tests over units, verdicts.

Seeds are replicates within an image: a variant's value on an image is the mean over its seeds, and their spread is
shown as a percentile bootstrap interval. Two values of the question are compared over units (images, or the seeds
of a sweep of one image) by the two-sided exact sign test, with the median paired difference as the effect and a
percentile bootstrap interval over units; the p-values of every comparison a report makes are Holm-corrected
together. The sign test, not Wilcoxon's signed-rank test: the images' distances differ in scale by orders of
magnitude, so ranking differences across images would let the largest-scale image decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
LEVEL = 0.95
RESAMPLES = 10_000
SEED = 0  # a fixed generator: the same runs give the same report, to the last digit


def bootstrap(values: Sequence[float], statistic: Callable = np.mean) -> tuple[float, float] | None:
    """Percentile bootstrap interval (``LEVEL``) of ``statistic`` over ``values``, resampled with replacement by a
    fixed generator; None for fewer than two values.

    ``statistic`` takes an array and ``axis``. Its ends are values the statistic takes on resamples, so for a mean
    or a median they lie within the range of ``values``: never past a bound the measure cannot cross.
    """
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return None
    draws = np.random.default_rng(SEED).integers(0, len(data), size=(RESAMPLES, len(data)))
    low, high = np.quantile(statistic(data[draws], axis=1), [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def spread(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean of replicates and its bootstrap interval (None, None for a single replicate)."""
    interval = bootstrap(values)
    return float(np.mean(values)), *(interval or (None, None))


def sign_test(differences: Sequence[float]) -> float:
    """Two-sided exact sign test that positive and negative ``differences`` are equally likely (zeros left out);
    1 when every difference is zero."""
    above, below = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    return float(stats.binomtest(above, above + below, 0.5).pvalue) if above + below else 1.0


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the i-th smallest of m p-values times (m - i + 1), made non-decreasing, capped
    at 1; in the order given."""
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(np.argsort(p_values, kind="stable")):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def needed(comparisons: int) -> int:
    """The fewest units at which the sign test could reach p_holm <= ``ALPHA`` among ``comparisons`` over as many
    units: with every unit one way its p-value is 2 / 2**n, and Holm holds the smallest p-value to
    ``ALPHA / comparisons`` (stopping there if it fails)."""
    units = 1
    while 2.0 ** (1 - units) > ALPHA / max(comparisons, 1):
        units += 1
    return units


@dataclass
class Comparison:
    """Two values of the question under one measure, paired over the units where both were run.

    ``differences`` are ``a - b``, one per unit (each side the mean over the unit's replicates). ``unit`` names one
    unit ("image", "seed", "style x network cell"); ``one_image`` says that no input image was swept.
    """

    measure: str
    a: str
    b: str
    differences: list[float]
    lower_is_better: bool
    unit: str = "image"
    one_image: bool = False

    @property
    def p(self) -> float:
        return sign_test(self.differences)

    def units(self, count: int | None = None) -> str:
        """``count`` units in words ("3 images", "1 seed of one image"); without a count, the plural alone."""
        plural = "" if count == 1 else "s"
        return f"{'' if count is None else f'{count} '}{self.unit}{plural}{' of one image' if self.one_image else ''}"


def verdicts(comparisons: Sequence[Comparison]) -> list[str]:
    """One line per comparison, in words, its p-value Holm-corrected over all of ``comparisons``."""
    at_least = needed(len(comparisons))
    return [verdict(c, p, at_least) for c, p in zip(comparisons, holm([c.p for c in comparisons]))]


def verdict(comparison: Comparison, p_holm: float, at_least: int) -> str:
    """``centered < gram on style/gram: 9 of 10 images, median effect -0.08 [-0.12, -0.03], p_holm = 0.02``.

    The better value comes first (``<`` where lower is better, ``>`` where higher is); the effect is the median
    of better minus worse. Where p_holm is above ``ALPHA``, the line says it is inconclusive below ``at_least``
    units, and else that no difference was shown.
    """
    c = comparison
    sign = 1.0 if c.lower_is_better else -1.0
    differences = np.asarray(c.differences, dtype=float)
    a_better, b_better = int(np.sum(sign * differences < 0)), int(np.sum(sign * differences > 0))
    if b_better > a_better or (b_better == a_better and sign * float(np.median(differences)) > 0):
        better, worse, differences = c.b, c.a, -differences
    else:
        better, worse = c.a, c.b
    wins, count = max(a_better, b_better), len(differences)
    interval = bootstrap(differences, np.median)
    effect = f"median effect {float(np.median(differences)):.2g}" + (
        f" [{interval[0]:.2g}, {interval[1]:.2g}]" if interval else ""
    )
    direction = "lower" if c.lower_is_better else "higher"
    if p_holm <= ALPHA:
        relation = "<" if c.lower_is_better else ">"
        return (
            f"{better} {relation} {worse} on {c.measure}: {wins} of {c.units(count)}, {effect}, p_holm = {p_holm:.2g}"
        )
    if count < at_least:
        return (
            f"{c.a} vs {c.b} on {c.measure}: inconclusive: {c.units(count)}, at least {at_least} needed "
            f"({better} {direction} in {wins} of {count}, {effect})"
        )
    return (
        f"{c.a} vs {c.b} on {c.measure}: no difference shown: {better} {direction} in {wins} of {c.units(count)}, "
        f"{effect}, p_holm = {p_holm:.2g}"
    )


def method(comparisons: Sequence[Comparison], question: str) -> str:
    """One sentence that says how the verdicts on ``comparisons`` (at least one) were reached: the unit, the test,
    the correction, the units needed."""
    units = comparisons[0].units()
    return (
        f"Two values of {question} under one measure are compared paired over {units}"
        + ("" if comparisons[0].one_image else " (each the mean over its seeds)")
        + f": the two-sided exact sign test, its p-value Holm-corrected over the {len(comparisons)} comparisons "
        f"below, and the median difference with a {LEVEL * 100:.0f} % bootstrap interval over {units}; a verdict "
        f"at p_holm <= {ALPHA} needs at least {needed(len(comparisons))} of them."
    )
