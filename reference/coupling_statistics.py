"""The statistics of the coupling claims R1, R2, R4 (SPEC §4), defined once, on arrays.

These are *measurements*, not invariants: the claims they serve are labelled ``paper-claim`` or
``measured`` and nothing here can fail a run. Definitions (docs/theory.md, "Coupling statistics"):

* **Prototype separation** (R1, R4) of the active prototypes ``p_j`` (columns of ``P``) with masses
  ``w_j = n_j/n`` on the probe: ``S = Σ_{j<k} w_j w_k ‖p_j − p_k‖ / Σ_{j<k} w_j w_k`` (mass-weighted
  mean pairwise distance: idle prototypes count little) and ``S_min = min_{j<k} ‖p_j − p_k‖``. With
  one prototype there is no pair and both are undefined (``None``).
* **Variance-gradient force** (R4): ``‖∇_P V‖_F`` with ``Q`` held fixed, ``∇_P V = 2PΣ_q`` (claim D2,
  step D2.4), on the probe's assignments.
* **Attention entropy** (R2) of a head: the mean over query rows of ``−Σ_s a_ts log a_ts`` on the
  probe (0 for a one-hot row, ``log T`` for a uniform one: low is local/hard, high global/soft).
* **Temperature divergence** (R2): ``Var(log τ_h)`` over the active heads (population variance).
* **Pearson correlation** of two series of equal length ≥ 2 (``None`` when either is constant).

:func:`fixed_assignment_centroids` and :func:`squared_pair_distances` are the objects of the R1(a)
lemma (``reference.invariants.coupling``): with a fixed assignment, the centroids' squared pairwise
distances split over mutually orthogonal subspaces of the tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import Float64

from reference._arrays import arr, check_array, check_dim, f64
from reference.ddcl import grad_variance_fixed_Q


def prototype_separation(
    P: Float64[np.ndarray, "d K"], mass: Float64[np.ndarray, " K"]
) -> tuple[float | None, float | None]:
    """``(S, S_min)``: the mass-weighted mean pairwise distance of the prototypes and the smallest one."""
    P_ = check_array("P", P, 2)
    w = check_array("mass", mass, 1)
    check_dim("mass", w, 0, P_.shape[1], "P's prototype count K")
    if np.any(w < 0.0):
        raise ValueError("mass: prototype masses must be >= 0")
    K = P_.shape[1]
    if K < 2:
        return None, None
    diff = P_[:, :, None] - P_[:, None, :]
    dist = np.sqrt(np.sum(diff * diff, axis=0))
    iu = np.triu_indices(K, 1)
    pair_w = (w[:, None] * w[None, :])[iu]
    d = dist[iu]
    total = f64(pair_w.sum())
    S = f64(np.sum(pair_w * d) / total) if total > 0.0 else f64(d.mean())
    return S, f64(d.min())


def fixed_assignment_centroids(
    Y: Float64[np.ndarray, "n d"], Q: Float64[np.ndarray, "n K"]
) -> Float64[np.ndarray, "d K"]:
    """``P = YᵀQ N⁻¹``, ``N = diag(n_j)``, ``n_j = Σ_t q_tj``: the prototypes that minimise ``L_q`` for a
    fixed assignment ``Q`` (each ``p_j`` the ``q_·j``-weighted mean of the tokens; claim R1(a)).
    Every column sum must be positive (a prototype with no mass has no centroid)."""
    Y_ = check_array("Y", Y, 2)
    Q_ = check_array("Q", Q, 2)
    check_dim("Q", Q_, 0, Y_.shape[0], "Y's token count n")
    n_j = Q_.sum(axis=0)
    if not np.all(n_j > 0.0):
        raise ValueError(f"Q: every column must carry positive mass (column sums {n_j.tolist()})")
    return arr((Y_.T @ Q_) / n_j[None, :])


def squared_pair_distances(P: Float64[np.ndarray, "d K"]) -> Float64[np.ndarray, " pairs"]:
    """``‖p_j − p_k‖²`` for ``j < k`` in ``numpy.triu_indices`` order (the terms of claim R1(a))."""
    P_ = check_array("P", P, 2)
    iu = np.triu_indices(P_.shape[1], 1)
    diff = P_[:, iu[0]] - P_[:, iu[1]]
    return arr(np.sum(diff * diff, axis=0))


def variance_gradient_norm(P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"]) -> float:
    """``‖∇_P V‖_F`` with ``Q`` fixed (``2PΣ_q``, :func:`reference.ddcl.grad_variance_fixed_Q`)."""
    return f64(np.linalg.norm(grad_variance_fixed_Q(P, Q)))


def attention_entropy(A: Float64[np.ndarray, "B T T"]) -> float:
    """Mean over rows of ``−Σ a log a`` (``0·log 0 = 0``) of a stack of row-stochastic attention matrices."""
    A_ = check_array("A", A, 3)
    logs = np.log(np.where(A_ > 0.0, A_, 1.0))
    return f64(-np.sum(A_ * logs, axis=-1).mean())


def log_temperature_variance(tau: Mapping[int, float]) -> float | None:
    """``Var(log τ_h)`` over the heads (population variance); ``None`` for no head."""
    if not tau:
        return None
    vals = [math.log(check_positive_tau(h, t)) for h, t in tau.items()]
    return f64(np.var(np.asarray(vals)))


def check_positive_tau(head_id: int, tau: float) -> float:
    if not (isinstance(tau, float | int) and tau > 0.0 and math.isfinite(tau)):
        raise ValueError(f"tau[{head_id}]: a head temperature must be a finite positive number, got {tau!r}")
    return float(tau)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """The Pearson correlation of two equal-length series (``None`` if shorter than 2 or constant)."""
    if len(x) != len(y):
        raise ValueError(f"y: length {len(y)} differs from x's {len(x)}")
    if len(x) < 2:
        return None
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("x, y: the series must be finite")
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(f64(a @ a) * f64(b @ b))
    return None if den == 0.0 else f64(a @ b / den)


__all__ = [
    "attention_entropy",
    "check_positive_tau",
    "fixed_assignment_centroids",
    "log_temperature_variance",
    "pearson",
    "prototype_separation",
    "squared_pair_distances",
    "variance_gradient_norm",
]
