"""Where models run and in what precision: ``model.device`` / ``train.precision`` resolved once, recorded everywhere.

``auto`` picks CUDA, then Apple's MPS, then the CPU. Precision ``auto`` is bf16 on a GPU that supports it, fp16
(with loss scaling in training) on an older GPU, and fp32 on a CPU — where bf16 matmuls are slower than fp32 and
fp16 is not supported by every kernel. Every stage that runs a model writes ``runtime(...)`` into its results JSON,
so a number can always be traced to the device, precision, torch and CUDA versions that produced it.

Example::

    device = resolve_device("auto")                       # "cuda" on a GPU machine, else "mps" or "cpu"
    precision = resolve_precision("auto", device)         # "bf16" on an A100/H100, "fp32" on a CPU
    trainer_precision_args(precision)                     # {"bf16": True, "fp16": False}
"""
from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

from bgetune.errors import BgetuneError

log = logging.getLogger("bgetune")

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class DeviceError(BgetuneError, ValueError):
    """A device that is not available here (e.g. ``model.device: cuda`` on a machine without a GPU)."""


def check_device_name(name: str) -> None:
    if not _DEVICE.match(name):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")


def resolve_device(requested: str = "auto") -> str:
    """The torch device string for ``requested``; an explicit device that is missing is a DeviceError."""
    import torch

    check_device_name(requested)
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"model.device: {requested} but no CUDA GPU is visible (torch {torch.__version__}, "
                              f"built for CUDA {torch.version.cuda}); install a CUDA build of torch or use auto")
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"model.device: {requested} but only {torch.cuda.device_count()} GPU(s) are visible")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("model.device: mps but Apple's Metal backend is not available here")
    return requested


def bf16_supported(device: str) -> bool:
    import torch

    return device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def cpu_bf16_native(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether this CPU multiplies bf16 natively (x86: the AVX512-BF16 or AMX-BF16 flag; Arm: bf16 in its
    features); None where the file cannot be read (macOS, Windows). Without it autocast emulates bf16 matrix
    products: on a 2-core AMD EPYC with AVX2 only, meddialog's hour run in bf16 had not finished its first
    120-step round after 50 minutes, where a CPU with AVX512-BF16 trains both rounds in 24 (docs/benchmarks.md)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return None


def resolve_precision(requested: str, device: str, bf16_ok: bool | None = None,
                      cpu_bf16: bool | None = None) -> str:
    """fp32 | bf16 | fp16 for ``requested`` (auto | fp32 | bf16 | fp16) on ``device``.

    ``bf16_ok`` and ``cpu_bf16`` override the hardware queries (tests decide the logic without a GPU). fp16 is
    refused on a CPU (half-precision training there is unsupported or slower); bf16 on a CPU is allowed (autocast
    runs it), with a warning where the CPU has no native bf16 (``cpu_bf16_native``)."""
    if bf16_ok is None:
        bf16_ok = bf16_supported(device)
    gpu = device.startswith("cuda")
    if requested == "bf16" and device == "cpu":
        native = cpu_bf16_native() if cpu_bf16 is None else cpu_bf16
        if native is False:
            _warn_emulated_bf16()
    if requested == "auto":
        if not gpu:
            return "fp32"
        return "bf16" if bf16_ok else "fp16"
    if requested == "fp16" and not gpu:
        raise DeviceError(f"precision fp16 needs a CUDA GPU (device is {device}); use bf16 or fp32")
    if requested == "bf16" and gpu and not bf16_ok:
        raise DeviceError("precision bf16 is not supported by this GPU; use fp16 (with loss scaling) or auto")
    return requested


@functools.lru_cache(maxsize=None)
def _warn_emulated_bf16() -> None:
    # once per process: preflight and the stage both resolve the precision
    log.warning("precision bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX): autocast emulates it, many "
                "times slower than fp32; use fp32 or auto here")


def trainer_precision_args(precision: str) -> dict:
    """Hugging Face TrainingArguments for a precision: fp16 turns on its gradient scaler (loss scaling)."""
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def inference_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def runtime(device: str, precision: str, processes: int = 1) -> dict:
    """What ran a stage: device (and GPU name), precision, processes, torch and CUDA versions."""
    import platform

    import torch

    info = {"device": device, "precision": precision, "processes": processes, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version()}
    if device.startswith("cuda") and torch.cuda.is_available():
        index = int(device.split(":")[1]) if ":" in device else 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["gpus_visible"] = torch.cuda.device_count()
    else:
        import os

        info["cpu_threads"] = torch.get_num_threads()
        info["cpu_count"] = os.cpu_count()
    return info
