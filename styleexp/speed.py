"""Speed switches for the extractor: numeric precision, memory layout and compilation.

``fp32`` is exact float32 everywhere (TF32 off). ``tf32`` lets NVIDIA GPUs (Ampere and newer) use
TensorFloat-32 in convolutions and matrix products. ``bf16`` runs the network under bfloat16
autocast, while the style statistics and losses stay in float32 (``statistics.py``).
"""

from __future__ import annotations

import torch

from styleexp.errors import UserError
from styleexp.extractors import Extractor
from styleexp.registry import Registry

# speed.precision option -> Lightning's precision setting.
PRECISIONS: Registry[str] = Registry("precision")
PRECISIONS.add("fp32", "32-true")
PRECISIONS.add("tf32", "32-true")
PRECISIONS.add("bf16", "bf16-mixed")


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run."""
    if precision == "tf32" and not (device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8):
        raise UserError("speed.precision=tf32 needs an NVIDIA GPU of the Ampere generation or newer; use fp32 or bf16")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("speed.precision=bf16 needs a GPU with bfloat16 support; use fp32")


def set_precision(precision: str, device: torch.device) -> str:
    """Set the process-wide float32 matmul and convolution modes; return Lightning's precision setting.

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
