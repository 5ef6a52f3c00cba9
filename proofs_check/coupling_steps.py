"""Symbolic steps for the coupling claims (SPEC §4): the R1(a) orthogonal-subspace lemma.

The same pattern as the other step modules: tiny symbolic sizes, equality as ``is_zero(lhs − rhs)``,
signs certified by sympy's assumptions, then a seeded random float64 point compared with
``reference`` (:mod:`reference.coupling_statistics`) within the VALUE row.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import sympy as sp

from proofs_check.core import Step, StepChecks, StepOutcome, as_f64, collect_steps, step, step_rng, symbol_matrix
from reference import coupling_statistics as ref_cs

Sym: TypeAlias = Any


def _sq(v: Sym) -> Sym:
    return sum((v[i] ** 2 for i in range(v.rows)), sp.Integer(0))


def _centroids(Z: Sym, Q: Sym) -> Sym:
    """``ZᵀQN⁻¹`` column by column."""
    n_j = [sum((Q[t, j] for t in range(Q.rows)), sp.Integer(0)) for j in range(Q.cols)]
    M = Z.T * Q
    return sp.Matrix(M.rows, M.cols, lambda i, j: M[i, j] / n_j[j])


@step(
    "R1.1",
    checks=(
        "reference.coupling_statistics.fixed_assignment_centroids",
        "reference.coupling_statistics.squared_pair_distances",
    ),
)
def step_r1_1() -> StepOutcome:
    """With a fixed assignment Q the centroids P(Z) = ZᵀQN⁻¹ are linear in the tokens, and
    ‖Δp(Y+U)‖² − ‖Δp(Y)‖² − ‖Δp(U)‖² = 2cᵀYUᵀc (c = QN⁻¹(e_j − e_k)); so when every row of Y is orthogonal
    to every row of U the squared distance of every prototype pair splits, and adding U never decreases it.
    """
    c = StepChecks()
    n, d = 3, 2
    # general tokens and an arbitrary combination c: the residual of the split is exactly the cross term
    Y, U = symbol_matrix("y", n, d), symbol_matrix("u", n, d)
    cv = symbol_matrix("c", n, 1)
    a, b = Y.T * cv, U.T * cv
    cross = 2 * (cv.T * Y * U.T * cv)[0, 0]
    c.zero("‖a + b‖² − ‖a‖² − ‖b‖² = 2cᵀYUᵀc (a = Yᵀc, b = Uᵀc)", _sq(a + b) - _sq(a) - _sq(b) - cross)
    # centroids are linear: P(Y + U) = P(Y) + P(U) for a fixed Q with positive entries (row sums play no
    # part in the lemma: only every column's mass n_j > 0, so that every centroid exists)
    Q = symbol_matrix("q", n, 2, positive=True)
    lin = _centroids(Y + U, Q) - _centroids(Y, Q) - _centroids(U, Q)
    c.sym("P(Y + U) = P(Y) + P(U)", all(sp.simplify(x) == 0 for x in lin))
    # orthogonal rows: Y along b_V = (cos φ, sin φ), U along b_W = (−sin φ, cos φ), so YUᵀ = 0
    phi = sp.Symbol("phi", real=True)
    s_y, s_u = symbol_matrix("s", n, 1), symbol_matrix("r", n, 1)
    Yo = s_y * sp.Matrix([[sp.cos(phi), sp.sin(phi)]])
    Uo = s_u * sp.Matrix([[-sp.sin(phi), sp.cos(phi)]])
    c.sym("YUᵀ = 0 for the orthogonal parametrisation", all(sp.simplify(x) == 0 for x in Yo * Uo.T))

    def delta(Z: Sym) -> Sym:
        P = _centroids(Z, Q)
        return P[:, 0] - P[:, 1]

    split = _sq(delta(Yo + Uo)) - _sq(delta(Yo)) - _sq(delta(Uo))
    c.zero("‖Δp(Y+U)‖² = ‖Δp(Y)‖² + ‖Δp(U)‖² when YUᵀ = 0", sp.trigsimp(sp.together(split)))
    gain = _sq(delta(Uo))
    c.sym(
        "the gain ‖Δp(U)‖² is a sum of squares of real terms (≥ 0)",
        all((term**2).is_nonnegative is True for term in delta(Uo)),
    )
    del gain

    rng = step_rng("R1.1")
    # the symbolic centroids and squared pair distance at a random point against the reference's
    Yv, Qv = as_f64(rng.standard_normal((n, d))), as_f64(rng.uniform(0.1, 1.0, size=(n, 2)))
    point = {Y[t, i]: float(Yv[t, i]) for t in range(n) for i in range(d)}
    point |= {Q[t, j]: float(Qv[t, j]) for t in range(n) for j in range(2)}
    P_sym = _centroids(Y, Q)
    c.close(
        "P = YᵀQN⁻¹ vs reference.fixed_assignment_centroids",
        as_f64(P_sym.xreplace(point).evalf()),
        ref_cs.fixed_assignment_centroids(Yv, Qv),
    )
    Pv = ref_cs.fixed_assignment_centroids(Yv, Qv)
    c.close(
        "‖p_0 − p_1‖² vs reference.squared_pair_distances",
        np.array([float(_sq(P_sym[:, 0] - P_sym[:, 1]).xreplace(point))]),
        ref_cs.squared_pair_distances(Pv),
    )
    n_, d_, K = 7, 5, 3
    B = np.linalg.qr(rng.standard_normal((d_, d_)))[0]
    Yn = as_f64(rng.standard_normal((n_, 3)) @ B[:, :3].T)
    Un = as_f64(rng.standard_normal((n_, 2)) @ B[:, 3:].T)
    Qn = as_f64(rng.dirichlet(np.ones(K), size=n_))
    dist = ref_cs.squared_pair_distances
    cen = ref_cs.fixed_assignment_centroids
    lhs = dist(cen(as_f64(Yn + Un), Qn))
    rhs = dist(cen(Yn, Qn)) + dist(cen(Un, Qn))
    c.close("reference: split of every squared pair distance", lhs, rhs)
    c.close("reference: centroids are linear", cen(as_f64(Yn + Un), Qn), cen(Yn, Qn) + cen(Un, Qn))
    w = as_f64(Qn.mean(axis=0))
    before, after = (
        ref_cs.prototype_separation(cen(Yn, Qn), w),
        ref_cs.prototype_separation(cen(as_f64(Yn + Un), Qn), w),
    )
    if before[0] is None or after[0] is None or before[1] is None or after[1] is None:
        raise RuntimeError("R1.1: K = 3 prototypes always have a separation")
    scale = float(max(before[0], after[0]))
    c.at_most("reference: S does not decrease", before[0], after[0], scale=scale)
    c.at_most("reference: S_min does not decrease", before[1], after[1], scale=scale)
    return c.outcome()


STEPS: tuple[Step, ...] = collect_steps(globals())

__all__ = ["STEPS", "Sym", "step_r1_1"]
