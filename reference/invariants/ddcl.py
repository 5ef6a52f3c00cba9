"""Invariants of the DDCL claims D1–D6 (SPEC §4), with their hypotheses as named predicates.

Every invariant computes through an :class:`DDCLOps` table of operations — the reference by default —
so that a port (or a deliberately broken implementation in a test) can be checked against the same
claims. Each returns ``tuple[InvariantResult, ...]`` and raises :class:`ClaimViolation` naming the
claim when ``raise_on_violation`` is true. Error bounds are a-priori rounding bounds from
:func:`reference.tolerances.accumulation_bound`; each ``_scale_*`` helper below states which terms it
bounds, and docs/tolerances.md derives them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference import dcl, ddcl
from reference._arrays import (
    F64Array,
    arr,
    check_array,
    check_dim,
    check_index,
    check_positive,
    check_temperature,
    f64,
    finite_result,
)
from reference.incrt.operators import eigh_error_bound, frobenius
from reference.invariants.result import InvariantResult, finish
from reference.tolerances import CheckKind, accumulation_bound, gamma, tolerance

Arrays2 = tuple[F64Array, F64Array]


@dataclass(frozen=True)
class DDCLOps:
    """The DDCL operations an implementation provides (names and meanings as in ``reference.ddcl``)."""

    squared_distances: Callable[[F64Array, F64Array], F64Array]
    soft_assignments: Callable[[F64Array, float], F64Array]
    quantisation_loss: Callable[[F64Array, F64Array, F64Array], float]
    ols_loss: Callable[[F64Array, F64Array, F64Array], float]
    prototype_variance: Callable[[F64Array, F64Array], float]
    free_energy: Callable[[F64Array, F64Array, float], float]
    mean_entropy: Callable[[F64Array], float]
    assignment_covariance: Callable[[F64Array], F64Array]
    grad_quantisation_fixed_Q: Callable[[F64Array, F64Array, F64Array], Arrays2]
    grad_free_energy: Callable[[F64Array, F64Array, float], Arrays2]
    grad_variance_fixed_Q: Callable[[F64Array, F64Array], F64Array]
    grad_quantisation_full: Callable[[F64Array, F64Array, float], Arrays2]
    hessian_free_energy: Callable[[F64Array, F64Array, float], F64Array]
    hessian_quantisation: Callable[[F64Array, F64Array, float], F64Array]
    prototype_step: Callable[[F64Array, F64Array, float, float], F64Array]
    remove_prototype: Callable[[F64Array, int], F64Array]
    dcl_prototypes: Callable[[F64Array, F64Array, F64Array], F64Array]
    dcl_step: Callable[[F64Array, F64Array, F64Array, F64Array, float], Arrays2]


REFERENCE_OPS = DDCLOps(
    squared_distances=ddcl.squared_distances,
    soft_assignments=ddcl.soft_assignments,
    quantisation_loss=ddcl.quantisation_loss,
    ols_loss=ddcl.ols_loss,
    prototype_variance=ddcl.prototype_variance,
    free_energy=ddcl.free_energy,
    mean_entropy=ddcl.mean_entropy,
    assignment_covariance=ddcl.assignment_covariance,
    grad_quantisation_fixed_Q=ddcl.grad_quantisation_fixed_Q,
    grad_free_energy=ddcl.grad_free_energy,
    grad_variance_fixed_Q=ddcl.grad_variance_fixed_Q,
    grad_quantisation_full=ddcl.grad_quantisation_full,
    hessian_free_energy=ddcl.hessian_free_energy,
    hessian_quantisation=ddcl.hessian_quantisation,
    prototype_step=ddcl.prototype_step,
    remove_prototype=ddcl.remove_prototype,
    dcl_prototypes=dcl.dcl_prototypes,
    dcl_step=dcl.dcl_step,
)


# --------------------------------------------------------------------------------------------------
# Hypotheses (named predicates over the invariants' keyword inputs; extra inputs are ignored)
# --------------------------------------------------------------------------------------------------


def q_row_stochastic(*, Q: F64Array, **_: Any) -> bool:
    """D1: ``Q`` is non-negative with unit row sums (any assignment, not only softmax)."""
    Q_ = check_array("Q", Q, 2)  # not an array at all: an error naming Q, not a False
    try:
        ddcl.check_assignments(Q_, *Q_.shape)
    except (ValueError, TypeError):
        return False
    return True


def temperature_positive(*, T_P: float, **_: Any) -> bool:
    """D2–D5: ``T_P > 0`` (softmax assignments exist)."""
    return bool(np.isfinite(T_P) and T_P > 0.0)


def step_size_in_unit_interval(*, eta: float, **_: Any) -> bool:
    """D3: ``0 < η < 1`` (with ``∇²F ⪯ 2I`` this makes ``η(1 − η) > 0`` in the descent lemma)."""
    return 0.0 < eta < 1.0


def step_size_at_most_half(*, eta: float, **_: Any) -> bool:
    """D3 (convex hull part): ``0 < η ≤ 1/2`` makes every update coefficient ``1 − 2η n_j/n ≥ 0``."""
    return 0.0 < eta <= 0.5


def at_least_two_prototypes(*, K: int, **_: Any) -> bool:
    """D4: ``K ≥ 2`` (with one prototype the collapsed point is the unique minimum)."""
    return K >= 2


def temperature_below_critical(*, Y: F64Array, T_P: float, **_: Any) -> bool:
    """D4: ``T_P < T_c = 2 λ_max(Cov Y)`` (collapse unstable for ``F``)."""
    return ddcl.collapse_critical_temperatures(Y)[0] > T_P


def prototype_not_sole_owner(*, Y: F64Array, P: F64Array, T_P: float, j: int, **_: Any) -> bool:
    """D5: ``K ≥ 2`` and no token is assigned to prototype ``j`` alone in floating point (``q_tj < 1``)."""
    if check_array("P", P, 2).shape[1] < 2:
        return False
    return bool(np.all(ddcl.assignments(Y, P, T_P)[:, j] < 1.0))


def eta_positive(*, eta: float, **_: Any) -> bool:
    """D6: a positive step size."""
    return bool(np.isfinite(eta) and eta > 0.0)


def dcl_preconditioner_nonsingular(*, Y_b: F64Array, **_: Any) -> bool:
    """D6 (stationary points): ``Y_bᵀY_b + 11ᵀ`` is nonsingular (beyond its rounding level)."""
    M = dcl.dcl_preconditioner(Y_b)
    ev = np.linalg.eigvalsh(M)
    return bool(ev[0] > accumulation_bound(M.shape[0] + Y_b.shape[0], f64(ev[-1]) * M.shape[0]))


def gradient_step(
    *,
    Y_b: F64Array,
    W: F64Array,
    b: F64Array,
    grad_P: F64Array,
    eta: float,
    W_next: F64Array | None = None,
    b_next: F64Array | None = None,
    **_: Any,
) -> bool:
    """D6 (the preconditioned-step part): the update of ``(W, b)`` is the plain gradient step
    ``(W, b) − η(∇_W L, ∇_b L)``. True when no update is given (``W_next``, ``b_next`` absent: the invariant
    makes that step itself); for a given update, true iff it equals the gradient step within the rounding
    of computing it (an Adam step, a momentum step, a decayed step are not gradient steps)."""
    if W_next is None and b_next is None:
        return True
    if W_next is None or b_next is None:
        raise ValueError("W_next, b_next: give both (an update of (W, b)) or neither (the gradient step)")
    Y_, G = check_array("Y_b", Y_b, 2), check_array("grad_P", grad_P, 2)
    W_, b_ = check_array("W", W, 2), check_array("b", b, 1)
    W1, b1 = check_array("W_next", W_next, 2), check_array("b_next", b_next, 1)
    if W1.shape != W_.shape or b1.shape != b_.shape:
        raise ValueError(f"W_next, b_next: expected shapes {W_.shape}, {b_.shape}, got {W1.shape}, {b1.shape}")
    gW, gb = dcl.dcl_gradients(Y_, G)
    step = abs(float(eta))
    m = _m(Y_.shape[1])
    tol_W = accumulation_bound(m, f64((step * (np.abs(Y_) @ np.abs(G)) + np.abs(W_)).max()))
    tol_b = accumulation_bound(m, f64((step * np.abs(G).sum(axis=0) + np.abs(b_)).max()))
    return bool(np.all(np.abs(W1 - (W_ - eta * gW)) <= tol_W) and np.all(np.abs(b1 - (b_ - eta * gb)) <= tol_b))


# --------------------------------------------------------------------------------------------------
# Error scales (docs/tolerances.md derives each)
# --------------------------------------------------------------------------------------------------


def _scale_decomposition(Y: F64Array, P: F64Array) -> float:
    """Each term of L_q, L_OLS and V has magnitude ≤ (‖y_t‖ + 2 max_j ‖p_j‖)²; averaged over t."""
    pmax = f64(np.max(np.linalg.norm(P, axis=0)))
    return f64(np.mean((np.linalg.norm(Y, axis=1) + 2.0 * pmax) ** 2))


def _scale_free_energy(D: F64Array, T_P: float) -> float:
    """``F = mean Dmin − T·mean lse``: Dmin carries relative error, lse ∈ [0, log K] absolute ~K·u."""
    K = int(D.shape[1])
    return f64(np.mean(D.min(axis=1))) + T_P * (2.0 + K)


def _scale_entropy_term(D: F64Array, T_P: float) -> float:
    """``T·H̄`` and ``L_q``: ``q`` has relative error ~u(1 + K + 2 max_k D_tk/T); times ``T·|log q| ~ D``."""
    K = int(D.shape[1])
    return f64(np.mean(D.max(axis=1))) * 3.0 + T_P * (2.0 + K + math.log(K))


def _conditioning(D: F64Array, T_P: float) -> float:
    """``κ = 1 + K + 2 max D/T_P``: relative error of a computed softmax ``q`` in units of ``u``
    (the exponent ``−(D_k − D_min)/T_P`` carries an absolute error ``≤ 2u·max D/T_P``)."""
    return 1.0 + int(D.shape[1]) + 2.0 * f64(D.max()) / T_P


def _scale_hessian(D: F64Array, Q: F64Array, T_P: float, dK: int, *, through_q: bool) -> float:
    """Entry errors of ``∇²_P F`` are ≤ γ·κ(2 + 8 L_q/T); those of ``∇²_P L_q`` carry a further factor
    ``2 + κ`` (its weights ``w = q(1 − (D − D̄)/T)`` also round ``D/T``); the spectral norm of the error
    is ≤ dK × the entry bound."""
    Lq = f64(np.sum(Q * D) / D.shape[0])
    kappa = _conditioning(D, T_P)
    return dK * (2.0 + 8.0 * Lq / T_P) * kappa * ((2.0 + kappa) if through_q else 1.0)


def _m(*sizes: int) -> int:
    """Length of the longest rounding chain: the sizes involved plus a few elementwise operations."""
    return int(sum(sizes)) + 8


# --------------------------------------------------------------------------------------------------
# D1 Decomposition
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P", "Q")
def d1_decomposition(
    *, Y: F64Array, P: F64Array, Q: F64Array, ops: DDCLOps = REFERENCE_OPS, raise_on_violation: bool = False
) -> tuple[InvariantResult, ...]:
    """D1: ``L_q = L_OLS + V`` for any row-stochastic ``Q``; ``V ≥ 0``; ``V = 0`` iff hard or coinciding.

    The zero-set statement is checked through its proof: per token
    ``Σ_j q_j‖p_j − Pq‖² = ½ Σ_{j,k} q_j q_k ‖p_j − p_k‖²`` (a sum of non-negative terms that vanishes
    iff every pair of weighted prototypes coincides).
    """
    Y, P = check_array("Y", Y, 2), check_array("P", P, 2)
    Q = check_array("Q", Q, 2)
    n, d = Y.shape
    K = P.shape[1]
    Lq, Lols, V = ops.quantisation_loss(Y, P, Q), ops.ols_loss(Y, P, Q), ops.prototype_variance(P, Q)
    S = _scale_decomposition(Y, P)
    bound = accumulation_bound(_m(n * K * d, K, d), 2.0 * S)
    pair = P.T[:, None, :] - P.T[None, :, :]  # K×K×d
    pair_sq = np.einsum("jkd,jkd->jk", pair, pair)
    V_pairs = f64(0.5 * np.einsum("tj,tk,jk->", Q, Q, pair_sq) / n)
    shape = f"n={n}, d={d}, K={K}"
    return finish(
        (
            InvariantResult("D1", "|L_q − (L_OLS + V)|", abs(Lq - (Lols + V)), bound, f"L_q={Lq:.6g}; {shape}"),
            # A computed sum of non-negative floats is non-negative: no rounding allowance is owed.
            InvariantResult("D1", "−V (V ≥ 0)", -V, 0.0, shape),
            InvariantResult("D1", "|V − ½ΣΣ q_j q_k ‖p_j − p_k‖²|", abs(V - V_pairs), bound, shape),
        ),
        raise_on_violation,
    )


# --------------------------------------------------------------------------------------------------
# D2 Free energy and gradients
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P", "T_P")
def d2_free_energy_gradients(
    *, Y: F64Array, P: F64Array, T_P: float, ops: DDCLOps = REFERENCE_OPS, raise_on_violation: bool = False
) -> tuple[InvariantResult, ...]:
    """D2: ``L_q = F + T_P H̄``; ``∇_P F = ∇_P L_q|_Q = (2/n)(P diag(Qᵀ1) − YᵀQ)``;
    ``∇_P V|_Q = 2PΣ_q`` (checked as ``∇_P L_q|_Q − ∇_P L_OLS|_Q``); ``Σ_q ⪰ 0``, ``Σ_q 1 = 0``,
    ``tr Σ_q = (1/n) Σ_t (1 − ‖q_t‖²)`` (zero iff every ``q_t`` is one-hot)."""
    Y, P = check_array("Y", Y, 2), check_array("P", P, 2)
    n, d = Y.shape
    K = P.shape[1]
    T = check_temperature("T_P", T_P)
    D = ops.squared_distances(Y, P)
    Q = ops.soft_assignments(D, T)
    Lq, F, H = ops.quantisation_loss(Y, P, Q), ops.free_energy(Y, P, T), ops.mean_entropy(Q)
    b_energy = accumulation_bound(_m(n, K, d), _scale_free_energy(D, T) + _scale_entropy_term(D, T))

    formula = (2.0 / n) * (P * Q.sum(axis=0)[None, :] - Y.T @ Q)
    _, gF = ops.grad_free_energy(Y, P, T)
    _, gLq = ops.grad_quantisation_fixed_Q(Y, P, Q)
    g_scale = 2.0 * (f64(np.abs(P).max()) + f64(np.abs(Y).max()))
    b_grad = accumulation_bound(_m(n, d), g_scale)

    gV = ops.grad_variance_fixed_Q(P, Q)
    g_ols = -(2.0 / n) * (Y - Q @ P.T).T @ Q  # ∇_P L_OLS with Q fixed
    b_gV = accumulation_bound(_m(n, K, d), 4.0 * g_scale)

    Sq = ops.assignment_covariance(Q)
    ev_min = f64(np.linalg.eigvalsh(0.5 * (Sq + Sq.T))[0])
    b_cov = accumulation_bound(_m(n, K), 2.0 * K)
    trace_formula = f64(np.mean(1.0 - np.sum(Q * Q, axis=1)))
    shape = f"n={n}, d={d}, K={K}, T_P={T:.3g}"
    return finish(
        (
            InvariantResult("D2", "|L_q − (F + T_P·H̄)|", abs(Lq - (F + T * H)), b_energy, shape),
            InvariantResult(
                "D2", "max|∇_P F − (2/n)(P diag(Qᵀ1) − YᵀQ)|", f64(np.abs(gF - formula).max()), b_grad, shape
            ),
            InvariantResult("D2", "max|∇_P F − ∇_P L_q|_Q|", f64(np.abs(gF - gLq).max()), b_grad, shape),
            InvariantResult(
                "D2", "max|∇_P V|_Q − (∇_P L_q|_Q − ∇_P L_OLS|_Q)|", f64(np.abs(gV - (gLq - g_ols)).max()), b_gV, shape
            ),
            InvariantResult("D2", "−λ_min(Σ_q) (Σ_q ⪰ 0)", -ev_min, b_cov, shape),
            InvariantResult("D2", "max|Σ_q 1| (Σ_q 1 = 0)", f64(np.abs(Sq.sum(axis=1)).max()), b_cov, shape),
            InvariantResult("D2", "|tr Σ_q − mean(1 − ‖q_t‖²)|", abs(f64(np.trace(Sq)) - trace_formula), b_cov, shape),
        ),
        raise_on_violation,
    )


# --------------------------------------------------------------------------------------------------
# D3 Lyapunov stability with the encoder frozen
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P", "T_P", "eta")
def d3_lyapunov(
    *, Y: F64Array, P: F64Array, T_P: float, eta: float, ops: DDCLOps = REFERENCE_OPS, raise_on_violation: bool = False
) -> tuple[InvariantResult, ...]:
    """D3: ``∇²F ⪯ (2/n)diag(n_j)⊗I ⪯ 2I``; one step ``P⁺ = P − η∇F`` gives
    ``F(P⁺) ≤ F(P) − η(1−η)‖∇F‖²``; for ``η ≤ 1/2``, ``p_j⁺`` is the convex combination
    ``(1 − 2ηn_j/n) p_j + (2η/n) Σ_t q_tj y_t`` with non-negative coefficients."""
    Y, P = check_array("Y", Y, 2), check_array("P", P, 2)
    n, d = Y.shape
    K = P.shape[1]
    T = check_temperature("T_P", T_P)
    step = check_positive("eta", eta)
    D = ops.squared_distances(Y, P)
    Q = ops.soft_assignments(D, T)
    nj = Q.sum(axis=0)
    H = ops.hessian_free_energy(Y, P, T)
    smooth_gap = f64(np.linalg.eigvalsh(H - np.kron(np.diag(2.0 * nj / n), np.eye(d)))[-1])
    b_hess = accumulation_bound(_m(n, K * K, d), _scale_hessian(D, Q, T, d * K, through_q=False))

    _, g = ops.grad_free_energy(Y, P, T)
    P_next = ops.prototype_step(Y, P, T, step)
    F0, F1 = ops.free_energy(Y, P, T), ops.free_energy(Y, P_next, T)
    g2 = f64(np.sum(g * g))
    D1 = ops.squared_distances(Y, P_next)
    # The computed step itself is off by ‖δ‖ ≤ γ·√(dK)·s_step (P·n_j/n − YᵀQ/n cancels when p_j ≈ ȳ_j),
    # which moves F by ≤ 2√(max D⁺)·‖δ‖ (+ ‖δ‖², second order).
    s_step = f64(np.abs(P).max()) + 2.0 * step * (f64(np.abs(P).max()) + f64(np.abs(Y).max()))
    s_move = 2.0 * math.sqrt(f64(D1.max()) * d * K) * s_step
    # The computed gradient is off by ‖δg‖ ≤ γ·s_g (the same cancellation), so η(1−η)‖g‖² is off by
    # ≤ η(1−η)(2‖g‖‖δg‖ + ‖δg‖²): the second-order term matters when g itself is rounding noise.
    m_desc = _m(n, K, d)
    s_g = 2.0 * math.sqrt(d * K) * (f64(np.abs(P).max()) + f64(np.abs(Y).max()))
    s_g2 = step * abs(1.0 - step) * (2.0 * math.sqrt(g2) * s_g + gamma(m_desc) * s_g * s_g)
    scale_desc = _scale_free_energy(D, T) + _scale_free_energy(D1, T) + g2 * (1 + step) + s_move + s_g2
    b_desc = accumulation_bound(m_desc, scale_desc)
    shape = f"n={n}, d={d}, K={K}, T_P={T:.3g}, eta={step:.3g}"
    results = [
        InvariantResult("D3", "λ_max(∇²F − (2/n)diag(n_j)⊗I) (smoothness)", smooth_gap, b_hess, shape),
        InvariantResult(
            "D3", "max_j 2n_j/n − 2 (⪯ 2I)", f64(2.0 * nj.max() / n) - 2.0, accumulation_bound(_m(n), 2.0), shape
        ),
        InvariantResult(
            "D3", "F(P⁺) − F(P) + η(1−η)‖∇F‖² (descent)", F1 - F0 + step * (1.0 - step) * g2, b_desc, shape
        ),
        InvariantResult("D3", "F(P⁺) − F(P) (Lyapunov: F does not increase)", F1 - F0, b_desc, shape),
    ]
    if step_size_at_most_half(eta=step):
        coeff = 1.0 - 2.0 * step * nj / n
        combo = P * coeff[None, :] + (2.0 * step / n) * (Y.T @ Q)
        b_combo = accumulation_bound(_m(n, d), 2.0 * (f64(np.abs(P).max()) + f64(np.abs(Y).max())))
        results += [
            InvariantResult("D3", "−min_j(1 − 2η n_j/n) (convex weights ≥ 0)", -f64(coeff.min()), b_combo, shape),
            InvariantResult("D3", "max|P⁺ − convex combination|", f64(np.abs(P_next - combo).max()), b_combo, shape),
        ]
    return finish(results, raise_on_violation)


# --------------------------------------------------------------------------------------------------
# D4 Anti-collapse
# --------------------------------------------------------------------------------------------------


def collapsed_prototypes(Y: F64Array, K: int) -> F64Array:
    """All ``K`` prototypes at the token mean ``ȳ`` (the collapsed configuration of D4)."""
    Y_ = check_array("Y", Y, 2)
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"K: must be an int >= 1, got {K!r}")
    if int(K) > np.iinfo(np.intp).max // max(Y_.shape[1], 1):  # not even an index of a d×K array
        raise ValueError(f"K: {Y_.shape[1]}×K prototypes cannot be indexed in memory, got K with {len(str(K))} digits")
    return arr(np.repeat(Y_.mean(axis=0)[:, None], int(K), axis=1))


@dataclass(frozen=True)
class CollapseStatus:
    """D4 report at a configured temperature: is collapse unstable, and by what margin."""

    T_P: float
    T_c_free_energy: float
    T_c_quantisation: float

    @property
    def unstable_free_energy(self) -> bool:
        return self.T_c_free_energy > self.T_P

    @property
    def unstable_quantisation(self) -> bool:
        return self.T_c_quantisation > self.T_P

    @property
    def margin_free_energy(self) -> float:
        """``T_c − T_P``: positive means collapse is unstable for ``F`` (prototypes must split)."""
        return self.T_c_free_energy - self.T_P


def collapse_status(Y: F64Array, T_P: float) -> CollapseStatus:
    T = check_temperature("T_P", T_P)
    Tf, Tq = ddcl.collapse_critical_temperatures(Y)
    return CollapseStatus(T, Tf, Tq)


@finite_result("Y", "K", "T_P")
def d4_anti_collapse(
    *, Y: F64Array, K: int, T_P: float, ops: DDCLOps = REFERENCE_OPS, raise_on_violation: bool = False
) -> tuple[InvariantResult, ...]:
    """D4: the collapsed configuration is stationary for ``F`` and ``L_q``; the smallest Hessian
    eigenvalue there is ``(2/K)(1 − T_c/T_P)`` for ``F`` and ``(2/K)(1 − 2T_c/T_P)`` for ``L_q``
    (``T_c = 2λ_max(Cov Y)``), so collapse is unstable iff ``T_P < T_c`` (resp. ``< 2T_c``).
    With ``K = 1`` the Hessians are ``2I`` (checked too)."""
    Y = check_array("Y", Y, 2)
    n, d = Y.shape
    T = check_temperature("T_P", T_P)
    P0 = collapsed_prototypes(Y, K)
    Tf, Tq = ddcl.collapse_critical_temperatures(Y)
    D = ops.squared_distances(Y, P0)
    Q = ops.soft_assignments(D, T)
    g_scale = 2.0 * (f64(np.abs(P0).max()) + f64(np.abs(Y).max()))
    b_grad = accumulation_bound(_m(n, d), g_scale)
    kappa = _conditioning(D, T)
    b_grad_L = accumulation_bound(_m(n, d), g_scale * kappa * (2.0 + kappa))  # weights w round D/T
    _, gF = ops.grad_free_energy(Y, P0, T)
    _, gL = ops.grad_quantisation_full(Y, P0, T)
    # With K = 1 there is no direction orthogonal to 1_K: the spectrum is {2/K} = {2}.
    expect_F = (2.0 / K) * (1.0 - Tf / T) if K >= 2 else 2.0
    expect_L = (2.0 / K) * (1.0 - Tq / T) if K >= 2 else 2.0
    b_hess_F = accumulation_bound(_m(n, K * K, d), _scale_hessian(D, Q, T, d * K, through_q=False))
    b_hess_L = accumulation_bound(_m(n, K * K, d), _scale_hessian(D, Q, T, d * K, through_q=True))
    lam_F = f64(np.linalg.eigvalsh(ops.hessian_free_energy(Y, P0, T))[0])
    lam_L = f64(np.linalg.eigvalsh(ops.hessian_quantisation(Y, P0, T))[0])
    shape = f"n={n}, d={d}, K={K}, T_P={T:.3g}, T_c={Tf:.6g}"
    return finish(
        (
            InvariantResult("D4", "max|∇_P F| at collapse", f64(np.abs(gF).max()), b_grad, shape),
            InvariantResult("D4", "max|∇_P L_q| at collapse", f64(np.abs(gL).max()), b_grad_L, shape),
            InvariantResult("D4", "|λ_min(∇²F) − (2/K)(1 − T_c/T_P)|", abs(lam_F - expect_F), b_hess_F, shape),
            InvariantResult("D4", "|λ_min(∇²L_q) − (2/K)(1 − 2T_c/T_P)|", abs(lam_L - expect_L), b_hess_L, shape),
        ),
        raise_on_violation,
    )


# --------------------------------------------------------------------------------------------------
# D5 Prototype pruning safety
# --------------------------------------------------------------------------------------------------


@finite_result("Y", "P", "T_P")
def d5_prototype_pruning(
    *, Y: F64Array, P: F64Array, T_P: float, j: int, ops: DDCLOps = REFERENCE_OPS, raise_on_violation: bool = False
) -> tuple[InvariantResult, ...]:
    """D5: removing prototype ``j`` changes ``F`` by ``ΔF = −(T_P/n) Σ_t log(1 − q_tj)`` and
    ``0 ≤ ΔF ≤ (T_P/n) Σ_t q_tj/(1 − q_tj)``: the measured change (two free energies) against both."""
    Y, P = check_array("Y", Y, 2), check_array("P", P, 2)
    n, d = Y.shape
    K = P.shape[1]
    T = check_temperature("T_P", T_P)
    jj = check_index("j", j, K)
    D = ops.squared_distances(Y, P)
    Q = ops.soft_assignments(D, T)
    P_less = ops.remove_prototype(P, jj)
    measured = ops.free_energy(Y, P_less, T) - ops.free_energy(Y, P, T)
    predicted, upper = ddcl.removal_free_energy_change(Q, jj, T)
    q = Q[:, jj]
    kappa = 1.0 + K + 2.0 * D.max(axis=1) / T  # relative error of q_tj, in units of u
    with np.errstate(divide="ignore"):
        pred_scale = f64(np.mean(np.where(q < 1.0, T * q * kappa / (1.0 - q), np.inf)))
    D_less = np.delete(D, jj, axis=1)
    scale = _scale_free_energy(D, T) + _scale_free_energy(D_less, T) + pred_scale
    bound = accumulation_bound(_m(n, K, d), scale) if np.isfinite(scale) else float("inf")
    shape = f"n={n}, d={d}, K={K}, T_P={T:.3g}, j={jj}, max q_tj={f64(q.max()):.6g}"
    return finish(
        (
            InvariantResult("D5", "|ΔF_measured − (−(T/n)Σ log(1 − q_tj))|", abs(measured - predicted), bound, shape),
            InvariantResult("D5", "−ΔF_measured (ΔF ≥ 0)", -measured, bound, shape),
            InvariantResult("D5", "ΔF_measured − (T/n)Σ q_tj/(1 − q_tj)", measured - upper, bound, shape),
        ),
        raise_on_violation,
    )


# --------------------------------------------------------------------------------------------------
# D6 Dual–vanilla equivalence
# --------------------------------------------------------------------------------------------------


def _d6_underflow_dp(Y_: F64Array, G: F64Array, step: float) -> float:
    """Gradual-underflow allowance for D6's ``ΔP`` check, beyond the ``m·η_min`` in :func:`accumulation_bound`.

    In the model ``fl(x op y) = (x op y)(1 + δ) + η`` with ``|η| ≤ η_min`` (the smallest subnormal; additions
    and subtractions have ``η = 0``) an ``η`` made early in a chain is *multiplied* by every later factor, so
    the absolute underflow error is not ``m·η_min`` but ``η_min`` times the sum of the downstream
    multipliers. Counting along the reference's chain (found by hypothesis: ``Y_b = [[562.5]]``,
    ``∇_P L = [[5e-324]]`` gives an error of 281 subnormal units):

    * ``∇_W = Y_b G``: ``d`` products per entry, ``d·η``; ``η∇_W``: ``η·d·η + η``; so ``W⁺`` carries
      ``(η d + 1)·η_min`` and ``b⁺ = b − η Gᵀ1`` carries ``η_min`` (one product).
    * ``P(W⁺, b⁺) = Y_bᵀW⁺ + 1b⁺ᵀ``: ``W⁺``'s error times ``max_j Σ_i |Y_ij|``, plus ``n_b`` products,
      plus ``b⁺``'s one unit; ``P(W, b)``: ``n_b`` products.
    * ``−ηMG`` (the compared prediction): ``M = Y_bᵀY_b + 11ᵀ`` carries ``n_b·η_min`` per entry, times
      ``max_k Σ_j |G_jk|`` in ``MG``, plus ``d`` products; times ``η`` plus one more product.

    The total is scaled by the INVARIANT multiplier, as :func:`accumulation_bound` scales its terms. The
    allowance is ``O(η_min · max|Y| · d)``: it only matters when the compared quantities are subnormal.
    """
    n_b, d = Y_.shape
    eta_min = float(np.finfo(np.float64).smallest_subnormal)
    c = tolerance("float64", CheckKind.INVARIANT).rtol
    y_col = f64(np.abs(Y_).sum(axis=0).max())
    g_col = f64(np.abs(G).sum(axis=0).max())
    units_dp = (step * d + 1.0) * y_col + 2.0 * n_b + 1.0
    units_pred = step * (n_b * g_col + d) + 1.0
    return float(c * eta_min * (units_dp + units_pred))


def _d6_outside_span_bound(
    Y_: F64Array,
    G: F64Array,
    step: float,
    M: F64Array,
    ev: F64Array,
    vecs: F64Array,
    keep: np.ndarray[Any, np.dtype[np.bool_]],
    dP: F64Array,
    b_dp: float,
) -> float:
    """Error bound for D6's ``max|ΔP − BBᵀΔP|``, ``B = vecs[:, keep]`` the computed basis of ``range(M)``.

    Exactly, ``ΔP* = −ηMG`` lies in ``range(M)``, ``M = Y_bᵀY_b + 11ᵀ`` (no rounding). What is computed
    is ``(I − BBᵀ)ΔP`` with ``ΔP = ΔP* + e`` and ``B`` from ``eigh`` of the *computed* ``M̂``; per column
    ``k`` of ``G`` (a column's 2-norm bounds each of its entries):

    1. **Eigenvectors.** ``eigh`` returns the exact eigenpairs of ``M̂ + ΔA``, ``‖ΔA‖_F ≤``
       :func:`~reference.incrt.operators.eigh_error_bound` ``(M̂)``, and ``‖M̂ − M‖_F ≤ γ_{n_b+1}‖|Y|ᵀ|Y| + 11ᵀ‖_F``
       (dot products of length ``n_b`` and one addition), so ``V̂ = [B₀ B]`` are exact eigenvectors of
       ``Â = M + Δ``, ``‖Δ‖₂ ≤ E``. With ``V̂`` orthogonal, ``I − BBᵀ = B₀B₀ᵀ`` and ``B₀ᵀÂ = Λ̂₀B₀ᵀ``, so
       ``(I − BBᵀ)M g = B₀(Λ̂₀B₀ᵀg − B₀ᵀΔg)``: norm ``≤ (max|λ̂₀| + E)‖g‖``. This is the residual form of
       Davis–Kahan without dividing by a gap: the eigenvector error ``E/gap`` (real, e.g. ``Y_b = [[0, 100, 0]]``)
       is multiplied by the size of ``Mg`` along the mixed directions, which the gap cancels. It needs no
       certified rank either: a true range direction whose eigenvalue came out at or below ``b_ev`` and was
       discarded contributes ``≤ (|λ̂| + E)‖g‖``, which is in the bound.
    2. **Orthogonality.** ``V̂`` is orthogonal only to ``ω ≥ ‖V̂ᵀV̂ − I‖₂`` (measured, plus the rounding of
       forming ``V̂ᵀV̂``): then ``‖B₀‖₂ ≤ √(1 + ω)`` and ``I − BBᵀ = B₀B₀ᵀ + (I − V̂V̂ᵀ)``, adding
       ``ω‖M‖₂‖g‖`` and a factor ``1 + ω`` to term 1.
    3. **Rounding of ΔP.** ``|e| ≤ b_dp`` entrywise (the D6 ``ΔP`` bound, which covers the computation of
       ``ΔP`` and more), and ``‖I − BBᵀ‖₂ ≤ max(1, ω)``: ``√d·b_dp·max(1, ω)``.
    4. **Forming** ``ΔP − B(BᵀΔP)``: dot products of length ``d`` then ``rank``, then a subtraction:
       ``γ_{d+rank+1}`` times ``|ΔP| + |B|(|B|ᵀ|ΔP|)`` entrywise.

    Terms 1–2 are multiplied by ``η``. Every a-priori term goes through :func:`accumulation_bound` (the
    INVARIANT multiplier and the underflow term included), so ``E``, ``ω`` and ``b_dp`` already carry it;
    the few roundings in combining them here are relative ``O(u)`` and covered by that multiplier.
    """
    n_b, d = Y_.shape
    aY = np.abs(Y_)
    e_m = accumulation_bound(n_b + 1, frobenius(aY.T @ aY + 1.0))  # ‖M̂ − M‖_F
    e_tot = eigh_error_bound(M) + e_m  # ‖Δ‖₂ ≤ ‖ΔA‖_F + ‖M̂ − M‖_F
    gram = vecs.T @ vecs - np.eye(d)
    omega = frobenius(gram) + accumulation_bound(d, float(d))  # entries' terms sum to ≤ 1 + ω ≈ 1, d² of them
    lam0 = f64(np.abs(ev[~keep]).max()) if not keep.all() else 0.0
    m_2 = frobenius(M) + e_m  # ‖M‖₂ ≤ ‖M‖_F ≤ ‖M̂‖_F + ‖M̂ − M‖_F
    g_max = f64(max((frobenius(G[:, k]) for k in range(G.shape[1])), default=0.0))
    eig_term = step * ((1.0 + omega) * (lam0 + e_tot) + omega * m_2) * g_max
    dp_term = math.sqrt(d) * b_dp * max(1.0, omega)
    B = np.abs(vecs[:, keep])
    aDP = np.abs(dP)
    rank = int(keep.sum())
    form_term = accumulation_bound(d + rank + 1, f64((aDP + B @ (B.T @ aDP)).max()))
    return eig_term + dp_term + form_term


@finite_result("Y_b", "W", "b", "grad_P", "eta")
def d6_dual_vanilla(
    *,
    Y_b: F64Array,
    W: F64Array,
    b: F64Array,
    grad_P: F64Array,
    eta: float,
    ops: DDCLOps = REFERENCE_OPS,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """D6: a DCL step moves ``P`` by ``ΔP = −η(Y_bᵀY_b + 11ᵀ)∇_P L``; that matrix is PSD; ``ΔP`` lies in
    ``span(rows Y_b) + span(1_d)``; and ``‖∇_W‖² + ‖∇_b‖² = tr(∇_Pᵀ M ∇_P)`` (so with ``M`` nonsingular the
    DCL is stationary iff the vanilla layer is)."""
    Y_ = check_array("Y_b", Y_b, 2)
    W, b = check_array("W", W, 2), check_array("b", b, 1)
    G = check_array("grad_P", grad_P, 2)
    check_dim("grad_P", G, 0, Y_.shape[1], "Y_b's width d")
    step = check_positive("eta", eta)
    n_b, d = Y_.shape
    M = dcl.dcl_preconditioner(Y_)
    P0 = ops.dcl_prototypes(Y_, W, b)
    W1, b1 = ops.dcl_step(Y_, W, b, G, step)
    dP = ops.dcl_prototypes(Y_, W1, b1) - P0
    predicted = -step * M @ G
    s_dp = step * f64((np.abs(M) @ np.abs(G)).max()) + 2.0 * f64(np.abs(P0).max())
    b_dp = accumulation_bound(_m(n_b, d), s_dp) + _d6_underflow_dp(Y_, G, step)
    ev, vecs = np.linalg.eigh(M)
    m_norm = f64(ev[-1])
    b_ev = accumulation_bound(_m(n_b, d), d * m_norm)
    # Range of M = span(rows Y_b) + span(1): eigenvectors with eigenvalue above its rounding level.
    keep = ev > b_ev
    basis = vecs[:, keep]
    outside = dP - basis @ (basis.T @ dP)
    b_out = _d6_outside_span_bound(Y_, G, step, M, ev, vecs, keep, dP, b_dp)
    gW, gb = Y_ @ G, G.sum(axis=0)
    energy = f64(np.sum(gW * gW) + np.sum(gb * gb))
    quad = f64(np.trace(G.T @ M @ G))
    b_quad = accumulation_bound(_m(n_b, d), f64(np.sum(np.abs(G).T @ np.abs(M) @ np.abs(G))))
    shape = f"n_b={n_b}, d={d}, K={G.shape[1]}, eta={step:.3g}"
    return finish(
        (
            InvariantResult("D6", "max|ΔP + η(Y_bᵀY_b + 11ᵀ)∇_P L|", f64(np.abs(dP - predicted).max()), b_dp, shape),
            InvariantResult("D6", "−λ_min(Y_bᵀY_b + 11ᵀ) (PSD)", -f64(ev[0]), b_ev, shape),
            InvariantResult("D6", "max|ΔP outside span(rows Y_b, 1_d)|", f64(np.abs(outside).max()), b_out, shape),
            InvariantResult("D6", "|‖∇_W‖² + ‖∇_b‖² − tr(∇_Pᵀ M ∇_P)|", abs(energy - quad), b_quad, shape),
        ),
        raise_on_violation,
    )


def _d6_any_update_outside_bound(
    Y_: F64Array,
    theta: F64Array,
    M: F64Array,
    ev: F64Array,
    vecs: F64Array,
    keep: np.ndarray[Any, np.dtype[np.bool_]],
    dP: F64Array,
    b_dp: float,
) -> float:
    """Error bound for ``max|ΔP − BBᵀΔP|`` when ``ΔP`` comes from *any* update of ``(W, b)``.

    Exactly, ``ΔP* = AᵀΘ`` with ``A = [Y_b; 1ᵀ]`` and ``Θ = [W⁺ − W; (b⁺ − b)ᵀ]``, so every column lies in
    ``range(Aᵀ) = range(M)``, ``M = AᵀA``. As in :func:`_d6_outside_span_bound`, ``V̂ = [B₀ B]`` are exact
    eigenvectors of ``Â = M + Δ`` (``‖Δ‖₂ ≤ E``), orthogonal to ``ω``. Then ``ÂB₀ = B₀Λ̂₀`` gives
    ``‖AB₀x‖² = xᵀB₀ᵀ(Â − Δ)B₀x ≤ (1 + ω)(max|λ̂₀| + E)‖x‖²``, and ``I − BBᵀ = B₀B₀ᵀ + (I − V̂V̂ᵀ)``, so per
    column ``‖(I − BBᵀ)Aᵀθ‖ ≤ ((1 + ω)√(max|λ̂₀| + E) + ω‖A‖₂)‖θ‖`` with ``‖A‖₂ = √‖M‖₂``. The rounding
    ``e`` of ``ΔP`` (``|e| ≤ b_dp`` entrywise) adds ``(1 + 2ω)√d·b_dp``, and forming ``ΔP − B(BᵀΔP)`` adds
    ``γ_{d+rank+1}(|ΔP| + |B|(|B|ᵀ|ΔP|))``. ``‖θ‖`` is that of the computed difference, enlarged by its
    rounding. Unlike the gradient step's bound, nothing here assumes ``Θ = −η A∇_P L``.
    """
    n_b, d = Y_.shape
    aY = np.abs(Y_)
    e_m = accumulation_bound(n_b + 1, frobenius(aY.T @ aY + 1.0))
    e_tot = eigh_error_bound(M) + e_m
    omega = frobenius(vecs.T @ vecs - np.eye(d)) + accumulation_bound(d, float(d))
    lam0 = f64(np.abs(ev[~keep]).max()) if not keep.all() else 0.0
    m_2 = frobenius(M) + e_m
    t_max = f64(max((frobenius(theta[:, k]) for k in range(theta.shape[1])), default=0.0))
    t_max += accumulation_bound(n_b + 2, t_max)
    eig_term = ((1.0 + omega) * math.sqrt(lam0 + e_tot) + omega * math.sqrt(m_2)) * t_max
    dp_term = (1.0 + 2.0 * omega) * math.sqrt(d) * b_dp
    B = np.abs(vecs[:, keep])
    aDP = np.abs(dP)
    form_term = accumulation_bound(d + int(keep.sum()) + 1, f64((aDP + B @ (B.T @ aDP)).max()))
    return eig_term + dp_term + form_term


D6_ANY_UPDATE_SPAN_CHECK = "max|ΔP outside span(rows Y_b, 1_d)| (any update of (W, b))"


@finite_result("Y_b", "W", "b", "W_next", "b_next", "grad_P")
def d6_any_update(
    *,
    Y_b: F64Array,
    W: F64Array,
    b: F64Array,
    W_next: F64Array,
    b_next: F64Array,
    grad_P: F64Array,
    ops: DDCLOps = REFERENCE_OPS,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """The parts of D6 that hold for *every* update ``(W, b) → (W_next, b_next)`` of the dual layer (Adam's,
    momentum's, any): ``ΔP = P(W_next, b_next) − P(W, b)`` lies in ``span(rows Y_b) + span(1_d)`` (``P`` is
    linear in ``(W, b)``), and ``‖∇_W L‖² + ‖∇_b L‖² = tr(∇_Pᵀ M ∇_P)`` at ``(W, b)`` (so with ``M``
    nonsingular the dual layer's stationary points are the vanilla layer's, whatever the optimiser).
    What it does not check, because it fails for such updates: ``ΔP = −ηM∇_P L``
    (:func:`d6_dual_vanilla`, gradient steps only; the registry's falsifier ``d6_adam_step``)."""
    Y_ = check_array("Y_b", Y_b, 2)
    W0, b0 = check_array("W", W, 2), check_array("b", b, 1)
    W1, b1 = check_array("W_next", W_next, 2), check_array("b_next", b_next, 1)
    G = check_array("grad_P", grad_P, 2)
    check_dim("W", W0, 0, Y_.shape[0], "Y_b's batch size n_b")
    check_dim("grad_P", G, 0, Y_.shape[1], "Y_b's width d")
    if W1.shape != W0.shape or b1.shape != b0.shape or b0.shape[0] != W0.shape[1] or G.shape[1] != W0.shape[1]:
        raise ValueError(
            f"W_next, b_next, grad_P: expected shapes {W0.shape}, ({W0.shape[1]},), (d, {W0.shape[1]}); "
            f"got {W1.shape}, {b1.shape}, {G.shape}"
        )
    n_b, d = Y_.shape
    M = dcl.dcl_preconditioner(Y_)
    P0 = ops.dcl_prototypes(Y_, W0, b0)
    P1 = ops.dcl_prototypes(Y_, W1, b1)
    dP = P1 - P0
    theta = np.vstack([W1 - W0, (b1 - b0)[None, :]])
    s_dp = f64((np.abs(Y_).T @ np.abs(W0) + np.abs(b0)[None, :]).max())
    s_dp += f64((np.abs(Y_).T @ np.abs(W1) + np.abs(b1)[None, :]).max()) + f64(np.abs(dP).max())
    b_dp = accumulation_bound(_m(2 * n_b, d), s_dp)
    ev, vecs = np.linalg.eigh(M)
    b_ev = accumulation_bound(_m(n_b, d), d * f64(ev[-1]))
    keep = ev > b_ev
    basis = vecs[:, keep]
    outside = dP - basis @ (basis.T @ dP)
    b_out = _d6_any_update_outside_bound(Y_, theta, M, ev, vecs, keep, dP, b_dp)
    gW, gb = Y_ @ G, G.sum(axis=0)
    energy = f64(np.sum(gW * gW) + np.sum(gb * gb))
    quad = f64(np.trace(G.T @ M @ G))
    b_quad = accumulation_bound(_m(n_b, d), f64(np.sum(np.abs(G).T @ np.abs(M) @ np.abs(G))))
    shape = f"n_b={n_b}, d={d}, K={G.shape[1]}"
    return finish(
        (
            InvariantResult("D6", D6_ANY_UPDATE_SPAN_CHECK, f64(np.abs(outside).max()), b_out, shape),
            InvariantResult("D6", "|‖∇_W‖² + ‖∇_b‖² − tr(∇_Pᵀ M ∇_P)|", abs(energy - quad), b_quad, shape),
        ),
        raise_on_violation,
    )


__all__ = [
    "D6_ANY_UPDATE_SPAN_CHECK",
    "REFERENCE_OPS",
    "Arrays2",
    "CollapseStatus",
    "DDCLOps",
    "at_least_two_prototypes",
    "collapse_status",
    "collapsed_prototypes",
    "d1_decomposition",
    "d2_free_energy_gradients",
    "d3_lyapunov",
    "d4_anti_collapse",
    "d5_prototype_pruning",
    "d6_any_update",
    "d6_dual_vanilla",
    "dcl_preconditioner_nonsingular",
    "eta_positive",
    "gradient_step",
    "prototype_not_sole_owner",
    "q_row_stochastic",
    "step_size_at_most_half",
    "step_size_in_unit_interval",
    "temperature_below_critical",
    "temperature_positive",
]
