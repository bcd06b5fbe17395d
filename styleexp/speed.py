"""Speed switches for the extractor: numeric precision, memory layout and compilation.

``fp32`` is exact float32 everywhere (TF32 off). ``tf32`` lets NVIDIA GPUs (Ampere and newer) use
TensorFloat-32 in convolutions and matrix products. ``bf16`` runs the network under bfloat16
autocast, while the style statistics and losses stay in float32 (``statistics.py``). ``auto`` (the
default) is ``bf16`` where the device has bfloat16 arithmetic and a 3x3 convolution measured faster in
it (CPUs with AMX or AVX-512-BF16, GPUs from Ampere on), else ``fp32``; the summary's ``precision``
says which ran.
"""

from __future__ import annotations

import functools
import statistics
import time

import torch

from styleexp.errors import UserError
from styleexp.extractors import Extractor
from styleexp.registry import Registry

# speed.precision option -> Lightning's precision setting (auto: that of the precision it resolves to).
PRECISIONS: Registry[str | None] = Registry("precision")
PRECISIONS.add("auto", None)
PRECISIONS.add("fp32", "32-true")
PRECISIONS.add("tf32", "32-true")
PRECISIONS.add("bf16", "bf16-mixed")
# bf16 must beat fp32 by this much to be chosen: a tie is not worth the rounding.
AUTO_MARGIN = 1.1


def resolve(precision: str, device: torch.device) -> str:
    """What runs for ``speed.precision=precision`` on ``device``: ``auto`` becomes ``bf16`` or ``fp32``."""
    if precision != "auto":
        return precision
    return "bf16" if bf16_supported(device) and bf16_speedup(device) >= AUTO_MARGIN else "fp32"


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (not by emulation, which is slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


@functools.cache
def bf16_speedup(device: torch.device) -> float:
    """How much faster a VGG-sized 3x3 convolution with its input gradient runs under bfloat16 autocast than in float32
    on ``device`` (median of 5; measured once per process, in about 0.1 s on a CPU)."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device).requires_grad_(False)
    x = torch.randn(1, 128, 64, 64, device=device, requires_grad=True)

    def seconds(bf16: bool) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                conv(x).float().sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - started)
        return statistics.median(times[2:])

    return seconds(False) / seconds(True)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run."""
    if precision == "tf32" and not (device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8):
        raise UserError("speed.precision=tf32 needs an NVIDIA GPU of the Ampere generation or newer; use fp32 or bf16")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("speed.precision=bf16 needs a GPU with bfloat16 support; use fp32")


def set_precision(precision: str, device: torch.device) -> str:
    """Set the process-wide float32 matmul and convolution modes for ``precision`` (resolved: not ``auto``); return
    Lightning's precision setting.

    Set on every run, because sweep workers are reused and such settings would leak between jobs.
    """
    check_precision(precision, device)
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return PRECISIONS[precision]


def configure(extractor: Extractor, channels_last: bool, compile: bool) -> Extractor:
    """Switch ``extractor`` to channels-last memory and/or compile it with ``torch.compile``, in place."""
    if channels_last:
        extractor.to(memory_format=torch.channels_last)
        extractor.memory_format = torch.channels_last
    if compile:
        extractor.compile()
    return extractor
