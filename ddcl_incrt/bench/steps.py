"""The three training steps the bench times, each a callable that runs one full step when called:
ours (:class:`OursStep`, the accelerated engine's step as the trainer runs it), the baseline
(:class:`BaselineStep`, ``nn.TransformerEncoderLayer`` with ``torch.optim.Adam`` between the same input
projection and readout) and the NumPy reference (:class:`ReferenceStep`); :func:`prime` runs one of each
untimed. The timed sections and the profile build their steps here."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from accelerated import backward as acc_backward
from accelerated import optim as acc_optim
from accelerated.step import StepFunction
from accelerated.trainer import with_leaves
from ddcl_incrt.bench.configs import (
    D_IN,
    LAMBDA_Q,
    LR,
    N_CLASSES,
    T_P,
    BenchConfig,
    baseline_heads,
    digits,
    feedforward_width,
)
from ddcl_incrt.bench.timing import sync
from reference import backward as ref_backward
from reference import optim as ref_optim
from reference.model import init_params
from reference.surgery import add_head, unflatten
from reference.surgery import flatten as ref_flatten


def dtype_name(dtype: torch.dtype) -> str:
    """``float32`` for ``torch.float32``."""
    return str(dtype).removeprefix("torch.")


def batch(cfg: BenchConfig) -> tuple[np.ndarray, np.ndarray]:
    """The same minibatch for every implementation at ``cfg`` (its own generator, seed 1)."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((cfg.B, cfg.T, D_IN)), rng.integers(0, N_CLASSES, size=cfg.B)


def reference_params(cfg: BenchConfig) -> Any:
    """:func:`reference.model.init_params` plus ``H − 1`` heads by :func:`reference.surgery.add_head`."""
    lc = cfg.layer()
    rng = np.random.default_rng(0)
    params = init_params(lc, rng=rng)
    for _ in range(cfg.H - 1):
        params, _ = add_head(params, lc, rng=rng)
    return params


class OursStep:
    """One step of the accelerated engine as the trainer runs it: stacked-heads loss, autograd, Adam."""

    def __init__(self, cfg: BenchConfig, dtype: torch.dtype, device: str, compiled: bool) -> None:
        self.params = acc_backward.from_reference(reference_params(cfg), dtype=dtype, device=device)
        x, labels = batch(cfg)
        self.x = torch.tensor(x, dtype=dtype, device=device)
        self.labels = torch.tensor(labels, device=device)
        self.fn = StepFunction(compile=compiled)
        self.opt = acc_optim.Adam(lr=ref_optim.LearningRates.uniform(LR))
        self.state = self.opt.init_state(self.params.heads)
        self.loss: Tensor | None = None
        self.error: BaseException | None = None  # a failure StepFunction could not catch (the backward's)

    def n_params(self) -> int:
        return sum(t.numel() for t in acc_backward.leaves(self.params).values())

    def compile_error(self) -> BaseException | None:
        """``StepFunction.error`` (the forward's compilation), or a failure of the compiled backward."""
        return self.fn.error or self.error

    def _loss_and_grads(self, stored: dict[str, Tensor]) -> tuple[Tensor, tuple[Tensor, ...]]:
        L, _, _, _, _ = self.fn(self.params, self.x, self.labels, T_P, LAMBDA_Q)
        return L, torch.autograd.grad(L, list(stored.values()))

    def __call__(self) -> None:
        stored = acc_backward.leaves(self.params)
        try:
            L, grads = self._loss_and_grads(stored)
        except Exception as exc:  # the compiled backward failed (compiled lazily, outside StepFunction)
            if not self.fn.compile or self.fn.error is not None:
                raise
            self.error, self.fn = exc, StepFunction(compile=False)
            L, grads = self._loss_and_grads(stored)
        new, self.state = self.opt.step(self.state, stored, dict(zip(stored, grads, strict=True)))
        self.params = with_leaves(self.params, new)
        self.loss = L.detach()


class BaselineModel(nn.Module):
    """``x W_in + E_pos`` → ``nn.TransformerEncoderLayer`` → mean over the sequence → linear → cross-entropy."""

    def __init__(self, cfg: BenchConfig, nhead: int, ff: int) -> None:
        super().__init__()
        self.inp = nn.Linear(D_IN, cfg.d)
        self.pos = nn.Parameter(0.1 * torch.randn(cfg.T, cfg.d))
        self.layer = nn.TransformerEncoderLayer(
            d_model=cfg.d, nhead=nhead, dim_feedforward=ff, dropout=0.0, batch_first=True
        )
        self.out = nn.Linear(cfg.d, N_CLASSES)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.layer(self.inp(x) + self.pos[None])
        return nn.functional.cross_entropy(self.out(h.mean(dim=1)), labels)


class BaselineStep:
    """One ``torch.optim.Adam`` step of :class:`BaselineModel`, ``torch.compile(model)`` when compiled;
    a compilation failure is kept in ``error`` and the step continues eagerly."""

    def __init__(self, cfg: BenchConfig, dtype: torch.dtype, device: str, compiled: bool) -> None:
        self.nhead = baseline_heads(cfg.H, cfg.d)
        self.ff = feedforward_width(cfg.d, cfg.K)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.model = BaselineModel(cfg, self.nhead, self.ff).to(device=device, dtype=dtype)
        x, labels = batch(cfg)
        self.x = torch.tensor(x, dtype=dtype, device=device)
        self.labels = torch.tensor(labels, device=device)
        self.fn: Callable[[Tensor, Tensor], Tensor] = torch.compile(self.model) if compiled else self.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.error: BaseException | None = None
        self.loss: Tensor | None = None

    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def compile_error(self) -> BaseException | None:
        return self.error

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        try:
            loss = self.fn(self.x, self.labels)
            torch.autograd.backward(loss)
        except Exception as exc:  # compilation failed: record it, run eagerly (as StepFunction does)
            if self.fn is self.model:
                raise
            self.error, self.fn = exc, self.model
            self.opt.zero_grad(set_to_none=True)
            loss = self.model(self.x, self.labels)
            torch.autograd.backward(loss)
        self.opt.step()
        self.loss = loss.detach()


class ReferenceStep:
    """One reference step: :func:`reference.backward.loss_and_gradients` and :class:`reference.optim.Adam`
    on the flat view (:func:`training.trainer.train_step` without the D1 check)."""

    def __init__(self, cfg: BenchConfig) -> None:
        self.cfg = cfg.layer()
        self.params = reference_params(cfg)
        self.x, self.labels = batch(cfg)
        self.opt = ref_optim.Adam(lr=ref_optim.LearningRates.uniform(LR))
        self.state = self.opt.init_state()
        self.loss = math.nan

    def __call__(self) -> None:
        cache, grads = ref_backward.loss_and_gradients(self.params, self.cfg, self.x, self.labels)
        new, self.state = self.opt.step(self.state, ref_flatten(self.params), grads)
        self.params = unflatten(new, like=self.params)
        self.loss = cache.L


def prime(device: str) -> None:
    """One untimed eager step of ours and of the baseline per dtype, and one reference step, so that the
    process's one-time costs (kernel libraries' lazy initialisation, first allocations) fall on no row."""
    cfg = digits(1)
    for dtype in (torch.float32, torch.float64):
        OursStep(cfg, dtype, device, compiled=False)()
        BaselineStep(cfg, dtype, device, compiled=False)()
    ReferenceStep(cfg)()
    sync(device)


__all__ = [
    "BaselineModel",
    "BaselineStep",
    "OursStep",
    "ReferenceStep",
    "batch",
    "dtype_name",
    "prime",
    "reference_params",
]
