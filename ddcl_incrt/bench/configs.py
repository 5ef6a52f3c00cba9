"""The bench's sizes and settings: the configurations (:class:`BenchConfig`), a run's options
(:class:`BenchOptions`), the baseline's shape (:func:`feedforward_width`, :func:`baseline_heads`) and the
analytic FLOP count (:func:`forward_flops`)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ddcl_incrt.bench.evidence import config_flag, has_threadpoolctl
from reference.model import LayerConfig

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
PROFILE_TOP = 12  # operators listed per profiled step

Mode = Literal["eager", "compiled"]


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

    @staticmethod
    def from_json(c: dict[str, Any]) -> BenchConfig:
        """The configuration :meth:`to_json` wrote."""
        return BenchConfig(c["name"], B=c["B"], T=c["T"], d=c["d"], d_k=c["d_k"], K=c["K"], H=c["H"])


def digits(H: int) -> BenchConfig:
    """The digits size with ``H`` heads."""
    return BenchConfig("digits", B=64, T=8, d=16, d_k=8, K=16, H=H)


def mid(H: int) -> BenchConfig:
    """The mid size with ``H`` heads."""
    return BenchConfig("mid-size", B=32, T=64, d=64, d_k=16, K=32, H=H)


LARGE = BenchConfig("large", B=64, T=128, d=256, d_k=32, K=64, H=8)


@dataclass(frozen=True)
class BenchOptions:
    """A run's settings. ``repeats=None``: 3 with ``quick``, else 20; ``device=None``: CUDA when available.

    ``quick`` is the smoke test: one configuration per section (the digits size), 3 repeats, no
    compilation. ``large`` adds :data:`LARGE` to the training-step section (always on CUDA).
    ``profile`` replaces the timed sections by one profiled step of ours and of the baseline per
    configuration (:mod:`ddcl_incrt.bench.profile`); there ``quick`` keeps the digits size only, and the
    steps are compiled unless ``compile`` is off."""

    quick: bool = False
    compile: bool = True
    large: bool = False
    repeats: int | None = None
    threads: int = 2
    out: Path = Path("bench.json")
    device: str | None = None
    profile: bool = False

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
            profile=getattr(args, "profile", False),
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
        """Whether the timed sections compile (never with ``quick``)."""
        return self.compile and not self.quick

    @property
    def profile_mode(self) -> Mode:
        """The mode of the profiled steps: compiled unless ``compile`` is off (``quick`` keeps it)."""
        return "compiled" if self.compile else "eager"

    @property
    def device_name(self) -> str:
        if self.device is not None:
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def training_configs(self) -> list[BenchConfig]:
        if self.quick:
            return [digits(11)]
        configs = [digits(1), digits(4), digits(11), mid(4), mid(8)]
        if self.large or self.device_name == "cuda":
            configs.append(LARGE)
        return configs

    def growth_configs(self) -> list[BenchConfig]:
        return [digits(1)] if self.quick else [digits(1), mid(1)]

    def reference_configs(self) -> list[BenchConfig]:
        return [digits(11)] if self.quick else [digits(11), mid(4)]

    def scaling_base(self) -> BenchConfig:
        return digits(4) if self.quick else mid(4)

    def profile_configs(self) -> list[BenchConfig]:
        return [digits(4)] if self.quick else [digits(4), mid(4)]

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "compile": self.profile_mode == "compiled" if self.profile else self.compiles,
            "large": self.large,
            "profile": self.profile,
            "repeats": self.n_repeats,
            "warmup": WARMUP,
            "reference_repeats": self.reference_repeats,
            "threads": self.threads,
            "numpy_blas_threads": self.threads if has_threadpoolctl() else None,  # None: not limited
            "device": self.device_name,
            "lr": LR,
            "check_every": CHECK_EVERY,
            "probe_size": PROBE_SIZE,
            "matmul_n": MATMUL_N,
            # compile times are as found: inductor's on-disk caches (when on) shorten a recompilation
            "inductor_fx_graph_cache": config_flag("torch._inductor.config", "fx_graph_cache"),
            "aot_autograd_cache": config_flag("torch._functorch.config", "enable_autograd_cache"),
        }


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


__all__ = [
    "CHECK_EVERY",
    "D_IN",
    "LAMBDA_Q",
    "LARGE",
    "LR",
    "MATMUL_N",
    "N_CLASSES",
    "PROBE_SIZE",
    "PROFILE_TOP",
    "SCHEMA",
    "T_P",
    "WARMUP",
    "BenchConfig",
    "BenchOptions",
    "Mode",
    "baseline_heads",
    "digits",
    "feedforward_width",
    "forward_flops",
    "mid",
]
