"""The float64 floor of a growth check: only the matrix products and softmaxes a check must make on its
probe, timed alone, beside the budget that "≤ 1% of training amortised over g steps" leaves; prints a
table.

    .venv/bin/python scripts/check_floor.py [--threads 1] [--repeats 40]

The products (one head, as on a run's initial state): the layer input ``x W_in + E_pos``, ``C = XᵀX``,
the heads' ``q, k, v`` projection, the scores and ``A v`` per sequence, the output projection, ``Cov Y``
(D4's collapse temperature), the distances' ``Y P`` and ``QᵀQ`` (the coupling statistics); the softmaxes
of the attention (B×T×T) and of the assignments (n×K). Everything else a check does (``eigh`` of a d×d
matrix, the trackers, the decisions in Python, copies) comes on top, so a check in float64 cannot cost
less than this. The budget: ``g × step × 1%`` with the eager float32 step of the bench
(:class:`ddcl_incrt.bench.steps.OursStep`) at the same configuration, timed in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from ddcl_incrt.bench.configs import CHECK_EVERY, D_IN, PROBE_SIZE, BenchConfig, digits, mid
from ddcl_incrt.bench.evidence import cpu_info
from ddcl_incrt.bench.steps import OursStep


def median_s(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def floor_ops(cfg: BenchConfig) -> tuple[Callable[[], object], Callable[[], object], int]:
    """(the products, the softmaxes, the products' FLOP count) at ``cfg``'s sizes with one head (a run's
    initial layer, on which the bench times its check), in float64."""
    B, T, d, dk, K = PROBE_SIZE, cfg.T, cfg.d, cfg.d_k, cfg.K
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    x, W_in, E = rand(B, T, D_IN), rand(D_IN, d), rand(T, d)
    W_qkv, W_O, P = rand(d, 3 * dk), rand(dk, d), rand(d, K)
    S, D = rand(B, T, T), rand(B * T, K)

    def products() -> object:
        X = (x @ W_in + E).reshape(-1, d)
        C = X.T @ X
        q, k, v = (X @ W_qkv).reshape(B, T, 3, dk).unbind(2)
        Y = X + ((q @ k.transpose(1, 2)) @ v).reshape(-1, dk) @ W_O
        YP = Y @ P
        return C, Y.T @ Y, YP.T @ YP

    def softmaxes() -> object:
        return torch.softmax(S, dim=-1), torch.softmax(D, dim=-1)

    n = B * T
    per_token = D_IN * d + d * d + d * 3 * dk + 2 * T * dk + dk * d + d * d + d * K + K * K
    flops = 2 * n * per_token
    return products, softmaxes, flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_info().get('model')}, torch {torch.__version__}, {args.threads} thread(s), probe of {PROBE_SIZE}")
    print(
        "| config (of the step; the check's layer has one head) | MFLOP | products ms | GFLOP/s | softmaxes ms "
        "| floor ms | eager float32 step ms | 1% of g steps ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for cfg in (digits(1), digits(4), mid(1), mid(4)):
        products, softmaxes, flops = floor_ops(cfg)
        t_p, t_s = median_s(products, args.repeats), median_s(softmaxes, args.repeats)
        step = median_s(OursStep(cfg, torch.float32, "cpu", compiled=False), args.repeats)
        print(
            f"| {cfg.label} | {flops / 1e6:.0f} | {1e3 * t_p:.2f} | {flops / t_p / 1e9:.1f} | {1e3 * t_s:.2f} | "
            f"{1e3 * (t_p + t_s):.2f} | {1e3 * step:.2f} | {1e3 * CHECK_EVERY * step / 100:.2f} |"
        )


if __name__ == "__main__":
    main()
