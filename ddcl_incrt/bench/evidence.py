"""Where the numbers were taken, as evidence beside them: the machine (platform, the CPU's model and
flags from ``/proc/cpuinfo`` or :mod:`platform`, library versions, threads, the CUDA device), the load
average before and after each section, and the thread setting every measurement runs in."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ddcl_incrt.bench.configs import BenchOptions

CPUINFO = Path("/proc/cpuinfo")
# the flags that decide which kernels torch and the BLAS run (the header names those present)
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "asimd", "sve")
_MODEL_KEYS = ("model name", "Model", "cpu model", "Processor")  # x86, ARM boards, MIPS/others, old ARM
_FLAG_KEYS = ("flags", "Features")  # x86, ARM


def has_threadpoolctl() -> bool:
    """Whether ``threadpoolctl`` (which limits NumPy's BLAS threads) is installed."""
    return importlib.util.find_spec("threadpoolctl") is not None


def config_flag(module: str, name: str) -> bool | None:
    """A torch config flag (None where this torch has no such flag)."""
    value = getattr(importlib.import_module(module), name, None)
    return None if value is None else bool(value)


def cpu_info(path: Path = CPUINFO) -> dict[str, Any]:
    """The CPU's model, vendor, clock and flags from the first processor block of ``path`` (Linux's
    ``/proc/cpuinfo``), or the model from :func:`platform.processor` and no flags where that file is
    missing or unreadable; ``source`` says which. torch's own view of the vector unit it dispatches to
    (``torch.backends.cpu.get_cpu_capability``) is added either way."""
    fields: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    model = next((fields[k] for k in _MODEL_KEYS if fields.get(k)), None)
    flags = next((fields[k].split() for k in _FLAG_KEYS if fields.get(k)), None)
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return {
        "source": str(path) if fields else "platform",
        "model": model or platform.processor() or None,
        "vendor": fields.get("vendor_id") or fields.get("CPU implementer"),
        "mhz": float(fields["cpu MHz"]) if fields.get("cpu MHz", "").replace(".", "", 1).isdigit() else None,
        "cache": fields.get("cache size"),
        "flags": sorted(flags) if flags is not None else None,
        "simd": [f for f in SIMD_FLAGS if flags is not None and f in flags],
        "torch_cpu_capability": capability() if capability is not None else None,
    }


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine(opts: BenchOptions) -> dict[str, Any]:
    """Where the numbers were taken: platform, the CPU (:func:`cpu_info`), library versions, threads,
    the CUDA device."""
    affinity = getattr(os, "sched_getaffinity", None)
    cuda = torch.cuda.is_available()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu": cpu_info(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity(0)) if affinity is not None else None,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": opts.device_name,
        "cuda_device": torch.cuda.get_device_name() if cuda else None,
        "cuda_version": torch.version.cuda,
        "allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
    }


@contextlib.contextmanager
def thread_setting(opts: BenchOptions) -> Iterator[None]:
    """``torch.set_num_threads``, NumPy's BLAS limited alike (``threadpoolctl``, when installed), TF32 off
    on CUDA (float32 means float32); everything restored afterwards."""
    old_threads = torch.get_num_threads()
    old_tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.set_num_threads(opts.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with contextlib.ExitStack() as stack:
        if has_threadpoolctl():
            stack.enter_context(importlib.import_module("threadpoolctl").threadpool_limits(limits=opts.threads))
        try:
            yield
        finally:
            torch.set_num_threads(old_threads)
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old_tf32


__all__ = [
    "CPUINFO",
    "SIMD_FLAGS",
    "config_flag",
    "cpu_info",
    "has_threadpoolctl",
    "load_average",
    "machine",
    "thread_setting",
]
