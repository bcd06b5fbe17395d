"""The measures' validation, cached where every report finds it, and the version a cached measure was computed with.

A validation result depends only on the images it was computed on and on the evaluator's version,
so it is computed once per evaluator version and set of images and kept in the user's cache folder
(``$XDG_CACHE_HOME/styleexp/validation/``), one file per evaluator and kind of measure.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from functools import cache
from pathlib import Path

import torch

from styleexp import samples
from styleexp.measures.controls import Controls
from styleexp.measures.evaluator import EVALUATORS, always, load
from styleexp.measures.portilla_simoncelli import SPREAD_FILE
from styleexp.measures.validation import Result, controls, validate

# The code a measure's value depends on besides the measures' own (package-relative globs): the statistics, the
# networks and their preprocessing, colour conversions. A change to any of them makes every cached value stale.
MEASURED_WITH = ("statistics.py", "preprocessing.py", "colors.py", "samples.py", "extractors/*.py")
KINDS = ("style", "content")


@cache
def measures_version() -> str:
    """A digest of ``version_sources``: what a cached result was computed with, the version of every evaluator."""
    digest = hashlib.sha256()
    for source in version_sources():
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def version_sources() -> list[Path]:
    """The files whose contents are the measures' version: their code and data, and the code they compute with."""
    package = Path(samples.__file__).parent
    used = [path for pattern in MEASURED_WITH for path in sorted(package.glob(pattern))]
    return [*sorted(Path(__file__).parent.glob("*.py")), *used, SPREAD_FILE]


def cached(
    images: dict[str, torch.Tensor],
    evaluator_names: Sequence[str],
    kinds: Sequence[str],
    weights_dir: str | None = None,
) -> list[Result]:
    """``validate`` with a cache in the user's cache folder, one entry per evaluator and kind of measure.

    An entry is keyed by the images' contents (not their names, nor the sweep that used them) and the
    evaluator's name and version (``measures_version``): every report on the same images finds it,
    whichever other evaluators it uses. Only missing entries are computed, saying so on the console.
    The negative controls' results come last, kept the same way (they cost a few seconds, no network).
    """
    ordered, digest = _in_one_order(images)
    names = list(dict.fromkeys([*evaluator_names, *always()])) if evaluator_names else []
    wanted = [(name, kind) for name in names for kind in KINDS if kind in kinds and getattr(EVALUATORS[name], kind)]
    checked = [(Controls.name, kind) for kind in KINDS if any(entry[1] == kind for entry in wanted)]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "styleexp" / "validation"
    files = {entry: folder / f"{_entry_key(*entry, digest)}.json" for entry in [*wanted, *checked]}
    found = {entry: _load(file) for entry, file in files.items()}
    missing = [entry for entry in wanted if found[entry] is None]
    evaluators = list(dict.fromkeys(name for name, _ in missing))
    if missing:
        _say(
            f"styleexp: validating the measures on {len(ordered)} images, once per evaluator version (about 10 s an "
            f"evaluator on a CPU; cached in {folder}; --no-validation skips it)"
        )
    for i, name in enumerate(evaluators, 1):
        _say(f"styleexp:   {name} ({i} of {len(evaluators)})")
        todo = [kind for evaluator, kind in missing if evaluator == name]
        results = validate(ordered, [load(name, weights_dir)], kinds=todo)
        for kind in todo:
            measured = {f"{name}/{measure}" for measure in getattr(EVALUATORS[name], kind)}
            found[name, kind] = [result for result in results if result.measure in measured]
            _save(found[name, kind], files[name, kind])
    for entry in checked:
        if found[entry] is None:
            found[entry] = controls(ordered, [entry[1]])
            _save(found[entry], files[entry])
    return [result for results in found.values() for result in results]


def _in_one_order(images: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """The images keyed and ordered by their contents, and a digest of them all: the order is fixed because the noise
    test seeds each image by its place."""
    hashed = {}
    for image in images.values():
        pixels = image.detach().float().cpu().contiguous()
        hashed[hashlib.sha256(str(list(pixels.shape)).encode() + pixels.numpy().tobytes()).hexdigest()] = image
    ordered = dict(sorted(hashed.items()))
    return ordered, hashlib.sha256("".join(ordered).encode()).hexdigest()


def _entry_key(name: str, kind: str, images_digest: str) -> str:
    return hashlib.sha256(json.dumps([name, kind, measures_version(), images_digest]).encode()).hexdigest()[:32]


def _load(file: Path) -> list[Result] | None:
    try:
        return [Result(**entry) for entry in json.loads(file.read_text())]
    except (OSError, ValueError, TypeError):  # none yet, or damaged: computed again
        return None


def _save(results: list[Result], file: Path) -> None:
    """Written whole or not at all: a report run beside this one reads a complete file or none."""
    file.parent.mkdir(parents=True, exist_ok=True)
    partial_file = file.with_name(f".{file.name}.{os.getpid()}")
    partial_file.write_text(json.dumps([asdict(r) for r in results]))
    os.replace(partial_file, file)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
