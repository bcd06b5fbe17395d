"""How much each step along an ordered key changes the output: a fair distance between neighbouring runs' images,
cached beside the report so that rerunning a report runs no evaluator network."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from styleexp import measures
from styleexp.measures.validation import measures_version
from styleexp.report.load import Run, position
from styleexp.rundir import FINAL

ORDERED = ("style_layers.first", "style_layers.only", "content_layer", "size")  # keys whose values come in an order
CHANGE = "change_from_previous"


def changes(
    runs: list[Run],
    keys: dict[str, list[str]],
    name: str,
    load: Callable[[], measures.Evaluator],
    cache: Path | None = None,
) -> None:
    """For a sweep over an ordered key: each run's fair distance to the run with the key's previous value (all else
    equal), stored as ``scores["change_from_previous"]``.

    The evaluator ``name`` (built by ``load``, only if some distance is not in ``cache`` yet) gives its
    ``style/gram`` between the two outputs (the previous one as the reference), or its content
    distance for reconstruction. ``cache`` (a JSON file) keeps each distance by the evaluator, the
    measures' version and the two images' contents.
    """
    pairs = _neighbours(runs, keys)
    if not pairs:
        return
    known = _read(cache)
    judge, represented, computed = None, {}, 0

    def represent(run: Run) -> object:
        if run.name not in represented:
            represented[run.name] = judge.represent(run.image("final"))
        return represented[run.name]

    for run, before in pairs:
        content = run.summary.get("mode") == "reconstruction"
        entry = ":".join([name, measures_version(), "content" if content else "style", _digest(run), _digest(before)])
        if entry not in known:
            judge = judge or load()
            distances = (judge.content_distances if content else judge.style_distances)(
                represent(run), represent(before)
            )
            known[entry] = distances[(judge.content if content else judge.style)[0]]
            computed += 1
        run.scores[CHANGE] = known[entry]
    if cache is not None and computed:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f".{cache.name}.{os.getpid()}")
        partial.write_text(json.dumps(known, indent=1))
        os.replace(partial, cache)


def _neighbours(runs: list[Run], keys: dict[str, list[str]]) -> list[tuple[Run, Run]]:
    """Each completed run with its neighbour one value back along the sweep's last ordered key, all else equal."""
    ordered = [key for key in keys if key in ORDERED]
    if not ordered:
        return []
    index, values = list(keys).index(ordered[-1]), keys[ordered[-1]]
    by_position = {position(run, keys): run for run in runs if run.status == "completed"}
    pairs = []
    for place, run in by_position.items():
        if place[index] not in values or values.index(place[index]) == 0:
            continue
        before = by_position.get((*place[:index], values[values.index(place[index]) - 1], *place[index + 1 :]))
        if before is not None:
            pairs.append((run, before))
    return pairs


def _digest(run: Run) -> str:
    return hashlib.sha256((run.folder / FINAL).read_bytes()).hexdigest()[:16]


def _read(cache: Path | None) -> dict[str, float]:
    try:
        return json.loads(cache.read_text()) if cache is not None else {}
    except (OSError, ValueError):  # none yet, or unreadable: computed again
        return {}
