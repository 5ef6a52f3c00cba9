"""The DDCL block (SPEC §2): distances, soft assignments, the losses and their gradients.

Notation is the paper's: tokens ``Y`` (n×d, rows ``y_t``), prototypes ``P`` (d×K, columns ``p_j``),
assignments ``Q`` (n×K, rows on the simplex), temperature ``T_P > 0`` (the paper's ``T``; we write
``T_P`` because ``T`` is the sequence length). Everything is float64 and pure.

Every loss here is a function of the distance matrix ``D`` (``D_tj = ‖y_t − p_j‖²``), so all gradients
go through one pull-back, :func:`pullback_distances`: if ``G = ∂L/∂D`` then
``∇_P L = 2(P diag(Gᵀ1) − YᵀG)`` and ``∇_Y L = 2(diag(G1) Y − G Pᵀ)``.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float64

from reference._arrays import (
    F64Array,
    arr,
    check_array,
    check_dim,
    check_index,
    check_overflow,
    check_positive,
    check_temperature,
    f64,
    finite_result,
)
from reference.tolerances import CheckKind, current_rounding_dtype, tolerance

# --------------------------------------------------------------------------------------------------
# Validation shared by the public functions
# --------------------------------------------------------------------------------------------------


def _check_tokens_prototypes(Y: object, P: object) -> tuple[F64Array, F64Array]:
    Y_ = check_array("Y", Y, 2)
    P_ = check_array("P", P, 2)
    check_dim("P", P_, 0, Y_.shape[1], "Y's width d")
    return Y_, P_


def check_assignments(Q: object, n: int, K: int) -> F64Array:
    """``Q`` must be n×K, non-negative, with rows summing to 1 (within the STOCHASTIC tolerance·K of the
    current rounding precision: float64, or a float32 port's in property mode,
    :func:`reference.tolerances.rounding_precision`)."""
    Q_ = check_array("Q", Q, 2)
    check_dim("Q", Q_, 0, n, "the number of tokens n")
    check_dim("Q", Q_, 1, K, "the number of prototypes K")
    if np.any(Q_ < 0.0):
        raise ValueError(f"Q: assignments must be >= 0, min entry is {f64(Q_.min())!r}")
    atol = tolerance(current_rounding_dtype(), CheckKind.STOCHASTIC).atol * max(K, 1)
    row_err = np.abs(Q_.sum(axis=1) - 1.0)
    if np.any(row_err > atol):
        t = int(np.argmax(row_err))
        raise ValueError(
            f"Q: rows must sum to 1 (row-stochastic, tol {atol:.1e}); row {t} sums to {f64(Q_[t].sum())!r}"
        )
    return Q_


# --------------------------------------------------------------------------------------------------
# Distances and assignments
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P")
def squared_distances(Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"]) -> Float64[np.ndarray, "n K"]:
    """``D_tj = ‖y_t − p_j‖²``, computed from the differences (no ``‖y‖² + ‖p‖² − 2yᵀp`` cancellation)."""
    Y_, P_ = _check_tokens_prototypes(Y, P)
    diff = Y_[:, :, None] - P_[None, :, :]  # n×d×K
    return arr(np.einsum("tdk,tdk->tk", diff, diff))


@finite_result("D", "T_P")
def soft_assignments(D: Float64[np.ndarray, "n K"], T_P: float) -> Float64[np.ndarray, "n K"]:
    """``q_t = softmax(−D_t / T_P)``, stabilised by subtracting each row's minimum distance."""
    D_ = check_array("D", D, 2)
    if np.any(D_ < 0.0):
        raise ValueError(f"D: squared distances must be >= 0, min entry is {f64(D_.min())!r}")
    T = check_temperature("T_P", T_P)
    logits = -(D_ - D_.min(axis=1, keepdims=True)) / T  # <= 0, max exactly 0 per row
    E = np.exp(logits)
    return arr(E / E.sum(axis=1, keepdims=True))


@finite_result("Y", "P", "T_P")
def assignments(Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float) -> Float64[np.ndarray, "n K"]:
    """Soft assignments of tokens ``Y`` to prototypes ``P`` at temperature ``T_P``."""
    return soft_assignments(squared_distances(Y, P), T_P)


# --------------------------------------------------------------------------------------------------
# Losses (claims D1, D2)
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P")
def quantisation_loss(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"]
) -> float:
    """``L_q = (1/n) Σ_t Σ_j q_tj ‖y_t − p_j‖²`` for any row-stochastic ``Q`` (claim D1)."""
    D = squared_distances(Y, P)
    Q_ = check_assignments(Q, *D.shape)
    return f64(np.sum(Q_ * D) / D.shape[0])


@finite_result("Y", "P")
def ols_loss(Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"]) -> float:
    """``L_OLS = (1/n) Σ_t ‖y_t − P q_t‖²``: reconstruction error by the assignment-weighted mean."""
    Y_, P_ = _check_tokens_prototypes(Y, P)
    Q_ = check_assignments(Q, Y_.shape[0], P_.shape[1])
    R = Y_ - Q_ @ P_.T
    return f64(np.sum(R * R) / Y_.shape[0])


@finite_result("P")
def prototype_variance(P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"]) -> float:
    """``V = (1/n) Σ_t Σ_j q_tj ‖p_j − P q_t‖²`` (the assignment-weighted prototype variance, ≥ 0)."""
    P_ = check_array("P", P, 2)
    Q_ = check_array("Q", Q, 2)
    Q_ = check_assignments(Q_, Q_.shape[0], P_.shape[1])
    means = Q_ @ P_.T  # n×d, row t is P q_t
    diff = P_.T[None, :, :] - means[:, None, :]  # n×K×d
    return f64(np.einsum("tk,tkd,tkd->", Q_, diff, diff) / Q_.shape[0])


@finite_result("Y", "P", "T_P")
def free_energy(Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float) -> float:
    """``F = −(T_P/n) Σ_t log Σ_j exp(−D_tj / T_P)``, with a stabilised log-sum-exp."""
    D = squared_distances(Y, P)
    T = check_temperature("T_P", T_P)
    Dmin = D.min(axis=1)
    lse = np.log(np.exp(-(D - Dmin[:, None]) / T).sum(axis=1))  # in [0, log K]
    # F_t = Dmin_t − T·lse_t: the two terms are kept apart so T ≪ D does not swamp the small one.
    return f64(np.mean(Dmin) - T * np.mean(lse))


def mean_entropy(Q: Float64[np.ndarray, "n K"]) -> float:
    """``H̄ = (1/n) Σ_t H(q_t)``, natural log, with ``0 log 0 = 0``."""
    Q_ = check_array("Q", Q, 2)
    Q_ = check_assignments(Q_, *Q_.shape)
    logs = np.log(np.where(Q_ > 0.0, Q_, 1.0))
    return f64(-np.sum(Q_ * logs) / Q_.shape[0])


def assignment_covariance(Q: Float64[np.ndarray, "n K"]) -> Float64[np.ndarray, "K K"]:
    """``Σ_q = (1/n)(diag(Qᵀ1) − QᵀQ)``: PSD, ``Σ_q 1 = 0``, zero iff assignments are hard (claim D2)."""
    Q_ = check_array("Q", Q, 2)
    Q_ = check_assignments(Q_, *Q_.shape)
    return arr((np.diag(Q_.sum(axis=0)) - Q_.T @ Q_) / Q_.shape[0])


@finite_result("Y")
def collapse_critical_temperatures(Y: Float64[np.ndarray, "n d"]) -> tuple[float, float]:
    """``(T_c^F, T_c^{L_q}) = (2 λ_max(Cov Y), 4 λ_max(Cov Y))`` (claim D4; Cov with the 1/n convention).

    Below ``T_c^F`` the collapsed configuration is a saddle of ``F``; below ``T_c^{L_q}`` a saddle of
    ``L_q`` (derivation in docs/theory.md, steps D4.* in proofs_check).
    """
    Y_ = check_array("Y", Y, 2)
    E = Y_ - Y_.mean(axis=0, keepdims=True)
    # An overflowed covariance would make eigvalsh fail inside LAPACK: refuse it here, naming Y.
    cov = check_overflow("collapse_critical_temperatures", arr(E.T @ E / Y_.shape[0]), "Y")
    lam = f64(np.linalg.eigvalsh(cov)[-1])
    return 2.0 * lam, 4.0 * lam


# --------------------------------------------------------------------------------------------------
# Gradients (claim D2): one pull-back from ∂L/∂D
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P", "G")
def pullback_distances(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], G: Float64[np.ndarray, "n K"]
) -> tuple[Float64[np.ndarray, "n d"], Float64[np.ndarray, "d K"]]:
    """Given ``G = ∂L/∂D``, return ``(∇_Y L, ∇_P L)`` through ``D_tj = ‖y_t − p_j‖²``.

    ``∂D_tj/∂y_t = 2(y_t − p_j)`` and ``∂D_tj/∂p_j = 2(p_j − y_t)``, hence
    ``∇_Y L = 2(diag(G1) Y − G Pᵀ)`` and ``∇_P L = 2(P diag(Gᵀ1) − YᵀG)``.
    """
    Y_, P_ = _check_tokens_prototypes(Y, P)
    G_ = check_array("G", G, 2)
    check_dim("G", G_, 0, Y_.shape[0], "Y's token count n")
    check_dim("G", G_, 1, P_.shape[1], "P's prototype count K")
    grad_Y = 2.0 * (G_.sum(axis=1)[:, None] * Y_ - G_ @ P_.T)
    grad_P = 2.0 * (P_ * G_.sum(axis=0)[None, :] - Y_.T @ G_)
    return arr(grad_Y), arr(grad_P)


@finite_result("Y", "P")
def grad_quantisation_fixed_Q(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"]
) -> tuple[Float64[np.ndarray, "n d"], Float64[np.ndarray, "d K"]]:
    """``(∇_Y, ∇_P)`` of ``L_q`` with ``Q`` held fixed: ``∇_P = (2/n)(P diag(Qᵀ1) − YᵀQ)``."""
    Y_, P_ = _check_tokens_prototypes(Y, P)
    Q_ = check_assignments(Q, Y_.shape[0], P_.shape[1])
    return pullback_distances(Y_, P_, arr(Q_ / Y_.shape[0]))


@finite_result("Y", "P", "T_P")
def grad_free_energy(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float
) -> tuple[Float64[np.ndarray, "n d"], Float64[np.ndarray, "d K"]]:
    """``(∇_Y F, ∇_P F)``; ``∂F/∂D = Q/n`` with softmax ``Q``, so ``∇_P F = ∇_P L_q|_{Q fixed}`` (D2)."""
    Q = assignments(Y, P, T_P)
    return pullback_distances(Y, P, arr(Q / Q.shape[0]))


@finite_result("D", "T_P")
def quantisation_distance_weights(D: Float64[np.ndarray, "n K"], T_P: float) -> Float64[np.ndarray, "n K"]:
    """``n·∂L_q/∂D`` through softmax assignments: ``W_tk = q_tk (1 − (D_tk − D̄_t)/T_P)``, ``D̄_t = q_tᵀD_t``.

    Rows of ``W`` sum to 1 exactly in reals (``Σ_k q_k (D_k − D̄) = 0``).
    """
    Q = soft_assignments(D, T_P)
    return _weighted_factor(Q, D, check_temperature("T_P", T_P))


def _weighted_factor(Q: F64Array, D: F64Array, T_P: float) -> F64Array:
    """``q_tk (1 − (D_tk − D̄_t)/T_P)``, exactly 0 where ``q_tk`` underflowed to 0.

    Where ``q_tk > 0`` the factor is bounded (``(D_tk − D_min)/T_P < 746``, and ``D̄_t`` is a
    ``q``-average), but where ``q_tk = 0`` the distance ratio may overflow to ``inf`` and ``0·inf`` would
    be NaN; the true value there is ``x e^{−x}`` with ``x > 745``, below the smallest subnormal's order.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        factor = Q * (1.0 - _centred_distances(D, Q) / T_P)
    return arr(np.where(Q > 0.0, factor, 0.0))


def _centred_distances(D: F64Array, Q: F64Array) -> F64Array:
    """``D_tk − D̄_t`` computed as ``Σ_j q_tj (D_tk − D_tj)``: exactly 0 where distances coincide (e.g. at
    collapse), where ``D − q·D`` would leave a rounding residue of size ``u·D`` that ``1/T_P`` amplifies."""
    return arr(np.einsum("tj,tkj->tk", Q, D[:, :, None] - D[:, None, :]))


@finite_result("Y", "P", "T_P")
def grad_quantisation_full(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float
) -> tuple[Float64[np.ndarray, "n d"], Float64[np.ndarray, "d K"]]:
    """``(∇_Y L_q, ∇_P L_q)`` with ``Q = softmax(−D/T_P)`` differentiated too (used in training)."""
    D = squared_distances(Y, P)
    W = quantisation_distance_weights(D, T_P)
    return pullback_distances(Y, P, arr(W / D.shape[0]))


@finite_result("P")
def grad_variance_fixed_Q(P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"]) -> Float64[np.ndarray, "d K"]:
    """``∇_P V|_{Q fixed} = 2 P Σ_q`` (claim D2)."""
    P_ = check_array("P", P, 2)
    return arr(2.0 * P_ @ assignment_covariance(Q))


# --------------------------------------------------------------------------------------------------
# Hessians in P (claims D3, D4), from the first and second derivatives in D
# --------------------------------------------------------------------------------------------------


# Entries (float64) of one chunk of weighted token rows in the Hessians in P: 4 MB, which stays in the caches.
HESSIAN_CHUNK_ENTRIES = 1 << 19


def _hessian_P(Y: F64Array, P: F64Array, w: F64Array, Hd: F64Array) -> F64Array:
    """``∇²_P L`` (dK×dK, index ``j·d + i`` for entry ``P[i, j]``) for ``L = (1/n) Σ_t f(D_t)``.

    ``w[t] = ∂f/∂D_t`` (n×K) and ``Hd[t] = ∂²f/∂D_t²`` (n×K×K):
    ``H = (1/n) Σ_t [ blockdiag(2 w_tk I) + Σ_{k,l} Hd_tkl · 4 (p_k − y_t)(p_l − y_t)ᵀ ]``.
    ``Hd[t]`` is a Hessian, hence symmetric: only its upper triangle (``l ≥ k``) is read.
    """
    n, d = Y.shape
    K = P.shape[1]
    G = P.T[None, :, :] - Y[:, None, :]  # n×K×d, rows p_k − y_t
    # Block (k, l) of H is G_kᵀ diag(Hd[:, k, l]) G_l (G_k = G[:, k, :], n×d). For each k, the blocks
    # l ≥ k are one matrix product over the tokens, G_kᵀ (d×n) by the n×(K−k)d weighted G, and the blocks
    # l < k are the transposes of blocks computed earlier (Hd[t] is symmetric). One product per k, in
    # BLAS's layout, over chunks of tokens that keep the weighted copy near 4 MB (it stays in the caches:
    # 0.65 s against 0.93 s with 32 MB chunks at n = 4096, d = 64, K = 32, one thread of an AMD EPYC,
    # run one after the other; docs/performance.md). einsum's n·K²·d²
    # scalar loop took 90 s per growth check at that size, and a product per l over a transposed n×K×d×K
    # copy 6 s per Hessian (the copy's strided transpose was two thirds of it).
    H = np.zeros((K, d, K, d))
    chunk = max(1, HESSIAN_CHUNK_ENTRIES // max(1, K * d))
    for k in range(K):
        for start in range(0, n, chunk):
            G_c = G[start : start + chunk]
            weighted = Hd[start : start + chunk, k, k:, None] * G_c[:, k:, :]  # (t, l ≥ k, j)
            H[k, :, k:, :] += (G_c[:, k, :].T @ weighted.reshape(weighted.shape[0], -1)).reshape(d, K - k, d)
        H[k + 1 :, :, k, :] = H[k, :, k + 1 :, :].transpose(1, 2, 0)
    H = 4.0 * H.reshape(K * d, K * d)
    H += np.kron(np.diag(2.0 * w.sum(axis=0)), np.eye(d))
    return arr(H / n)


@finite_result("Y", "P", "T_P")
def hessian_free_energy(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float
) -> Float64[np.ndarray, "dK dK"]:
    """``∇²_P F``; per token ``∂²F/∂D² = −(1/T_P)(diag q − qqᵀ)`` ⪯ 0, so ``∇²F ⪯ (2/n)diag(n_j)⊗I`` (D3)."""
    Y_, P_ = _check_tokens_prototypes(Y, P)
    T = check_temperature("T_P", T_P)
    Q = assignments(Y_, P_, T)
    Hd = -(np.einsum("tk,kl->tkl", Q, np.eye(Q.shape[1])) - Q[:, :, None] * Q[:, None, :]) / T
    return _hessian_P(Y_, P_, Q, arr(Hd))


@finite_result("Y", "P", "T_P")
def hessian_quantisation(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float
) -> Float64[np.ndarray, "dK dK"]:
    """``∇²_P L_q`` through softmax assignments.

    With ``w_k = q_k(1 − (D_k − D̄)/T)`` and ``∂D̄/∂D_l = w_l``:
    ``∂w_k/∂D_l = −(1/T) q_k (δ_kl − q_l)(1 − (D_k − D̄)/T) − (q_k/T)(δ_kl − w_l)`` (step D4.4).
    """
    Y_, P_ = _check_tokens_prototypes(Y, P)
    T = check_temperature("T_P", T_P)
    D = squared_distances(Y_, P_)
    Q = soft_assignments(D, T)
    w = quantisation_distance_weights(D, T)
    eye = np.eye(Q.shape[1])[None, :, :]
    qa = w[:, :, None]  # q_k (1 − (D_k − D̄)/T), 0 where q_k underflowed (see _weighted_factor)
    Hd = -(qa * (eye - Q[:, None, :])) / T - (Q[:, :, None] * (eye - w[:, None, :])) / T
    return _hessian_P(Y_, P_, w, arr(Hd))


# --------------------------------------------------------------------------------------------------
# Prototype dynamics (claims D3, D5)
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P", "T_P", "eta")
def prototype_step(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float, eta: float
) -> Float64[np.ndarray, "d K"]:
    """One gradient-descent step on the free energy with the encoder frozen: ``P⁺ = P − η ∇_P F``."""
    step = check_positive("eta", eta)
    _, grad_P = grad_free_energy(Y, P, T_P)
    return arr(P - step * grad_P)


def remove_prototype(P: Float64[np.ndarray, "d K"], j: int) -> Float64[np.ndarray, "d K1"]:
    """``P`` without column ``j`` (a new array; ``P`` is untouched). Needs ``K ≥ 2``."""
    P_ = check_array("P", P, 2)
    if P_.shape[1] < 2:
        raise ValueError(f"P: removing a prototype needs K >= 2, got K = {P_.shape[1]}")
    jj = check_index("j", j, P_.shape[1])
    return arr(np.delete(P_, jj, axis=1))


def removal_free_energy_change(Q: Float64[np.ndarray, "n K"], j: int, T_P: float) -> tuple[float, float]:
    """Predicted ``ΔF`` of removing prototype ``j`` and its upper bound (claim D5).

    ``ΔF = −(T_P/n) Σ_t log(1 − q_tj)`` and ``0 ≤ ΔF ≤ (T_P/n) Σ_t q_tj/(1 − q_tj)``; both are infinite
    when some token is assigned to ``j`` alone (``q_tj = 1`` in floating point).
    """
    Q_ = check_array("Q", Q, 2)
    Q_ = check_assignments(Q_, *Q_.shape)
    jj = check_index("j", j, Q_.shape[1])
    T = check_temperature("T_P", T_P)
    q = Q_[:, jj]
    if np.any(q >= 1.0):
        return float("inf"), float("inf")
    n = Q_.shape[0]
    with np.errstate(over="ignore"):  # an overflow is reported by check_overflow, naming Q and T_P
        change, bound = f64(-T * np.sum(np.log1p(-q)) / n), f64(T * np.sum(q / (1.0 - q)) / n)
    # no token is assigned to j alone, so both are finite in exact arithmetic: inf here is an overflow
    return check_overflow("removal_free_energy_change", (change, bound), "Q, T_P")


__all__ = [
    "HESSIAN_CHUNK_ENTRIES",
    "assignment_covariance",
    "assignments",
    "check_assignments",
    "collapse_critical_temperatures",
    "free_energy",
    "grad_free_energy",
    "grad_quantisation_fixed_Q",
    "grad_quantisation_full",
    "grad_variance_fixed_Q",
    "hessian_free_energy",
    "hessian_quantisation",
    "mean_entropy",
    "ols_loss",
    "prototype_step",
    "prototype_variance",
    "pullback_distances",
    "quantisation_distance_weights",
    "quantisation_loss",
    "removal_free_energy_change",
    "remove_prototype",
    "soft_assignments",
    "squared_distances",
]
