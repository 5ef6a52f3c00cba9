"""Time one reference training step (forward + hand-derived backward) at a few sizes; prints a table.

    .venv/bin/python scripts/bench_reference.py [--repeats 3]

The reference is slow by design (plain NumPy, float64, every intermediate kept), not by accident: its
contractions run in a sensible order (``(X M) Xᵀ``, not a three-operand ``einsum`` without path
optimisation), so differential tests of whole trajectories at realistic sizes stay affordable.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reference.backward import loss_and_gradients
from reference.model import LayerConfig, init_params
from reference.surgery import add_head

SIZES = (  # (name, B, T, d, d_k, K, heads)
    ("digits", 64, 8, 16, 8, 16, 1),
    ("digits, 11 heads", 64, 8, 16, 8, 16, 11),
    ("mid-size", 32, 64, 64, 16, 32, 4),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'size':18} {'B':>4} {'T':>4} {'d':>4} {'K':>4} {'heads':>5} {'s/step (best)':>14}")
    for name, B, T, d, d_k, K, heads in SIZES:
        cfg = LayerConfig(d_in=8, d=d, d_k=d_k, d_v=d_k, seq_len=T, K_max=K, n_classes=10, T_P=1.0, lambda_q=0.1)
        rng = np.random.default_rng(0)
        params = init_params(cfg, rng=rng)
        for _ in range(heads - 1):
            params, _ = add_head(params, cfg, rng=rng)
        x = rng.standard_normal((B, T, 8))
        labels = rng.integers(0, 10, size=B)
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            loss_and_gradients(params, cfg, x, labels)
            best = min(best, time.perf_counter() - t0)
        print(f"{name:18} {B:>4} {T:>4} {d:>4} {K:>4} {heads:>5} {best:>14.3f}")


if __name__ == "__main__":
    main()
