"""What the end of a run means: its status and message, its exit code, its console lines, and a sweep's record.

The command line and the batched launcher both end their runs here, so that a run says the same
whichever way it was launched.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from styleexp import memory, signals
from styleexp.errors import UserError
from styleexp.weights import WeightsUnavailable

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
STATUSES = ("completed", "skipped", "interrupted", "nan", "failed")
# Of the first evaluator, and those always on: the measures the result line shows.
HEADLINE = ("style/gram", "content/relu4_2", "ssim", "colour", "speckle")


@dataclass
class Outcome:
    """How a run ended (one of ``STATUSES``), as the command line reports it."""

    run_dir: Path
    status: str
    message: str
    error: Exception | None = None  # why a failed run failed
    objective: float | None = None  # what a sweeper minimises; None for a run that did not complete
    summary: dict[str, Any] = field(default_factory=dict)  # what it wrote to summary.json

    @property
    def exit_code(self) -> int:
        return exit_code(self.status, self.error)


def exit_code(status: str, error: BaseException | None) -> int:
    """The exit code of a run that ended with ``status``: 2 for a user's mistake (``error``), whatever the status."""
    if isinstance(error, UserError):
        return EXIT_USAGE
    return {"completed": 0, "skipped": 0, "interrupted": EXIT_INTERRUPTED}.get(status, EXIT_FAILED)


def message(status: str, error: Exception | None, steps: int, final: Path | None, nan: str | None, size: int) -> str:
    """The sentence ``summary.json``, W&B and the console give a run that ended with ``status``."""
    if status == "failed":
        if memory.is_out_of_memory(error):
            return f"out of memory at size={size}; lower size= or use fewer or shallower style layers"
        return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
    return {
        "completed": f"done: {final}",
        "interrupted": f"interrupted at step {steps}; the image so far is in {final}",
        "nan": f"stopped: {nan}; the last finite image is in {final}",
    }[status]


def announce(mode: str, run_dir: Path) -> None:
    """A run's first console line: what it is and where it works."""
    print(f"styleexp: {mode} run in {run_dir}", flush=True)


def result_line(text: str, summary: Mapping[str, Any]) -> str:
    """A run's last console line: how it ended, then its steps, time, final total loss and headline measures."""
    facts = []
    if summary.get("steps"):
        converged = " (converged)" if summary.get("converged") else ""
        facts.append(f"{summary['steps']} steps{converged} in {summary.get('wall_time_s', 0):.0f} s")
    if "loss/total" in summary.get("losses", {}):
        facts.append(f"loss/total {summary['losses']['loss/total']:.4g}")
    scores = summary.get("measures") or {}
    facts += [f"{key} {scores[key]:.3g}" for key in HEADLINE if isinstance(scores.get(key), (int, float))]
    return f"{text} ({'; '.join(facts)})" if facts else text


def conclude(result: Outcome, multirun: bool) -> float | None:
    """A run's last console line and its exit; its objective for the sweeper.

    A single run exits with its code; in a sweep only an interruption (or weights that every other
    job would miss as well) ends the sweep.
    """
    if not multirun:  # the outcome is on record: a late signal must not give an exit code that contradicts it
        signals.ignore()
    if isinstance(result.error, WeightsUnavailable) and multirun:
        # Every other job would fail the same way: the sweep stops at its first. SystemExit, not the
        # error itself, which Hydra would record before going on to the next job.
        refuse(result.error)
    job = f"{result.run_dir.name}: " if multirun else ""
    if isinstance(result.error, UserError):
        print(f"styleexp: {job}error: {result.error}", file=sys.stderr)
    else:
        stream = sys.stderr if result.exit_code else sys.stdout
        print(f"styleexp: {job}{result_line(result.message, result.summary)}", file=stream)
    if result.status == "interrupted" or (result.exit_code and not multirun):
        if result.error is not None and not isinstance(result.error, UserError):
            raise result.error  # a bug, not a user mistake: show the traceback
        sys.exit(result.exit_code)
    return result.objective


def refuse(error: UserError) -> NoReturn:
    """A user mistake: one line on stderr, exit 2."""
    print(f"styleexp: error: {error}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def waiting(jobs: list[str]) -> None:
    """Before a sweep's record: the jobs it waits for, which another process is running."""
    print(f"styleexp: waiting for {len(jobs)} job{'s' * (len(jobs) != 1)} that another process is running: "
          f"{', '.join(jobs)}", flush=True)  # fmt: skip


def sweep_record(sweep_dir: Path, summaries: Mapping[str, dict[str, Any] | None], skipped: int) -> None:
    """The end of a sweep: a line counting its jobs, then a line for each that did not complete; exit 1 if any, or 2
    if each of them failed for a user's mistake (its ``summary.json``'s ``exit_code``).

    ``summaries`` maps each job the sweep defines to what its folder's ``summary.json`` holds ({} if
    it has none: the process died), or None if it has no folder.
    """
    problems, missing, codes = [], 0, set()
    for name, summary in summaries.items():
        if summary is None:
            missing += 1
            problems.append(f"  {name}: missing: no job folder (deleted?); styleexp-resume {sweep_dir} runs it again")
            codes.add(EXIT_FAILED)
        elif summary.get("status") != "completed":
            reason = summary.get("message", "no summary.json; the process died")
            problems.append(f"  {name}: {summary.get('status', 'killed')}: {reason}")
            codes.add(summary.get("exit_code", EXIT_FAILED))
    failed = len(problems) - missing
    print(
        f"styleexp: sweep {sweep_dir}: {len(summaries)} jobs, {len(summaries) - len(problems)} completed "
        f"({skipped} skipped as done before), {failed} failed" + (f", {missing} missing" if missing else ""),
        file=sys.stderr if problems else sys.stdout,
    )
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(EXIT_USAGE if codes == {EXIT_USAGE} else EXIT_FAILED)
