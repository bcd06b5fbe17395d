"""How much each step along an ordered key changes the output: a fair distance between neighbouring runs' images,
cached in the sweep folder so that rerunning a report runs no evaluator network."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from styleexp import measures
from styleexp.measures.validation_cache import measures_version
from styleexp.report.load import Run, position
from styleexp.rundir import FINAL

ORDERED = ("style_layers.first", "style_layers.only", "content_layer", "size")  # keys whose values come in an order
CHANGE = "change_from_previous"


def changes(
    runs: list[Run],
    keys: dict[str, list[str]],
    name: str,
    load: Callable[[], measures.Evaluator],
    cache: Path | Sequence[Path] | None = None,
) -> None:
    """For a sweep over an ordered key: each run's fair distance to the run with the key's previous value (all else
    equal), stored as ``scores["change_from_previous"]``.

    The evaluator ``name`` (built by ``load``, only if some distance is not in ``cache`` yet) gives its
    ``style/gram`` between the two outputs (the previous one as the reference), or its content
    distance for reconstruction. ``cache`` (a JSON file, or one per sweep: ``cache_file``) keeps each
    distance by the evaluator, its version and the two images' contents, so any file holds only true
    values: all are read, and the new distances written into each.
    """
    pairs = _neighbours(runs, keys)
    if not pairs:
        return
    files = [cache] if isinstance(cache, Path) else list(cache or ())
    known = {entry: value for file in files for entry, value in _read(file).items()}
    # By folder, not name: a joint report of several sweeps holds runs of one name.
    entries = {run.folder: _entry(name, run, before) for run, before in pairs}
    todo = [(run, before) for run, before in pairs if entries[run.folder] not in known]
    if todo:
        print(
            f"styleexp-report: measuring how much each step of {_last_ordered(keys)} changes the output, with "
            f"{name} ({len(todo)} pairs of runs{'; cached for the next report' if files else ''})",
            file=sys.stderr,
            flush=True,
        )
        judge, represented = load(), {}
        for run, before in todo:
            for one in (run, before):
                if one.folder not in represented:
                    represented[one.folder] = judge.represent(one.image("final"))
            content = run.summary.get("mode") == "reconstruction"
            distances = (judge.content_distances if content else judge.style_distances)(
                represented[run.folder], represented[before.folder]
            )
            known[entries[run.folder]] = distances[(judge.content if content else judge.style)[0]]
        for file in files:
            _write(file, known)
    for run, _ in pairs:
        run.scores[CHANGE] = known[entries[run.folder]]


def cache_file(sweep_dir: Path) -> Path:
    """Where a sweep keeps its changes: beside its runs, so a new report (or a joint one of several sweeps) finds
    them even once the old report folder is gone."""
    return sweep_dir / ".cache" / "changes.json"


def _entry(name: str, run: Run, before: Run) -> str:
    kind = "content" if run.summary.get("mode") == "reconstruction" else "style"
    return ":".join([name, measures_version(), kind, _digest(run), _digest(before)])


def _last_ordered(keys: dict[str, list[str]]) -> str:
    return [key for key in keys if key in ORDERED][-1]


def _neighbours(runs: list[Run], keys: dict[str, list[str]]) -> list[tuple[Run, Run]]:
    """Each completed run with its neighbour one value back along the sweep's last ordered key, all else equal."""
    if not any(key in ORDERED for key in keys):
        return []
    index, values = list(keys).index(_last_ordered(keys)), keys[_last_ordered(keys)]
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


def _read(cache: Path) -> dict[str, float]:
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: computed again
        return {}


def _write(cache: Path, known: dict[str, float]) -> None:
    """Written whole or not at all; a sweep folder one may not write to only loses the cache."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f".{cache.name}.{os.getpid()}")
        partial.write_text(json.dumps(known, indent=1))
        os.replace(partial, cache)
    except OSError:
        pass
