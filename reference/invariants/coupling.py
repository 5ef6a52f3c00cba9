"""The R1(a) lemma (SPEC §4, claim R1): orthogonal head subspaces split squared prototype distances.

Statement. Let the tokens be ``Y + U`` where every row of ``Y`` is orthogonal to every row of ``U``
(``Y Uᵀ = 0``: the new head writes into a subspace orthogonal to everything the tokens held before,
e.g. ``range(W_O^hᵀ)`` orthogonal to the previous heads' ranges and to the input), and fix a
row-stochastic assignment ``Q`` whose columns all carry mass. With the fixed-assignment centroids
``P(Z) = ZᵀQN⁻¹`` (:func:`reference.coupling_statistics.fixed_assignment_centroids`), for every pair
``j < k``::

    ‖p_j(Y + U) − p_k(Y + U)‖² = ‖p_j(Y) − p_k(Y)‖² + ‖p_j(U) − p_k(U)‖²  ≥  ‖p_j(Y) − p_k(Y)‖².

Proof. ``P`` is linear in the tokens, so ``p_j(Y + U) − p_k(Y + U) = a + b`` with ``a = Yᵀc`` and
``b = Uᵀc`` (``c = Q N⁻¹(e_j − e_k)``); ``aᵀb = cᵀ Y Uᵀ c = 0``, so Pythagoras gives the split, and
``‖b‖² ≥ 0`` the inequality (step R1.1 in proofs_check). Adding a head's orthogonal subspace can only
increase every pairwise separation of a fixed assignment, hence also the mass-weighted separation
``S`` and ``S_min`` of :mod:`reference.coupling_statistics`.

In floats: each squared distance is a sum of ``d`` squares of differences of centroids, each centroid
a ``Q``-weighted sum of ``n`` tokens divided by ``n_j``; the residual of the split is bounded by
``accumulation_bound(m, scale)`` with ``m = n + d + 8`` and ``scale`` four times the largest squared
centroid-difference bound ``(‖Δ‖_∞-sum)²`` of the three terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference._arrays import F64Array, check_array, f64, finite_result
from reference.coupling_statistics import fixed_assignment_centroids, squared_pair_distances
from reference.invariants.ddcl import q_row_stochastic
from reference.invariants.result import InvariantResult, finish
from reference.tolerances import accumulation_bound, gamma


def rows_orthogonal(*, Y: F64Array, U: F64Array, **_: Any) -> bool:
    """R1(a): every row of ``Y`` orthogonal to every row of ``U`` (``Y Uᵀ = 0``), to rounding:
    ``|y_sᵀu_t| ≤ γ_d ‖y_s‖‖u_t‖`` for all pairs."""
    Y_ = check_array("Y", Y, 2)
    U_ = check_array("U", U, 2)
    if Y_.shape != U_.shape:
        return False
    G = np.abs(Y_ @ U_.T)
    bound = 2.0 * gamma(Y_.shape[1]) * np.outer(np.linalg.norm(Y_, axis=1), np.linalg.norm(U_, axis=1))
    return bool(np.all(bound >= G))


def assignment_has_mass(*, Q: F64Array, **_: Any) -> bool:
    """R1(a): ``Q`` is row-stochastic and every column carries positive mass (every centroid exists)."""
    return q_row_stochastic(Q=Q) and bool(np.all(check_array("Q", Q, 2).sum(axis=0) > 0.0))


@finite_result("Y", "U", "Q")
def r1a_orthogonal_split(
    *, Y: F64Array, U: F64Array, Q: F64Array, raise_on_violation: bool = False
) -> tuple[InvariantResult, ...]:
    """The lemma's two conclusions on ``(Y, U, Q)``: the split of every squared pairwise centroid
    distance (an identity, checked to its rounding bound) and its consequence, no pair's squared
    distance decreased by adding ``U``."""
    Y_ = check_array("Y", Y, 2)
    U_ = check_array("U", U, 2)
    if U_.shape != Y_.shape:
        raise ValueError(f"U: expected the shape of Y {Y_.shape}, got {U_.shape}")
    d_Y = squared_pair_distances(fixed_assignment_centroids(Y_, Q))
    d_U = squared_pair_distances(fixed_assignment_centroids(U_, Q))
    d_YU = squared_pair_distances(fixed_assignment_centroids(Y_ + U_, Q))
    n, d = Y_.shape
    # |p_j(Z)| ≤ max|Z| entrywise (a weighted mean), so |p_j − p_k| ≤ 2 max|Z| and a squared distance
    # is at most d (2 max|Z|)²; the three compared terms share the scale of the largest.
    big = 2.0 * f64(max(np.abs(Y_).max(), np.abs(U_).max(), np.abs(Y_ + U_).max()))
    bound = accumulation_bound(n + d + 8, 4.0 * d * big * big)
    split = f64(np.max(np.abs(d_YU - d_Y - d_U), initial=0.0))
    decrease = f64(np.max(d_Y - d_YU, initial=-np.inf)) if d_Y.size else 0.0
    return finish(
        (
            InvariantResult("R1", "split: ‖Δp(Y+U)‖² − ‖Δp(Y)‖² − ‖Δp(U)‖² = 0 for every pair", split, bound),
            InvariantResult("R1", "monotone: ‖Δp(Y)‖² − ‖Δp(Y+U)‖² ≤ 0 for every pair", max(decrease, 0.0), bound),
        ),
        raise_on_violation,
    )


__all__ = ["assignment_has_mass", "r1a_orthogonal_split", "rows_orthogonal"]
