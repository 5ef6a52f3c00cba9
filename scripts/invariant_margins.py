"""How close do the DDCL invariants come to their rounding bounds? Prints value/bound per claim.

A reproducible version of the sweep quoted in docs/tolerances.md: random inputs over scales 1e-70…1e74
and temperatures 1e-6…1e6 with K ∈ {1, 2, 4}; for each invariant check the largest ratio value/bound
(< 1 means it holds; how far below 1 says how pessimistic the a-priori bound is), and how many checks
had an infinite (uncertifiable) bound.

    .venv/bin/python scripts/invariant_margins.py
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from rich.console import Console
from rich.table import Table

from reference import ddcl
from reference.invariants import ddcl as inv


def main() -> None:
    rng = np.random.default_rng(1)
    worst: dict[str, float] = defaultdict(float)
    uncertified: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    scales = (1e-70, 1e-3, 1.0, 1e3, 1e70, 1e74)
    temps = (1e-6, 1e-3, 0.5, 1.0, 1e3, 1e6)
    for scale in scales:
        for T in temps:
            for K in (1, 2, 4):
                Y = rng.normal(size=(9, 3)) * scale
                P = rng.normal(size=(3, K)) * scale
                Q = ddcl.assignments(Y, P, T)
                results = [
                    *inv.d1_decomposition(Y=Y, P=P, Q=Q),
                    *inv.d2_free_energy_gradients(Y=Y, P=P, T_P=T),
                    *inv.d3_lyapunov(Y=Y, P=P, T_P=T, eta=0.4),
                    *inv.d4_anti_collapse(Y=Y, K=K, T_P=T),
                    *inv.d6_dual_vanilla(Y_b=Y[:5], W=rng.normal(size=(5, K)), b=rng.normal(size=K), grad_P=P, eta=0.1),
                ]
                if K > 1 and inv.prototype_not_sole_owner(Y=Y, P=P, T_P=T, j=1):
                    results += inv.d5_prototype_pruning(Y=Y, P=P, T_P=T, j=1)
                for r in results:
                    key = f"{r.claim_id} {r.check}"
                    total[key] += 1
                    if not math.isfinite(r.bound):
                        uncertified[key] += 1
                    elif r.bound > 0:
                        worst[key] = max(worst[key], r.value / r.bound)
                    elif r.value > 0:
                        worst[key] = math.inf
    table = Table(title="DDCL invariants: worst value/bound over the sweep (holds iff < 1)")
    for col in ("check", "runs", "worst value/bound", "infinite bound"):
        table.add_column(col)
    for key in sorted(total):
        table.add_row(key, str(total[key]), f"{worst[key]:.3g}", str(uncertified[key]))
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
