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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import Float64

from reference._arrays import check_array, check_dim, f64
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
    "log_temperature_variance",
    "pearson",
    "prototype_separation",
    "variance_gradient_norm",
]
