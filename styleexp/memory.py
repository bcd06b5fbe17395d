"""Memory a run needs, memory the machine has, and a cap so that a run that outgrows it fails alone.

The estimate is measured figures, not a model: a fixed ~400 MB (the network, the evaluators that
score the result, work space), plus per pixel of each image what the network's activations take
forward and backward (its ``bytes_per_pixel``: about 2.5 kB for VGG-19 to ``relu5_1`` in float32 on
the CPU) and what the optimiser keeps (its ``state``: an L-BFGS history of ``m`` steps is two
``[3, H, W]`` float32 tensors a step). Shallower networks, fewer layers and 16-bit autocast need
less, so the figure errs on the safe side.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from styleexp import devices, samples, style_losses
from styleexp.errors import UserError
from styleexp.extractors import NETWORKS, positions, resolve_layer
from styleexp.optimizers import OPTIMIZERS

FIXED_MB = 400.0
FLOAT_BYTES_PER_PIXEL = 12.0  # one [3, H, W] float32 tensor


@dataclass
class Estimate:
    """What a run at its largest scale needs beyond what the process holds now, and what the device has free (MB)."""

    need_mb: float
    available_mb: float
    held_mb: float  # what the process held when estimated (the need comes on top)
    largest_size: int  # the largest ``size`` (longest side) whose need fits, a multiple of 8

    @property
    def fits(self) -> bool:
        return self.need_mb <= self.available_mb


def estimate(cfg: DictConfig, batch: int = 1) -> Estimate:
    """The memory the run ``cfg`` (``batch`` images at once) needs at its largest scale, against the memory free for
    it."""
    steps = max(cfg.steps) if OmegaConf.is_list(cfg.steps) else cfg.steps
    per_pixel = batch * bytes_per_pixel(cfg, steps)
    shaping = (
        [cfg.content] if cfg.content is not None else samples.names(cfg.style)
    )  # the output's shape comes from these
    aspect = samples.aspect(shaping[0]) if shaping else 1.0
    device = devices.device_of(cfg)
    available = available_mb(device)
    extra = batch * style_loss_mb(cfg, aspect)
    need = FIXED_MB + extra + float(cfg.size) ** 2 * aspect * per_pixel / 2**20
    held = round(_held_mb(device), 1)
    if not math.isfinite(available):
        return Estimate(round(need, 1), available, held, cfg.size)
    largest_pixels = max(0.0, (available - FIXED_MB - extra) * 2**20 / per_pixel)
    return Estimate(round(need, 1), round(available, 1), held, int(math.sqrt(largest_pixels / aspect)) // 8 * 8)


def check_fits(cfg: DictConfig, batch: int = 1) -> Estimate:
    """Refuse, with the largest size that fits, a run that cannot fit in the memory free for it."""
    found = estimate(cfg, batch)
    if not found.fits:
        where = "GPU memory" if devices.device_of(cfg).type == "cuda" else "memory"
        advice = f"size={found.largest_size} or less fits" if found.largest_size >= 8 else "free memory first"
        raise UserError(
            f"size={cfg.size} needs about {found.need_mb / 1024:.1f} GB but only {found.available_mb / 1024:.1f} GB of "
            f"{where} is free; {advice}"
        )
    return found


def available_mb(device: torch.device) -> float:
    """Free memory for this process: the GPU's free memory, else the smaller of MemAvailable and the cgroup's headroom.

    Infinite where the system does not say (off Linux): the run is then not refused.
    """
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2**20
    try:
        free = [_field_kb(Path("/proc/meminfo"), "MemAvailable") / 1024]
    except (OSError, StopIteration):
        return math.inf
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            free.append((int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())) / 2**20)
    except (OSError, ValueError):
        pass
    return min(free)


@contextmanager
def capped(device: torch.device) -> Iterator[int | None]:
    """Limit this process's address space to what it uses now plus the memory free, on the CPU.

    Past the cap an allocation fails inside the process (torch: ``RuntimeError: ... can't allocate
    memory``; Python: ``MemoryError``), which the run records as failed, instead of the kernel's
    out-of-memory killer taking the machine's other processes down with it. Yields the cap in
    bytes (None where there is none: on a GPU, whose driver reserves address space, and off Linux).
    """
    if device.type == "cuda" or not math.isfinite(available_mb(device)):
        yield None
        return
    # Start the thread pool first: a thread started past a tight cap aborts the process.
    torch.zeros(1 << 20).add_(1)
    previous = resource.getrlimit(resource.RLIMIT_AS)
    cap = int(_field_kb(Path("/proc/self/status"), "VmSize") * 1024 + available_mb(device) * 2**20)
    if previous[1] != resource.RLIM_INFINITY:
        cap = min(cap, previous[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, previous[1]))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)


def is_out_of_memory(error: BaseException | None) -> bool:
    """Whether ``error`` is an allocation that failed, on the GPU or under the CPU cap."""
    return isinstance(error, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def bytes_per_pixel(cfg: DictConfig, steps: int) -> float:
    """What one image of the run takes per pixel: the network's activations and the optimiser's state."""
    optimizer = OPTIMIZERS[cfg.optim.name.value]
    state = optimizer.state(optimizer.settings_of(cfg.optim), steps)
    return NETWORKS[cfg.network.name.value].bytes_per_pixel + FLOAT_BYTES_PER_PIXEL * state


def style_loss_mb(cfg: DictConfig, aspect: float) -> float:
    """The style loss's working memory for one image at its largest scale, over its style layers (MB): what a patch or
    distribution loss holds beyond the activations (``StyleLoss.extra_bytes``); nothing for a statistic. Every layer of
    the set counts (``style_layers.first`` or ``only`` would keep fewer): the estimate errs on the safe side."""
    if cfg.style is None:
        return 0.0
    loss, network = style_losses.from_config(cfg.gram), cfg.network.name.value
    shape = (max(1, round(cfg.size * aspect)), cfg.size)  # aspect: the short side over the long one
    style_shape = tuple(max(1, round(side * cfg.style_scale)) for side in shape)
    total = sum(
        loss.extra_bytes(
            NETWORKS[network].channels(layer), positions(network, layer, shape), positions(network, layer, style_shape)
        )
        for layer in (resolve_layer(network, layer) for layer in cfg.style_layers.layers)
    )
    return total / 2**20


def _held_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        return _field_kb(Path("/proc/self/status"), "VmRSS") / 1024
    except (OSError, StopIteration):
        return 0.0


def _field_kb(path: Path, key: str) -> int:
    line = next(line for line in path.read_text().splitlines() if line.startswith(f"{key}:"))
    return int(line.split()[1])


def batch_that_fits(cfg: DictConfig, wanted: int) -> int:
    """The most images, up to ``wanted``, that the run ``cfg`` can optimise at once in the memory free (at least 1)."""
    return next((batch for batch in range(wanted, 1, -1) if estimate(cfg, batch).fits), 1)
