"""Argument checks shared by the accelerated modules: tensors, dtypes, devices.

They read metadata only (type, rank, dtype, device), never values, so they cost no device
synchronisation and may guard functions that run at every step.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_tensor(name: str, value: object, ndim: int, like: Tensor | None = None) -> Tensor:
    """``value`` if it is a floating ``ndim``-d tensor (of ``like``'s dtype and device when given), else an
    error naming ``name``. Reads only metadata: no device synchronisation."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dim() != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(value.shape)}")
    if not value.dtype.is_floating_point:
        raise TypeError(f"{name}: expected a floating dtype, got {value.dtype}")
    if like is not None and (value.dtype != like.dtype or value.device != like.device):
        raise TypeError(f"{name}: expected {like.dtype} on {like.device}, got {value.dtype} on {value.device}")
    return value


SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


def check_dtype(dtype: object) -> torch.dtype:
    """``dtype`` if it is one the layer is computed in (float32 or float64), else an error naming ``dtype``.

    float16 and bfloat16 are refused: their range (``|s| ≤ 9.7`` for float16's normal numbers) and
    their 11 or 8 significant bits are far outside what the temperatures and the growth statistics
    need, so a run in them would not be the computation the reference specifies."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {type(dtype).__name__} {dtype!r}")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype: {dtype} is not supported; the accelerated layer runs in float32 or float64")
    return dtype


def check_device(device: object) -> torch.device:
    """The ``torch.device`` of ``device`` (a device string such as ``"cpu"``, ``"cuda"`` or ``"cuda:1"``,
    or a ``torch.device``) if the layer can run there, else a ``ValueError``/``TypeError`` naming
    ``device``: only CPU and CUDA are supported, and CUDA only where this torch build sees a GPU."""
    if not isinstance(device, str | torch.device):
        raise TypeError(f"device: expected a device string such as 'cpu' or 'cuda', got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device: {device!r} is not a torch device (expected e.g. 'cpu', 'cuda' or 'cuda:0', in lower case)"
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"device: {device!r} is not supported; the accelerated layer runs on 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device: {device!r} asked for, but this torch build (CUDA {torch.version.cuda}) sees no CUDA "
            "device; use 'cpu'"
        )
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device: {device!r} does not exist; this machine has {torch.cuda.device_count()} CUDA devices"
        )
    return dev


__all__ = ["SUPPORTED_DTYPES", "check_device", "check_dtype", "check_tensor"]
