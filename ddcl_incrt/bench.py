"""``ddcl-incrt bench``: what the PyTorch engine costs, measured side by side in one process.

Every number is a median (with min–max and the quartiles in the JSON) of ``repeats`` timed iterations
after ``warmup`` untimed ones, each iteration timed alone with :func:`time.perf_counter` (the device
synchronised before each clock read on CUDA). All sections run in the same process, in the same thread
setting (``torch.set_num_threads(threads)``, and the same limit on NumPy's BLAS for the reference), so
the ratios compare like with like on the machine as it was loaded at that moment.

1. **Training step** — forward + backward + Adam, a full step, of the layer's fast path
   (:class:`accelerated.step.StepFunction`, autograd gradients, :class:`accelerated.optim.Adam`)
   against the standard block it replaces, ``torch.nn.TransformerEncoderLayer`` with ``torch.optim.Adam``,
   between the same input projection (``x W_in`` + learned positions) and the same readout (mean over the
   sequence, linear, cross-entropy). The baseline's feed-forward width ``ff`` is chosen so that its
   parameter count ``2·d·ff + ff + d`` is the closest to the prototype dictionary's ``d·K``
   (:func:`feedforward_width`); its head count is the nearest divisor of ``d`` (:func:`baseline_heads`).
   float32 and float64, eager and ``torch.compile``d; the first warm-up iteration minus the median is
   the compile time, and a compilation that failed (the step then runs eagerly) is reported, not hidden.
2. **Growth check** — one :func:`accelerated.growth_phases.growth_check` on the run's initial state (one
   head), built as :func:`training.trainer.run` builds it: its cost per check, as a multiple of one
   training step, and amortised over the ``g = 50`` steps between checks.
3. **Speed-up over the reference** — the NumPy reference's step (:func:`reference.backward.loss_and_gradients`
   and :class:`reference.optim.Adam`, as :func:`training.trainer.train_step` without the invariants)
   against the steps of section 1 at the same configuration.
4. **Scaling** — the eager float32 step as each of ``T``, ``K``, ``H``, ``d`` is doubled alone, beside the
   ratio the FLOP count predicts.
5. **FLOP/s** — the step's achieved rate, from the analytic count of :func:`forward_flops` (×3 for
   forward + backward), as a fraction of this machine's measured ``torch.matmul`` rate in that dtype.

The options are the ``bench`` subcommand's (:mod:`ddcl_incrt.cli`); :func:`main` runs it as
``python -m ddcl_incrt.bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from accelerated import backward as acc_backward
from accelerated import optim as acc_optim
from accelerated.growth_phases import AcceleratedState, growth_check
from accelerated.step import StepFunction, compile_count
from accelerated.trainer import AcceleratedEngine, _with_flat
from ddcl_incrt.output_paths import OutputWriteError, check_output_file, write_with_fallback
from reference import backward as ref_backward
from reference import optim as ref_optim
from reference.growth_phases import Context, calibrate
from reference.growth_statistics import Probe
from reference.model import LayerConfig, init_params
from reference.surgery import add_head, unflatten
from reference.surgery import flatten as ref_flatten
from reference.train_config import TrainConfig
from training.files import write_atomic
from training.trainer import init_state

SCHEMA = "ddcl-incrt-bench/1"
D_IN = 8  # input width of every configuration
N_CLASSES = 10
LR = 1e-3  # Adam's rate, every group (LearningRates.uniform)
T_P = 1.0
LAMBDA_Q = 0.1
CHECK_EVERY = 50  # SPEC's g: steps between growth checks, for the amortised cost
PROBE_SIZE = 64  # sequences in the growth check's probe
WARMUP = 3  # untimed iterations before the timed ones (covers compilation)
MATMUL_N = 1024  # side of the square matmul whose rate is the machine's peak

Mode = Literal["eager", "compiled"]


# ==================================================================================================
# Configurations and the options of a run
# ==================================================================================================


@dataclass(frozen=True)
class BenchConfig:
    """One size: ``B`` sequences of ``T`` tokens, width ``d``, ``d_k = d_v``, ``K`` prototypes, ``H`` heads."""

    name: str
    B: int
    T: int
    d: int
    d_k: int
    K: int
    H: int

    @property
    def label(self) -> str:
        return f"{self.name} H={self.H}"

    def layer(self) -> LayerConfig:
        return LayerConfig(
            d_in=D_IN,
            d=self.d,
            d_k=self.d_k,
            d_v=self.d_k,
            seq_len=self.T,
            K_max=self.K,
            n_classes=N_CLASSES,
            T_P=T_P,
            lambda_q=LAMBDA_Q,
        )

    def to_json(self) -> dict[str, Any]:
        keys = ("B", "T", "d", "d_k", "K", "H")
        return {"name": self.name, **{k: getattr(self, k) for k in keys}, "d_v": self.d_k}


def _digits(H: int) -> BenchConfig:
    return BenchConfig("digits", B=64, T=8, d=16, d_k=8, K=16, H=H)


def _mid(H: int) -> BenchConfig:
    return BenchConfig("mid-size", B=32, T=64, d=64, d_k=16, K=32, H=H)


LARGE = BenchConfig("large", B=64, T=128, d=256, d_k=32, K=64, H=8)


@dataclass(frozen=True)
class BenchOptions:
    """A run's settings. ``repeats=None``: 3 with ``quick``, else 20; ``device=None``: CUDA when available.

    ``quick`` is the smoke test: one configuration per section (the digits size), 3 repeats, no
    compilation. ``large`` adds :data:`LARGE` to the training-step section (always on CUDA)."""

    quick: bool = False
    compile: bool = True
    large: bool = False
    repeats: int | None = None
    threads: int = 2
    out: Path = Path("bench.json")
    device: str | None = None

    def __post_init__(self) -> None:
        if self.repeats is not None and self.repeats < 1:
            raise ValueError(f"repeats: must be >= 1, got {self.repeats}")
        if self.threads < 1:
            raise ValueError(f"threads: must be >= 1, got {self.threads}")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device: 'cuda' asked for, but torch.cuda.is_available() is False")

    @staticmethod
    def from_args(args: argparse.Namespace) -> BenchOptions:
        """The options from the ``bench`` subcommand's parsed arguments."""
        return BenchOptions(
            quick=args.quick,
            compile=args.compile,
            large=args.large,
            repeats=args.repeats,
            threads=args.threads,
            out=Path(args.out),
            device=args.device,
        )

    @property
    def n_repeats(self) -> int:
        return self.repeats if self.repeats is not None else (3 if self.quick else 20)

    @property
    def reference_repeats(self) -> int:
        """The reference is slow (~1 s/step at mid-size): a quarter of the repeats, at least 2."""
        return max(2, self.n_repeats // 4)

    @property
    def compiles(self) -> bool:
        return self.compile and not self.quick

    @property
    def device_name(self) -> str:
        if self.device is not None:
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def training_configs(self) -> list[BenchConfig]:
        if self.quick:
            return [_digits(11)]
        configs = [_digits(1), _digits(4), _digits(11), _mid(4), _mid(8)]
        if self.large or self.device_name == "cuda":
            configs.append(LARGE)
        return configs

    def growth_configs(self) -> list[BenchConfig]:
        return [_digits(1)] if self.quick else [_digits(1), _mid(1)]

    def reference_configs(self) -> list[BenchConfig]:
        return [_digits(11)] if self.quick else [_digits(11), _mid(4)]

    def scaling_base(self) -> BenchConfig:
        return _digits(4) if self.quick else _mid(4)

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "compile": self.compiles,
            "large": self.large,
            "repeats": self.n_repeats,
            "warmup": WARMUP,
            "reference_repeats": self.reference_repeats,
            "threads": self.threads,
            "numpy_blas_threads": self.threads if _has_threadpoolctl() else None,  # None: not limited
            "device": self.device_name,
            "lr": LR,
            "check_every": CHECK_EVERY,
            "probe_size": PROBE_SIZE,
            "matmul_n": MATMUL_N,
            # compile times are as found: inductor's on-disk caches (when on) shorten a recompilation
            "inductor_fx_graph_cache": _config_flag("torch._inductor.config", "fx_graph_cache"),
            "aot_autograd_cache": _config_flag("torch._functorch.config", "enable_autograd_cache"),
        }


def _config_flag(module: str, name: str) -> bool | None:
    """A torch config flag (None where this torch has no such flag)."""
    value = getattr(importlib.import_module(module), name, None)
    return None if value is None else bool(value)


# ==================================================================================================
# Timing
# ==================================================================================================


@dataclass(frozen=True)
class Timing:
    """Seconds per iteration: the timed samples and the warm-up iterations before them."""

    samples_s: tuple[float, ...]
    warmup_s: tuple[float, ...] = ()

    def _q(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.samples_s), q))

    @property
    def median_s(self) -> float:
        return self._q(50.0)

    @property
    def min_s(self) -> float:
        return min(self.samples_s)

    @property
    def max_s(self) -> float:
        return max(self.samples_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "median_s": self.median_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "q1_s": self._q(25.0),
            "q3_s": self._q(75.0),
            "repeats": len(self.samples_s),
            "samples_s": list(self.samples_s),
            "warmup_s": list(self.warmup_s),
        }


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(
    fn: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    device: str,
    after_warmup: Callable[[], None] | None = None,
) -> Timing:
    """``fn()`` ``warmup`` times, then ``repeats`` times, each call timed alone by ``time.perf_counter``
    with the device synchronised before both clock reads (work queued on a GPU is counted, not hidden);
    ``after_warmup`` runs between the two phases, untimed."""

    def once() -> float:
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - t0

    warm = tuple(once() for _ in range(warmup))
    if after_warmup is not None:
        after_warmup()
    return Timing(samples_s=tuple(once() for _ in range(repeats)), warmup_s=warm)


# ==================================================================================================
# Sizes: the baseline's shape and the analytic FLOP count
# ==================================================================================================


def feedforward_width(d: int, K: int) -> int:
    """The ``ff`` ≥ 1 whose feed-forward block (``2·d·ff + ff + d`` parameters: two linear maps with
    biases) is the closest in size to the prototype dictionary ``P`` (``d·K``); ties go to the smaller."""
    target = d * K
    best = max(1, (target - d) // (2 * d + 1))
    return min((best, best + 1), key=lambda ff: (abs(2 * d * ff + ff + d - target), ff))


def baseline_heads(H: int, d: int) -> int:
    """``H`` if it divides ``d`` (``nn.MultiheadAttention`` needs that), else the nearest divisor of
    ``d`` (ties go to the smaller)."""
    divisors = [h for h in range(1, d + 1) if d % h == 0]
    return min(divisors, key=lambda h: (abs(h - H), h))


def forward_flops(cfg: BenchConfig) -> int:
    """Floating-point operations of one forward of :func:`accelerated.step.stacked_loss` (a multiply-add
    is 2), ``n = B·T`` tokens, ``d_v = d_k``:

    * input        ``2·n·d_in·d``            (``x W_in``)
    * projections  ``2·n·d·H(2d_k + d_v)``   (q, k, v of all heads in one matmul)
    * scores       ``2·B·H·T²·d_k``          (``q kᵀ``)
    * values       ``2·B·H·T²·d_v``          (``softmax(·) v``)
    * output       ``2·n·H·d_v·d``           (``W_O``)
    * distances    ``3·n·d·K``               (difference, square, sum)
    * ``Q Pᵀ``     ``2·n·K·d``
    * readout      ``n·d + 2·B·d·n_classes`` (mean over the sequence, ``W_c``)

    The softmaxes, residual adds and losses are elementwise (``O(n·K + B·H·T²)``) and left out; a
    training step is counted as 3× the forward (the backward's two matmuls per forward matmul)."""
    B, T, d, d_k, K, H = cfg.B, cfg.T, cfg.d, cfg.d_k, cfg.K, cfg.H
    d_v = d_k
    n = B * T
    return (
        2 * n * D_IN * d
        + 2 * n * d * H * (2 * d_k + d_v)
        + 2 * B * H * T * T * d_k
        + 2 * B * H * T * T * d_v
        + 2 * n * H * d_v * d
        + 3 * n * d * K
        + 2 * n * K * d
        + n * d
        + 2 * B * d * N_CLASSES
    )


# ==================================================================================================
# The three training steps: ours, the baseline, the reference
# ==================================================================================================


def _batch(cfg: BenchConfig) -> tuple[np.ndarray, np.ndarray]:
    """The same minibatch for every implementation at ``cfg`` (its own generator, seed 1)."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((cfg.B, cfg.T, D_IN)), rng.integers(0, N_CLASSES, size=cfg.B)


def _reference_params(cfg: BenchConfig) -> Any:
    """:func:`reference.model.init_params` plus ``H − 1`` heads by :func:`reference.surgery.add_head`."""
    lc = cfg.layer()
    rng = np.random.default_rng(0)
    params = init_params(lc, rng=rng)
    for _ in range(cfg.H - 1):
        params, _ = add_head(params, lc, rng=rng)
    return params


class _OursStep:
    """One step of the accelerated engine as the trainer runs it: stacked-heads loss, autograd, Adam."""

    def __init__(self, cfg: BenchConfig, dtype: torch.dtype, device: str, compiled: bool) -> None:
        self.params = acc_backward.from_reference(_reference_params(cfg), dtype=dtype, device=device)
        x, labels = _batch(cfg)
        self.x = torch.tensor(x, dtype=dtype, device=device)
        self.labels = torch.tensor(labels, device=device)
        self.fn = StepFunction(compile=compiled)
        self.opt = acc_optim.Adam(lr=ref_optim.LearningRates.uniform(LR))
        self.state = self.opt.init_state()
        self.loss: Tensor | None = None
        self.error: BaseException | None = None  # a failure StepFunction could not catch (the backward's)

    def n_params(self) -> int:
        return sum(t.numel() for t in acc_backward.flatten(self.params).values())

    def compile_error(self) -> BaseException | None:
        """``StepFunction.error`` (the forward's compilation), or a failure of the compiled backward."""
        return self.fn.error or self.error

    def _loss_and_grads(self, flat: dict[str, Tensor]) -> tuple[Tensor, tuple[Tensor, ...]]:
        L, _, _, _, _ = self.fn(self.params, self.x, self.labels, T_P, LAMBDA_Q)
        return L, torch.autograd.grad(L, list(flat.values()))

    def __call__(self) -> None:
        flat = acc_backward.flatten(self.params)
        try:
            L, grads = self._loss_and_grads(flat)
        except Exception as exc:  # the compiled backward failed (compiled lazily, outside StepFunction)
            if not self.fn.compile or self.fn.error is not None:
                raise
            self.error, self.fn = exc, StepFunction(compile=False)
            L, grads = self._loss_and_grads(flat)
        new, self.state = self.opt.step(self.state, flat, dict(zip(flat, grads, strict=True)))
        self.params = _with_flat(self.params, new)
        self.loss = L.detach()


class _BaselineModel(nn.Module):
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


class _BaselineStep:
    """One ``torch.optim.Adam`` step of :class:`_BaselineModel`, ``torch.compile(model)`` when compiled;
    a compilation failure is kept in ``error`` and the step continues eagerly."""

    def __init__(self, cfg: BenchConfig, dtype: torch.dtype, device: str, compiled: bool) -> None:
        self.nhead = baseline_heads(cfg.H, cfg.d)
        self.ff = feedforward_width(cfg.d, cfg.K)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.model = _BaselineModel(cfg, self.nhead, self.ff).to(device=device, dtype=dtype)
        x, labels = _batch(cfg)
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


class _ReferenceStep:
    """One reference step: :func:`reference.backward.loss_and_gradients` and :class:`reference.optim.Adam`
    on the flat view (:func:`training.trainer.train_step` without the D1 check)."""

    def __init__(self, cfg: BenchConfig) -> None:
        self.cfg = cfg.layer()
        self.params = _reference_params(cfg)
        self.x, self.labels = _batch(cfg)
        self.opt = ref_optim.Adam(lr=ref_optim.LearningRates.uniform(LR))
        self.state = self.opt.init_state()
        self.loss = math.nan

    def __call__(self) -> None:
        cache, grads = ref_backward.loss_and_gradients(self.params, self.cfg, self.x, self.labels)
        new, self.state = self.opt.step(self.state, ref_flatten(self.params), grads)
        self.params = unflatten(new, like=self.params)
        self.loss = cache.L


# ==================================================================================================
# Section 1: the training step against nn.TransformerEncoderLayer
# ==================================================================================================


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _time_step(
    step: _OursStep | _BaselineStep, opts: BenchOptions, compiled: bool, error: Callable[[], BaseException | None]
) -> dict[str, Any]:
    """Time ``step``; with ``compiled``, from a fresh dynamo cache, so the first warm-up iteration holds
    this row's whole compilation (its excess over the median is the compile time)."""
    if compiled:
        torch._dynamo.reset()
    graphs = [compile_count()]
    timing = measure(
        step,
        warmup=WARMUP,
        repeats=opts.n_repeats,
        device=opts.device_name,
        after_warmup=lambda: graphs.append(compile_count()),
    )
    graphs.append(compile_count())
    exc = error()
    loss = float(step.loss) if step.loss is not None else math.nan
    return {
        "timing": timing.to_json(),
        "first_iteration_s": timing.warmup_s[0] if timing.warmup_s else None,
        "compile_s": timing.warmup_s[0] - timing.median_s if compiled and timing.warmup_s else None,
        "compile_error": None if exc is None else f"{type(exc).__name__}: {exc}",
        "fell_back_to_eager": exc is not None,
        "graphs_compiled": graphs[2] - graphs[0],
        "recompiles_while_timed": graphs[2] - graphs[1],
        "final_loss": loss if math.isfinite(loss) else None,
        "n_params": step.n_params(),
    }


def _prime(opts: BenchOptions) -> None:
    """One untimed eager step of ours and of the baseline per dtype, and one reference step, so that the
    process's one-time costs (kernel libraries' lazy initialisation, first allocations) fall on no row."""
    cfg = _digits(1)
    for dtype in (torch.float32, torch.float64):
        _OursStep(cfg, dtype, opts.device_name, compiled=False)()
        _BaselineStep(cfg, dtype, opts.device_name, compiled=False)()
    _ReferenceStep(cfg)()
    _sync(opts.device_name)


def training_step_section(opts: BenchOptions, status: Callable[[str], None]) -> list[dict[str, Any]]:
    """Section 1: per configuration, dtype and mode, our step and the baseline's, measured one after the
    other (so both see the same machine load), and the ratio of their medians."""
    rows: list[dict[str, Any]] = []
    modes: list[Mode] = ["eager", "compiled"] if opts.compiles else ["eager"]
    for cfg in opts.training_configs():
        for dtype in (torch.float32, torch.float64):
            for mode in modes:
                compiled = mode == "compiled"
                what = f"{cfg.label} {_dtype_name(dtype)} {mode}"
                status(f"training step: {what} (ours)")
                ours = _OursStep(cfg, dtype, opts.device_name, compiled)
                ours_row = _time_step(ours, opts, compiled, ours.compile_error)
                status(f"training step: {what} (nn.TransformerEncoderLayer)")
                base = _BaselineStep(cfg, dtype, opts.device_name, compiled)
                base_row = _time_step(base, opts, compiled, base.compile_error)
                base_row |= {"heads": base.nhead, "dim_feedforward": base.ff}
                rows.append(
                    {
                        "config": cfg.to_json(),
                        "label": cfg.label,
                        "dtype": _dtype_name(dtype),
                        "mode": mode,
                        "ours": ours_row,
                        "baseline": base_row,
                        "ratio_ours_over_baseline": ours_row["timing"]["median_s"] / base_row["timing"]["median_s"],
                    }
                )
    return rows


# ==================================================================================================
# Section 2: the growth check
# ==================================================================================================


def _random_probe(cfg: BenchConfig, rng: np.random.Generator) -> Probe:
    return Probe(x=rng.standard_normal((PROBE_SIZE, cfg.T, D_IN)), labels=rng.integers(0, N_CLASSES, size=PROBE_SIZE))


def _check_setup(cfg: BenchConfig, train_cfg: TrainConfig, device: str) -> tuple[Context, AcceleratedState, Probe]:
    """As :func:`training.trainer.run`: initial state, probe, calibration probes, ``calibrate``,
    ``Context``, then :meth:`accelerated.trainer.AcceleratedEngine.start` (float32 training). The probe
    is the host's: the check copies it to the device, as in training."""
    lc = cfg.layer()
    rng = np.random.default_rng(0)
    state = init_state(lc, train_cfg, rng=rng)
    probe = _random_probe(cfg, rng)
    calib = [_random_probe(cfg, rng) for _ in range(train_cfg.calibration_probes)]
    growth_cfg, _ = calibrate(state.params, train_cfg, calib)
    ctx = Context(layer_cfg=lc, train_cfg=train_cfg, growth_cfg=growth_cfg)
    es = AcceleratedEngine(dtype=torch.float32, device=device).start(ctx, state)
    return ctx, es, probe


def growth_check_section(opts: BenchOptions, status: Callable[[str], None]) -> list[dict[str, Any]]:
    """Section 2: one check on the run's initial state (one head, ``K_max`` prototypes), always from the
    same state (the check is a pure function of it), with the default trackers and with the fewest
    ``TrainConfig`` allows (1 iteration: 0 is rejected), invariants off (the timing) and on; beside it,
    the eager float32 step at the same size, for the share and the cost amortised over ``g`` steps."""
    rows: list[dict[str, Any]] = []
    default_trackers = TrainConfig(steps=1).tracker_steps
    for cfg in opts.growth_configs():
        status(f"growth check: {cfg.label}, the training step beside it")
        step = measure(
            _OursStep(cfg, torch.float32, opts.device_name, compiled=False),
            warmup=WARMUP,
            repeats=opts.n_repeats,
            device=opts.device_name,
        )
        for trackers in (default_trackers, 1):
            for invariants in (False, True):
                status(f"growth check: {cfg.label}, {trackers} tracker steps, invariants {invariants}")
                train_cfg = TrainConfig(
                    steps=1,
                    probe_size=PROBE_SIZE,
                    check_every=CHECK_EVERY,
                    tracker_steps=trackers,
                    check_invariants=invariants,
                )
                ctx, es, probe = _check_setup(cfg, train_cfg, opts.device_name)
                _, record, events, inv = growth_check(ctx, es, probe)
                check = measure(
                    functools.partial(growth_check, ctx, es, probe),
                    warmup=WARMUP,
                    repeats=opts.n_repeats,
                    device=opts.device_name,
                )
                rows.append(
                    {
                        "config": cfg.to_json(),
                        "label": cfg.label,
                        "tracker_steps": trackers,
                        "check_invariants": invariants,
                        "check": check.to_json(),
                        "step_float32_eager": step.to_json(),
                        "check_over_step": check.median_s / step.median_s,
                        "amortised_over_g": check.median_s / (CHECK_EVERY * step.median_s),
                        "g": CHECK_EVERY,
                        "events_per_check": [e.kind.value for e in events],
                        "invariants_per_check": len(inv),
                        "lam_max": record.lam_max,
                        "theta": ctx.growth_cfg.theta,
                    }
                )
    return rows


# ==================================================================================================
# Section 3: the reference; section 4: scaling; section 5: FLOP/s
# ==================================================================================================


def reference_section(
    opts: BenchOptions, training: list[dict[str, Any]], status: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Section 3: the reference's step at each configuration, and its median over the medians of
    section 1's steps (ours, every dtype and mode) at the same configuration."""
    rows: list[dict[str, Any]] = []
    for cfg in opts.reference_configs():
        status(f"reference step: {cfg.label}")
        ref = measure(_ReferenceStep(cfg), warmup=1, repeats=opts.reference_repeats, device="cpu")
        speedups = {
            f"{r['dtype']} {r['mode']}": {
                "ours_median_s": r["ours"]["timing"]["median_s"],
                "speedup": ref.median_s / r["ours"]["timing"]["median_s"],
                "fell_back_to_eager": r["ours"]["fell_back_to_eager"],
            }
            for r in training
            if r["label"] == cfg.label
        }
        rows.append({"config": cfg.to_json(), "label": cfg.label, "reference": ref.to_json(), "ours": speedups})
    return rows


def scaling_section(opts: BenchOptions, status: Callable[[str], None]) -> list[dict[str, Any]]:
    """Section 4: the eager float32 step at the base size and with each of ``T``, ``K``, ``H``, ``d``
    doubled alone (``d_k`` kept), beside the ratio :func:`forward_flops` predicts."""
    base = opts.scaling_base()
    variants = {
        "base": base,
        "T×2": replace(base, T=2 * base.T),
        "K×2": replace(base, K=2 * base.K),
        "H×2": replace(base, H=2 * base.H),
        "d×2": replace(base, d=2 * base.d),
    }
    rows: list[dict[str, Any]] = []
    base_time = math.nan
    for name, cfg in variants.items():
        status(f"scaling: {name}")
        t = measure(
            _OursStep(cfg, torch.float32, opts.device_name, compiled=False),
            warmup=WARMUP,
            repeats=opts.n_repeats,
            device=opts.device_name,
        )
        if name == "base":
            base_time = t.median_s
        rows.append(
            {
                "variant": name,
                "config": cfg.to_json(),
                "timing": t.to_json(),
                "ratio_to_base": t.median_s / base_time,
                "flop_ratio_to_base": forward_flops(cfg) / forward_flops(base),
            }
        )
    return rows


def matmul_peak(dtype: torch.dtype, opts: BenchOptions) -> dict[str, Any]:
    """The machine's reference rate: a square ``MATMUL_N`` ``torch.matmul`` (``2·N³`` operations),
    median over the repeats, in the run's thread setting."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(MATMUL_N, MATMUL_N, generator=gen, dtype=dtype).to(opts.device_name) for _ in range(2))
    t = measure(lambda: torch.matmul(a, b), warmup=WARMUP, repeats=opts.n_repeats, device=opts.device_name)
    return {"n": MATMUL_N, "timing": t.to_json(), "flop_per_s": 2.0 * MATMUL_N**3 / t.median_s}


def flops_section(opts: BenchOptions, training: list[dict[str, Any]], status: Callable[[str], None]) -> dict[str, Any]:
    """Section 5: the matmul rate per dtype and, for each of our steps in section 1, the achieved rate
    ``3·forward_flops / median`` as a fraction of it."""
    status("FLOP/s: matmul peak")
    peak = {_dtype_name(dt): matmul_peak(dt, opts) for dt in (torch.float32, torch.float64)}
    rows = []
    for r in training:
        c = r["config"]
        cfg = BenchConfig(c["name"], B=c["B"], T=c["T"], d=c["d"], d_k=c["d_k"], K=c["K"], H=c["H"])
        flops = 3 * forward_flops(cfg)
        rate = flops / r["ours"]["timing"]["median_s"]
        rows.append(
            {
                "label": r["label"],
                "dtype": r["dtype"],
                "mode": r["mode"],
                "fell_back_to_eager": r["ours"]["fell_back_to_eager"],
                "flop_per_step": flops,
                "flop_per_s": rate,
                "fraction_of_peak": rate / peak[r["dtype"]]["flop_per_s"],
            }
        )
    return {"peak": peak, "rows": rows}


# ==================================================================================================
# The run: settings, machine, sections, JSON
# ==================================================================================================


def _has_threadpoolctl() -> bool:
    return importlib.util.find_spec("threadpoolctl") is not None


@contextlib.contextmanager
def _thread_setting(opts: BenchOptions) -> Iterator[None]:
    """``torch.set_num_threads``, NumPy's BLAS limited alike (``threadpoolctl``, when installed), TF32 off
    on CUDA (float32 means float32); everything restored afterwards."""
    old_threads = torch.get_num_threads()
    old_tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.set_num_threads(opts.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with contextlib.ExitStack() as stack:
        if _has_threadpoolctl():
            stack.enter_context(importlib.import_module("threadpoolctl").threadpool_limits(limits=opts.threads))
        try:
            yield
        finally:
            torch.set_num_threads(old_threads)
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old_tf32


def machine(opts: BenchOptions) -> dict[str, Any]:
    """Where the numbers were taken: platform, CPUs, library versions, threads, the CUDA device."""
    affinity = getattr(os, "sched_getaffinity", None)
    cuda = torch.cuda.is_available()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
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


def _notes(report: dict[str, Any]) -> list[str]:
    notes = []
    seen = set()
    for r in report.get("training_step", ()):
        c, heads = r["config"], r["baseline"]["heads"]
        if heads != c["H"] and (c["H"], c["d"]) not in seen:
            seen.add((c["H"], c["d"]))
            notes.append(
                f"H={c['H']} does not divide d={c['d']}: nn.TransformerEncoderLayer gets the nearest divisor, "
                f"{heads} heads (* in table 1)"
            )
        for who in ("ours", "baseline"):
            row = r[who]
            if row["fell_back_to_eager"]:
                what = f"{r['label']} {r['dtype']} {who}"
                notes.append(f"{what}: compilation FAILED, timed eagerly: {row['compile_error']}")
            if r["mode"] == "compiled" and row["recompiles_while_timed"]:
                notes.append(f"{r['label']} {r['dtype']} {who}: {row['recompiles_while_timed']} recompiles while timed")
    if "growth_check" in report:
        notes.append(
            "growth check 'without trackers': TrainConfig rejects tracker_steps=0, so the fewest (1 iteration) "
            "stands in"
        )
    settings = report.get("settings", {})
    if settings.get("compile"):
        notes.append(
            "compile s = first warm-up iteration − median, from a fresh dynamo cache per row; inductor's on-disk "
            "caches are used as found (a rerun compiles faster)"
        )
    if settings and settings.get("numpy_blas_threads") is None:
        notes.append("threadpoolctl is not installed: NumPy's BLAS threads (the reference) were not limited")
    return notes


def run(opts: BenchOptions, console: Console) -> dict[str, Any]:
    """Every section in order. Each section's table is printed as it ends, and the report so far is
    written to ``opts.out`` (atomically, ``"complete": false`` until the last), so a long run that
    fails late keeps what it measured. Returns the report."""
    check_output_file(opts.out, "--out")  # before any measurement: minutes of timings are never lost to a bad path
    t0 = time.perf_counter()
    report: dict[str, Any] = {"schema": SCHEMA, "complete": False}
    target = [opts.out]  # where the report goes: --out, or a temporary file once writing there failed
    failure: list[OutputWriteError] = []

    def save() -> None:
        report["notes"] = _notes(report)
        report["wall_s"] = time.perf_counter() - t0
        if failure:
            write_json_atomic(target[0], report)
            return
        try:
            write_with_fallback("--out", opts.out, lambda p: write_json_atomic(p, report), file=True)
        except OutputWriteError as exc:
            if exc.fallback is None:
                raise
            failure.append(exc)
            target[0] = exc.fallback
            console.print(f"warning: {exc}", markup=False, highlight=False)

    with _thread_setting(opts), console.status("bench...") as st:

        def status(msg: str) -> None:
            st.update(f"bench: {msg}")

        report["machine"] = machine(opts)
        report["settings"] = opts.to_json()
        console.print(_header(report), markup=False)
        status("priming (one untimed step of each kind)")
        _prime(opts)
        sections: list[tuple[str, Callable[[], Any]]] = [
            ("training_step", lambda: training_step_section(opts, status)),
            ("growth_check", lambda: growth_check_section(opts, status)),
            ("reference_speedup", lambda: reference_section(opts, report["training_step"], status)),
            ("scaling", lambda: scaling_section(opts, status)),
            ("flops", lambda: flops_section(opts, report["training_step"], status)),
        ]
        for key, section in sections:
            report[key] = section()
            console.print(_TABLES[key](report))
            save()
    report["complete"] = True
    save()
    for note in report["notes"]:
        console.print(f"note: {note}", markup=False)
    console.print(f"wrote {target[0]} ({report['wall_s']:.1f} s)", markup=False)
    if failure:
        raise failure[0]
    return report


def _finite(obj: object) -> object:
    """``obj`` with every NaN or infinity replaced by ``None`` (JSON has neither); the measured numbers
    are finite, so a replacement shows up in the file as a null where a number belongs."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_json_atomic(path: Path, obj: object) -> None:
    """``obj`` as JSON (NaN/inf as null) to a temporary file beside ``path``, then ``os.replace``: a reader
    never sees half a report."""
    path = Path(path)
    text = json.dumps(_finite(obj), indent=1, allow_nan=False)
    write_atomic(path, (text + "\n").encode("utf-8"))


# ==================================================================================================
# Tables
# ==================================================================================================


def _ms(t: dict[str, Any]) -> str:
    def f(s: float) -> str:
        ms = 1e3 * s
        return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"

    return f"{f(t['median_s'])} ({f(t['min_s'])}–{f(t['max_s'])})"


def _compile_cell(row: dict[str, Any]) -> str:
    if row["fell_back_to_eager"]:
        return "[red]FAILED → eager[/red]"
    if row["compile_s"] is None:
        return "-"
    return f"{row['compile_s']:.1f}"


def _header(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    cuda = f" ({m['cuda_device']})" if m["cuda_device"] and m["device"] == "cuda" else ""
    return (
        f"torch {m['torch']} on {m['device']}{cuda}, {s['threads']} threads, {m['cpu_count']} CPUs, "
        f"{s['repeats']} repeats after {s['warmup']} warm-up, compile {'on' if s['compile'] else 'off'}"
    )


def _training_table(report: dict[str, Any]) -> Table:
    t = Table(
        title="1. Training step (forward + backward + Adam): ours vs nn.TransformerEncoderLayer, "
        "ms median (min–max); ratio = ours/baseline; compile s = ours / baseline"
    )
    for col in ("config", "B", "T", "d", "K", "H", "baseline heads", "ff", "dtype", "mode", "ours", "baseline"):
        t.add_column(col, overflow="fold")
    for col in ("ratio", "compile s"):
        t.add_column(col, overflow="fold")
    for r in report["training_step"]:
        c, o, b = r["config"], r["ours"], r["baseline"]
        t.add_row(
            c["name"],
            *(str(c[k]) for k in ("B", "T", "d", "K", "H")),
            str(b["heads"]) + ("*" if b["heads"] != c["H"] else ""),
            str(b["dim_feedforward"]),
            r["dtype"],
            r["mode"],
            _ms(o["timing"]),
            _ms(b["timing"]),
            f"{r['ratio_ours_over_baseline']:.2f}",
            f"{_compile_cell(o)} / {_compile_cell(b)}",
        )
    return t


def _growth_table(report: dict[str, Any]) -> Table:
    s = report["settings"]
    t = Table(title=f"2. Growth check (accelerated engine, one head, probe of {s['probe_size']}), ms median (min–max)")
    for col in ("config", "tracker steps", "invariants", "check", "step (f32 eager)", "check/step"):
        t.add_column(col, overflow="fold")
    t.add_column(f"amortised over g={s['check_every']}", overflow="fold")
    t.add_column("events", overflow="fold")
    for r in report["growth_check"]:
        t.add_row(
            r["config"]["name"],
            str(r["tracker_steps"]),
            "on" if r["check_invariants"] else "off",
            _ms(r["check"]),
            _ms(r["step_float32_eager"]),
            f"{r['check_over_step']:.1f}×",
            f"{100 * r['amortised_over_g']:.1f}%",
            ", ".join(r["events_per_check"]) or "-",
        )
    return t


def _reference_table(report: dict[str, Any]) -> Table:
    t = Table(title="3. Speed-up over the NumPy reference (reference time / ours)")
    for col in ("config", "reference ms", "ours", "ours ms", "speed-up"):
        t.add_column(col, overflow="fold")
    for r in report["reference_speedup"]:
        for i, (what, o) in enumerate(r["ours"].items()):
            t.add_row(
                r["label"] if i == 0 else "",
                _ms(r["reference"]) if i == 0 else "",
                what + (" [red](compile FAILED → eager)[/red]" if o["fell_back_to_eager"] else ""),
                f"{1e3 * o['ours_median_s']:.2f}",
                f"{o['speedup']:.1f}×",
            )
    return t


def _scaling_table(report: dict[str, Any]) -> Table:
    t = Table(title="4. Scaling of our eager float32 step, one dimension doubled at a time")
    for col in ("variant", "B", "T", "d", "d_k", "K", "H", "ms", "× base", "FLOP × base"):
        t.add_column(col, overflow="fold")
    for r in report["scaling"]:
        c = r["config"]
        t.add_row(
            r["variant"],
            *(str(c[k]) for k in ("B", "T", "d", "d_k", "K", "H")),
            _ms(r["timing"]),
            f"{r['ratio_to_base']:.2f}",
            f"{r['flop_ratio_to_base']:.2f}",
        )
    return t


def _flops_table(report: dict[str, Any]) -> Table:
    fl = report["flops"]
    peaks = ", ".join(f"{dt} {p['flop_per_s'] / 1e9:.1f} GFLOP/s" for dt, p in fl["peak"].items())
    t = Table(title=f"5. Achieved FLOP/s of our step (3 × analytic forward) vs matmul {MATMUL_N}²: {peaks}")
    for col in ("config", "dtype", "mode", "MFLOP/step", "GFLOP/s", "% of peak"):
        t.add_column(col, overflow="fold")
    for r in fl["rows"]:
        t.add_row(
            r["label"],
            r["dtype"],
            r["mode"] + (" [red](compile FAILED → eager)[/red]" if r["fell_back_to_eager"] else ""),
            f"{r['flop_per_step'] / 1e6:.1f}",
            f"{r['flop_per_s'] / 1e9:.2f}",
            f"{100 * r['fraction_of_peak']:.1f}%",
        )
    return t


_TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {
    "training_step": _training_table,
    "growth_check": _growth_table,
    "reference_speedup": _reference_table,
    "scaling": _scaling_table,
    "flops": _flops_table,
}


def print_tables(report: dict[str, Any], console: Console) -> None:
    """The header line, one rich table per section present in ``report`` (times in ms: median
    (min–max)), and the notes."""
    console.print(_header(report), markup=False)
    for key, table in _TABLES.items():
        if key in report:
            console.print(table(report))
    for note in report.get("notes", ()):
        console.print(f"note: {note}", markup=False)


def run_cli(args: argparse.Namespace, console: Console) -> int:
    """The ``bench`` subcommand's body: options from ``args``, :func:`run`. A bad option is a ``ValueError``
    naming it (``ddcl_incrt.cli.main`` reports it on stderr with exit code 2)."""
    try:
        opts = BenchOptions.from_args(args)
    except ValueError as exc:  # BenchOptions names its field; the command line knows it as --field
        raise ValueError(f"--{exc}") from exc
    run(opts, console)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ddcl_incrt.bench [options]``: the same as ``ddcl-incrt bench [options]``."""
    from ddcl_incrt.cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "CHECK_EVERY",
    "D_IN",
    "LAMBDA_Q",
    "LARGE",
    "LR",
    "MATMUL_N",
    "N_CLASSES",
    "PROBE_SIZE",
    "SCHEMA",
    "T_P",
    "WARMUP",
    "BenchConfig",
    "BenchOptions",
    "Mode",
    "Timing",
    "baseline_heads",
    "feedforward_width",
    "flops_section",
    "forward_flops",
    "growth_check_section",
    "machine",
    "main",
    "matmul_peak",
    "measure",
    "print_tables",
    "reference_section",
    "run",
    "run_cli",
    "scaling_section",
    "training_step_section",
    "write_json_atomic",
]
