"""Where a run works, by what name the summary knows it, and the most memory the run held there."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

import torch
from omegaconf import DictConfig


def device_of(cfg: DictConfig) -> torch.device:
    """Where the run works: the GPU if there is one and the trainer is not told to use the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.get("accelerator") != "cpu" else "cpu")


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
