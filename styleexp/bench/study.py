"""``styleexp-bench --study OVERRIDES``: what a study costs from start to report.

``styleexp -m OVERRIDES`` runs the sweep into a new folder (a temporary one unless ``--study-dir``
names one), then ``styleexp-report`` reports it (with ``--report-args``), each as the user would run
it. The total wall time is the two together; beside it, each one's, the sum of the jobs' own wall
times (``wall_time_s`` of their summaries: the sweep's time less its process start-up and the
launcher's work, or more with parallel jobs), and how many jobs there were, completed and converged.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path

from styleexp.bench.cases import STYLEEXP, timed

# styleexp-report as a process of this interpreter (like STYLEEXP, whether or not its console script is installed).
REPORT = [sys.executable, "-c", "from styleexp.commands import report; report()"]


def job_summaries(sweep_dir: Path) -> list[dict]:
    """The summary of every job folder of the sweep in ``sweep_dir`` ({} for a job that wrote none)."""
    from styleexp.rundir import OVERRIDES, read_summary

    return [read_summary(path.parents[1]) for path in sorted(Path(sweep_dir).glob(f"*/{OVERRIDES}"))]


def tally(summaries: list[dict]) -> dict:
    """How many jobs, how many completed and converged, and the sum of their own wall times in seconds."""
    return {
        "jobs": len(summaries),
        "completed": sum(summary.get("status") == "completed" for summary in summaries),
        "converged": sum(bool(summary.get("converged")) for summary in summaries),
        "jobs_wall_s": sum(summary.get("wall_time_s") or 0.0 for summary in summaries),
    }


def run_study(overrides: str, sweep_dir: Path, report_args: str = "") -> dict:
    """The sweep ``overrides`` into ``sweep_dir``, then its report (with ``report_args``, e.g. ``--no-validation``):
    wall seconds of each and the jobs' tally."""
    sweep_s, error = timed([*STYLEEXP, "-m", *shlex.split(overrides), f"hydra.sweep.dir={sweep_dir}"])
    result = {"overrides": overrides, "report_args": report_args, "sweep_dir": str(sweep_dir), "sweep_s": sweep_s}
    if error:
        return {**result, **tally(job_summaries(sweep_dir)), "error": f"styleexp: {error}"}
    report_s, error = timed([*REPORT, str(sweep_dir), *shlex.split(report_args)])
    result.update({"report_s": report_s, "total_s": sweep_s + report_s, **tally(job_summaries(sweep_dir))})
    return {**result, "error": f"styleexp-report: {error}"} if error else result


def run(overrides: str, folder: Path | None = None, report_args: str = "") -> dict:
    """``run_study`` into ``folder`` (which must be new or empty: a sweep skips the jobs a folder holds already) or
    a temporary folder; printed as a table."""
    if folder is not None:
        if folder.exists() and any(folder.iterdir()):
            raise SystemExit(f"styleexp-bench: error: {folder} is not empty; a sweep there would skip its done jobs")
        result = run_study(overrides, folder, report_args)
    else:
        with tempfile.TemporaryDirectory(prefix="styleexp-study-") as tmp:
            result = run_study(overrides, Path(tmp) / "sweep", report_args)
    print(table(result))
    return {"study": result}


def table(result: dict) -> str:
    """A Markdown table of one ``run_study`` result: seconds, jobs, completed and converged."""
    seconds = [result.get(key) for key in ("total_s", "sweep_s", "report_s", "jobs_wall_s")]
    cells = ["-" if value is None else f"{value:.1f}" for value in seconds]
    lines = [
        "| study | total s | sweep s | report s | jobs' own s | jobs | completed | converged |",
        "|---|---|---|---|---|---|---|---|",
        f"| `{result['overrides']}` | {' | '.join(cells)} | {result['jobs']} | {result['completed']} | "
        f"{result['converged']} |",
    ]
    return "\n".join(lines) + (f"\n\n{result['error']}" if "error" in result else "")
