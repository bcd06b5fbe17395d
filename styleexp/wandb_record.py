"""What a run's W&B record holds, so that it stands on its own once synced: its config, tags and job type at the start;
its summary and an artifact of its run folder at the end.

Nothing in it names this machine's folders: a path is written relative to the working folder the command ran in
(``../shared/images/x.jpg``), and an input file has its SHA-256 beside it (``content_sha256``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from styleexp import rundir, samples, sweeps
from styleexp.job import Job
from styleexp.weights import file_sha256

# The groups whose chosen options a dashboard filters by most: the study or preset, the statistic and the network.
TAGGED = ("study", "preset", "gram", "network")
# summary.json's keys that W&B's summary repeats, read from the summary the run wrote (nothing computed twice).
SUMMARY_KEYS = (
    "status",
    "message",
    "mode",
    "steps",
    "max_steps",
    "evaluations",
    "converged",
    "batch",
    "wall_time_s",
    "seconds_per_step",
    "peak_memory_mb",
    "peak_memory_kind",
    "device",
    "precision",
    "config_sha256",
)
# The run folder's files in its artifact (with its input images), under their names in the folder, so that a download
# is laid out as the folder was.
ARTIFACT_FILES = (rundir.FINAL, rundir.CONFIG, rundir.OVERRIDES, rundir.SUMMARY, rundir.METRICS)
# An absolute path inside a text: a "/" that starts a word, up to a space, quote or separator.
_ABSOLUTE = re.compile(r"(?<![\w.~/:-])/[^\s'\"(),;\[\]]+")


def portable(text: str) -> str:
    """``text`` with each absolute path in it relative to the working folder (``done: outputs/runs/x/final.png``)."""
    return _ABSOLUTE.sub(lambda found: os.path.relpath(found.group(0)), text)


def config(job: Job) -> dict[str, Any]:
    """The W&B config of ``job``: what determines its result (``rundir.identity_config``) with its paths relative and
    its input files' SHA-256, the evaluators that score it (``measures.networks``), the chosen options and the
    overrides."""
    identity = _portable_values(rundir.identity_config(job.cfg))
    for key in rundir.INPUTS:
        identity.update(_input_hashes(key, job.cfg.get(key)))
    if (init := identity.get("init")) and init.get("path"):
        init.update(_input_hashes("path", job.cfg.init.path))
    return {
        **identity,
        "measures": {"networks": list(job.cfg.measures.networks)},
        "choices": job.choices,
        "overrides": {key: portable(value) for key, value in sweeps.overrides_dict(job.overrides).items()},
    }


def tags(job: Job, mode: str) -> list[str]:
    """``study:gram_variants``, ``preset:...``, ``gram:centered``, ``network:vgg19`` (those chosen) and
    ``mode:synthesis``."""
    return [f"{group}:{job.choices[group]}" for group in TAGGED if job.choices.get(group)] + [f"mode:{mode}"]


def job_type() -> str:
    """``sweep-job`` for a job of a sweep, else ``run`` (a report's run is ``report``)."""
    return "sweep-job" if sweeps.is_multirun() else "run"


def summary(written: Mapping[str, Any]) -> dict[str, Any]:
    """W&B's summary at a run's end from the ``summary.json`` it wrote: how it ended, its cost, where it ran, its
    config and weights SHA-256 and its measures (``measure/...``)."""
    kept = {"evaluations": 0, "steps": 0, "converged": False}
    kept.update({key: written[key] for key in SUMMARY_KEYS if written.get(key) is not None})
    kept["message"] = portable(str(written.get("message", "")))
    if sha256 := (written.get("weights") or {}).get("sha256"):
        kept["weights_sha256"] = sha256
    kept.update({f"measure/{key}": value for key, value in (written.get("measures") or {}).items()})
    return kept


def artifact(run_id: str, run_dir: Path, written: Mapping[str, Any]) -> Any:
    """The ``run-folder`` artifact of the run ``run_id``: its final image, inputs, resolved config, overrides,
    ``summary.json`` and ``metrics.csv`` as they are when it ends (after ``summary.json`` is written)."""
    import wandb

    weights = written.get("weights") or {}
    made = wandb.Artifact(
        f"run-folder-{run_id}",
        type="run-folder",
        description=f"The run folder {run_dir.name}: its result, inputs, config, summary and metrics.",
        metadata={
            "folder": run_dir.name,
            "status": written.get("status"),
            "message": portable(str(written.get("message", ""))),
            "steps": written.get("steps"),
            "mode": written.get("mode"),
            "config_sha256": written.get("config_sha256"),
            "weights_sha256": weights.get("sha256"),
            "overrides": [portable(override) for override in written.get("overrides", [])],
        },
    )
    for path in [*(run_dir / name for name in ARTIFACT_FILES), *rundir.input_files(run_dir)]:
        if path.is_file():
            made.add_file(str(path), name=path.relative_to(run_dir).as_posix())
    return made


def _portable_values(node: Any) -> Any:
    """``node`` (a config as plain containers) with every string's absolute paths made relative."""
    if isinstance(node, dict):
        return {key: _portable_values(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_portable_values(value) for value in node]
    return portable(node) if isinstance(node, str) else node


def _input_hashes(key: str, value: Any) -> dict[str, Any]:
    """``{key_sha256: ...}`` for an input given as files (a list for a blend; None for a sample); {} for samples
    alone. A run folder (``init.path``) is hashed by its ``final.png``."""
    files = [_file_of(name) for name in samples.names(value)]
    hashes = [file_sha256(path) if path is not None else None for path in files]
    if not any(hashes):
        return {}
    return {f"{key}_sha256": hashes[0] if isinstance(value, str) else hashes}


def _file_of(name: str) -> Path | None:
    if name in samples.SAMPLES:
        return None
    path = Path(name).expanduser()
    path = path / rundir.FINAL if path.is_dir() else path
    return path if path.is_file() else None
