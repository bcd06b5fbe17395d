"""Conclusions from a sweep's measures: means over replicates, paired comparisons over units, evaluators' rankings.

Replicate keys (``seed`` by default) are what a study repeats to see whether a difference is real;
the other swept keys are its factors, and the last factor that is not an input image is the question
(``gram``). Two values of it are compared over units: images (the values of the swept input keys), each
the mean over its seeds; where no input image is swept, seeds. ``inference`` holds the statistics.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from styleexp.measures import higher_is_better
from styleexp.report.inference import Comparison, spread
from styleexp.report.load import Run

INPUTS = ("content", "style")


def factors(keys: dict[str, list[str]], replicate: Sequence[str]) -> list[str]:
    """The swept keys that are not replicates, in sweep order."""
    return [key for key in keys if key not in replicate]


def question(keys: dict[str, list[str]], replicate: Sequence[str]) -> str | None:
    """The key whose values the sweep compares: its last factor that is not an input image (a sweep over
    ``style`` scores each run against a different image, so its values are not variants of one thing)."""
    return next((key for key in reversed(factors(keys, replicate)) if key not in INPUTS), None)


def completed(runs: Sequence[Run]) -> list[Run]:
    return [run for run in runs if run.status == "completed"]


def variants(
    runs: Sequence[Run], keys: dict[str, list[str]], replicate: Sequence[str], names: Sequence[str]
) -> list[dict[str, object]]:
    """One row per combination of the factors (in sweep order): how many runs, each measure's mean over them and
    its bootstrap interval over them (``inference.spread``), never pooled over another factor."""
    by_variant: dict[tuple[str, ...], list[Run]] = {}
    for run in completed(runs):
        by_variant.setdefault(tuple(run.choices.get(key, "") for key in factors(keys, replicate)), []).append(run)
    order = list(itertools.product(*(keys[key] for key in factors(keys, replicate))))
    rows = []
    for variant in sorted(by_variant, key=lambda v: order.index(v) if v in order else len(order)):
        group = by_variant[variant]
        row: dict[str, object] = dict(zip(factors(keys, replicate), variant))
        row["runs"] = len(group)
        for name in names:
            values = [run.scores[name] for run in group if run.scores.get(name) is not None]
            mean, low, high = spread(values) if values else (None, None, None)
            row.update({name: mean, f"{name} low": low, f"{name} high": high})
        rows.append(row)
    return rows


def units(keys: dict[str, list[str]], replicate: Sequence[str]) -> tuple[list[str], str, bool]:
    """The keys whose combinations are the paired comparison's units, what one unit is called, and whether the
    sweep is of one image.

    A unit is one combination of every swept key but the question and the replicates (an image where only
    input keys are left); where no input key takes several values, the replicates stay in it, so seeds are units.
    """
    asked = question(keys, replicate)
    one_image = not any(len(keys[key]) > 1 for key in keys if key in INPUTS)
    cell = [key for key in keys if key != asked and (one_image or key not in replicate)]
    varied = [key for key in cell if len(keys[key]) > 1]
    if not one_image and all(key in INPUTS for key in varied):
        return cell, "image", False
    if one_image and all(key in replicate for key in varied):
        return cell, "seed", True
    return cell, " x ".join(varied) + " cell", one_image


def paired(
    runs: Sequence[Run], keys: dict[str, list[str]], replicate: Sequence[str], name: str, baseline: str | None = None
) -> list[Comparison]:
    """Each two values of the question (in sweep order) under measure ``name``, over the units where both have a
    value: a unit's value is the mean over its completed runs (its seeds, where the unit is an image). With a
    ``baseline`` among the values, only it against each other value: k - 1 comparisons instead of k(k - 1)/2."""
    asked = question(keys, replicate)
    if asked is None:
        return []
    cell_keys, unit, one_image = units(keys, replicate)
    scores: dict[tuple[str, ...], dict[str, list[float]]] = {}
    for run in completed(runs):
        if run.scores.get(name) is not None:
            cell = scores.setdefault(tuple(run.choices.get(key, "") for key in cell_keys), {})
            cell.setdefault(run.choices.get(asked, ""), []).append(run.scores[name])
    means = [{value: float(np.mean(values)) for value, values in cell.items()} for cell in scores.values()]
    comparisons = []
    pairs = itertools.combinations(keys[asked], 2)
    if baseline in keys[asked]:
        pairs = ((baseline, value) for value in keys[asked] if value != baseline)
    for a, b in pairs:
        differences = [mean[a] - mean[b] for mean in means if a in mean and b in mean]
        if differences:
            comparisons.append(Comparison(name, a, b, differences, not higher_is_better(name), unit, one_image))
    return comparisons


def ranking(runs: Sequence[Run], question: str, values: Sequence[str], name: str) -> list[str]:
    """The question's values from best to worst by their mean ``name`` over completed runs."""
    sign = -1.0 if higher_is_better(name) else 1.0
    means = {}
    for value in values:
        scores = [
            run.scores[name]
            for run in completed(runs)
            if run.choices.get(question) == value and run.scores.get(name) is not None
        ]
        if scores:
            means[value] = sign * float(np.mean(scores))
    return sorted(means, key=means.get)


def disagreements(
    runs: Sequence[Run], keys: dict[str, list[str]], replicate: Sequence[str], names: Sequence[str], first: str
) -> list[str]:
    """Where evaluators rank the question's values differently under the same measure, one sentence each.

    ``first`` names the evaluator whose measures carry no prefix.
    """
    asked = question(keys, replicate)
    if asked is None:
        return []
    by_measure: dict[str, dict[str, list[str]]] = {}
    for name in names:
        evaluator, measure = name.split("/", 1) if name.count("/") == 2 else (first, name)
        if measure.startswith(("style/", "content/")):
            by_measure.setdefault(measure, {})[evaluator] = ranking(runs, asked, keys[asked], name)
    sentences = []
    for measure, rankings in by_measure.items():
        if len({tuple(r) for r in rankings.values() if r}) > 1:
            listed = "; ".join(f"{evaluator}: {' > '.join(r)}" for evaluator, r in rankings.items())
            sentences.append(f"Evaluators disagree on {asked} under {measure} (best first): {listed}.")
    return sentences


def evaluator_rankings(
    runs: Sequence[Run], keys: dict[str, list[str]], replicate: Sequence[str], names: Sequence[str], first: str
) -> dict[str, list[str]]:
    """Each evaluator's ranking of the question's values (best first): by the mean place its style measures give
    them (its content measures where a run has no style), so that an evaluator counts once however many measures it has.
    """
    asked = question(keys, replicate)
    if asked is None:
        return {}
    by_evaluator: dict[str, dict[str, list[str]]] = {}
    for name in names:
        evaluator, measure = name.split("/", 1) if name.count("/") == 2 else (first, name)
        kind = measure.split("/")[0]
        if kind in ("style", "content"):
            by_evaluator.setdefault(evaluator, {}).setdefault(kind, []).append(name)
    rankings = {}
    for evaluator, kinds in by_evaluator.items():
        places: dict[str, list[int]] = {}
        for name in kinds.get("style") or kinds.get("content", []):
            for place, value in enumerate(ranking(runs, asked, keys[asked], name)):
                places.setdefault(value, []).append(place)
        if places:
            rankings[evaluator] = sorted(places, key=lambda value: float(np.mean(places[value])))
    return rankings


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Kendall's rank agreement of two rankings of the same values: 1 the same order, -1 reversed."""
    common = [value for value in a if value in b]
    if len(common) < 2:
        return None
    tau = stats.kendalltau([a.index(v) for v in common], [b.index(v) for v in common]).statistic
    return None if math.isnan(tau) else float(tau)


def agreement(rankings: dict[str, list[str]], question: str) -> str | None:
    """One sentence naming the evaluators that agree on the ranking of the question's values, and those that do not."""
    if len(rankings) < 2:
        return None
    groups: dict[tuple[str, ...], list[str]] = {}
    for evaluator, order in rankings.items():
        groups.setdefault(tuple(order), []).append(evaluator)
    if len(groups) == 1:
        return f"Every evaluator ranks {question} the same: {' > '.join(next(iter(groups)))}."
    largest = max(groups.values(), key=len)
    majority = next(order for order, members in groups.items() if members is largest)
    others = [
        f"{', '.join(members)} {'disagrees' if len(members) == 1 else 'disagree'} ({' > '.join(order)})"
        for order, members in groups.items()
        if members is not largest
    ]
    return f"{' > '.join(majority)} under {' and '.join(largest)}; " + "; ".join(others) + "."


def ranked(runs: Sequence[Run], name: str) -> list[Run]:
    """The completed runs with a value of measure ``name``, best first."""
    sign = -1.0 if higher_is_better(name) else 1.0
    scored = [run for run in completed(runs) if run.scores.get(name) is not None]
    return sorted(scored, key=lambda run: sign * run.scores[name])
