"""Where a run works, by what name the summary knows it, and the most memory the run held there."""

from __future__ import annotations

import os
import platform
import resource
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from styleexp.errors import UserError


def device_of(cfg: DictConfig) -> torch.device:
    """Where the run works: the GPU ``trainer.devices`` picks (as Lightning reads it: a count takes the first GPU,
    a list of one index that GPU) if there is one and the trainer is not told to use the CPU; else the CPU.

    A trainer told to use the GPU (``trainer=gpu``) where there is none is refused.
    """
    accelerator = cfg.trainer.get("accelerator")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            f"there is no GPU here for trainer=gpu (trainer.accelerator={accelerator}: torch finds no CUDA device); "
            "use trainer=cpu, or trainer=default (a GPU when there is one, else the CPU)"
        )
    if not torch.cuda.is_available() or accelerator == "cpu":
        return torch.device("cpu")
    chosen = cfg.trainer.get("devices", 1)
    if isinstance(chosen, str) and "," in chosen:  # Lightning reads "1," as GPU 1, "1" as one GPU
        chosen = [int(i) for i in chosen.split(",") if i.strip()]
    elif isinstance(chosen, str) and chosen != "auto":
        chosen = int(chosen)
    count = torch.cuda.device_count()
    if chosen == 1 or (chosen in ("auto", -1) and count == 1):
        return torch.device("cuda", 0)
    if isinstance(chosen, Sequence) and len(chosen) == 1 and 0 <= int(chosen[0]) < count:
        return torch.device("cuda", int(chosen[0]))
    raise UserError(
        f"trainer.devices={chosen} does not name one GPU of the {count} here; a run uses one: "
        "trainer.devices=1 or trainer.devices=[k] (batch jobs on a GPU with hydra/launcher=batched)"
    )


def process_age_s() -> float | None:
    """Seconds since this process started (Linux; None elsewhere): what a command has spent before a moment of it."""
    try:
        started_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")


def reset_peak_memory(device: torch.device) -> None:
    """Start counting a GPU's peak allocation afresh: a sweep's earlier jobs in this process are not this run's."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA's peak allocation on a GPU, else this process's peak resident memory.

    Linux's ``VmHWM`` is used rather than ``ru_maxrss``, which a process started by ``fork`` and
    ``exec`` inherits from its parent.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def cpu_threads(configured: int | None) -> int | None:
    """CPU threads for this run: ``configured``, else the cores shared among parallel jobs, else None (all)."""
    if configured:
        return configured
    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    cores = len(os.sched_getaffinity(0))
    if launcher.get("n_jobs") is not None:  # joblib: -1 is all cores, -2 all but one, ...
        jobs = launcher.n_jobs if launcher.n_jobs > 0 else cores + 1 + launcher.n_jobs
        return max(1, cores // max(1, jobs))
    return launcher.get("cpus_per_task") or (launcher.get("submitit") or {}).get("cpus_per_task")  # submitit
