"""Falsifiers and conclusion predicates of the DDCL claims D1–D6.

For every hypothesis of a ``proved`` DDCL claim there is either a falsifier here (inputs violating that
hypothesis, and only it, on which the claim's conclusion predicate is false) or a stated reason in the
registry (``Claim.no_falsifier``) why no counterexample can exist.

Conclusion predicates (``d1_conclusion`` … ``d6_conclusion``): on inputs the reference evaluates, they
are the claim's invariant (the code the trainer calls), plus — where the invariant checks only what
holds on both sides of a hypothesis — the part of the conclusion it leaves out (D4: "collapse is
unstable", D6: "the same stationary points"). The reference refuses some inputs outside the
hypotheses by raising (``T_P ≤ 0``, a ``Q`` that is not row-stochastic, ``η ≤ 0``); there the predicate
evaluates the mathematical statement directly, with the formulas of docs/theory.md, each one written
below for any non-zero ``T_P``. All inputs are deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from reference import dcl, ddcl
from reference._arrays import F64Array, arr, f64
from reference.claims.records import Counterexample, conclusion_from_invariant
from reference.invariants import ddcl as inv
from reference.optim import Adam, LearningRates
from reference.tolerances import accumulation_bound

# Relative tolerance of the direct evaluations outside the reference's domain (central differences with
# step h = 1e-5 are accurate to ~1e-9 on the small inputs used here; every violation shown is O(0.1)).
_DIRECT_RTOL = 1e-6
_FD_STEP = 1e-5


def _line_tokens() -> np.ndarray:
    """Six tokens in R² spread along the first axis (Cov has λ_max = 35/12 on e₁, 0 on e₂)."""
    return np.array([[float(t), 0.0] for t in range(-2, 4)])  # ȳ = (0.5, 0)


# --------------------------------------------------------------------------------------------------
# The DDCL formulas at any non-zero temperature (the reference refuses T_P ≤ 0 by design)
# --------------------------------------------------------------------------------------------------


def _check_temperature(T_P: float) -> float:
    T = float(T_P)
    if not math.isfinite(T) or T == 0.0:
        raise ValueError(
            f"T_P = {T_P!r}: the DDCL statements are undefined (softmax(−D/T_P) and F divide by T_P); "
            "T_P = 0 is the hard-assignment limit, where F = mean min_j D_tj is not differentiable at ties"
        )
    return T


def assignments_any_temperature(Y: F64Array, P: F64Array, T_P: float) -> F64Array:
    """``q_t = softmax(−D_t/T_P)`` for any finite ``T_P ≠ 0`` (for ``T_P < 0`` it favours the *farthest*
    prototypes). Equals :func:`reference.ddcl.assignments` for ``T_P > 0``."""
    T = _check_temperature(T_P)
    logits = -ddcl.squared_distances(Y, P) / T
    E = np.exp(logits - logits.max(axis=1, keepdims=True))
    return arr(E / E.sum(axis=1, keepdims=True))


def _log_partition(L: F64Array) -> F64Array:
    """Row-wise ``log Σ_k exp(L_tk)``, stabilised."""
    m = L.max(axis=1)
    return arr(m + np.log(np.exp(L - m[:, None]).sum(axis=1)))


def _free_energy_any_T(Y: F64Array, P: F64Array, T: float) -> float:
    """``F = −(T/n) Σ_t log Σ_j exp(−D_tj/T)``."""
    return f64(np.mean(-T * _log_partition(arr(-ddcl.squared_distances(Y, P) / T))))


def _grad_free_energy_any_T(Y: F64Array, P: F64Array, T: float) -> F64Array:
    """``∇_P F``: ``∂F/∂D = Q/n`` (softmax is the gradient of log-sum-exp, for any ``T ≠ 0``)."""
    Q = assignments_any_temperature(Y, P, T)
    return ddcl.pullback_distances(Y, P, arr(Q / Y.shape[0]))[1]


def _quantisation_any_T(Y: F64Array, P: F64Array, T: float) -> float:
    """``L_q = (1/n) Σ_tj q_tj D_tj`` with ``Q = softmax(−D/T)``."""
    return f64(np.sum(assignments_any_temperature(Y, P, T) * ddcl.squared_distances(Y, P)) / Y.shape[0])


def _grad_quantisation_full_any_T(Y: F64Array, P: F64Array, T: float) -> F64Array:
    """``∇_P L_q`` through ``Q``: ``n ∂L_q/∂D_tk = q_tk(1 − (D_tk − D̄_t)/T)`` (derivation algebraic in T)."""
    D = ddcl.squared_distances(Y, P)
    Q = assignments_any_temperature(Y, P, T)
    centred = np.einsum("tj,tkj->tk", Q, D[:, :, None] - D[:, None, :])
    return ddcl.pullback_distances(Y, P, arr(Q * (1.0 - centred / T) / Y.shape[0]))[1]


def _vec(P: F64Array) -> F64Array:
    """``vec(P) = [p_1; …; p_K]`` (column-major, the Hessians' convention)."""
    return arr(P.flatten(order="F"))


def _fd_gradient(f: Callable[[F64Array], float], P: F64Array) -> F64Array:
    """Central differences of ``f`` at ``P`` (an independent check of an analytic gradient)."""
    h = _FD_STEP * max(1.0, f64(np.abs(P).max()))
    g = np.zeros_like(P)
    for idx in np.ndindex(P.shape):
        E = np.zeros_like(P)
        E[idx] = h
        g[idx] = (f(arr(P + E)) - f(arr(P - E))) / (2.0 * h)
    return arr(g)


def _fd_hessian(grad: Callable[[F64Array], F64Array], P: F64Array) -> F64Array:
    """``dK×dK`` Hessian in ``vec(P)`` by central differences of an analytic gradient, symmetrised."""
    h = _FD_STEP * max(1.0, f64(np.abs(P).max()))
    n = P.size
    H = np.zeros((n, n))
    for k in range(n):
        e = np.zeros(n)
        e[k] = h
        E = e.reshape(P.shape, order="F")
        H[:, k] = (_vec(grad(arr(P + E))) - _vec(grad(arr(P - E)))) / (2.0 * h)
    return arr(0.5 * (H + H.T))


def _close(a: F64Array | float, b: F64Array | float, scale: float) -> bool:
    return bool(np.all(np.abs(np.asarray(a) - np.asarray(b)) <= _DIRECT_RTOL * (1.0 + scale)))


def _at_most(a: float, b: float, scale: float) -> bool:
    return bool(a <= b + _DIRECT_RTOL * (1.0 + scale))


# --------------------------------------------------------------------------------------------------
# Conclusion predicates
# --------------------------------------------------------------------------------------------------

# "Every check of the claim's invariant holds": the code the trainer and the tests call, on the inputs the
# reference accepts. Each predicate below starts from it.
_INVARIANT_HOLDS: dict[str, Callable[..., bool]] = {
    "D1": conclusion_from_invariant(inv.d1_decomposition),
    "D2": conclusion_from_invariant(inv.d2_free_energy_gradients),
    "D3": conclusion_from_invariant(inv.d3_lyapunov),
    "D4": conclusion_from_invariant(inv.d4_anti_collapse),
    "D5": conclusion_from_invariant(inv.d5_prototype_pruning),
    "D6": conclusion_from_invariant(inv.d6_dual_vanilla),
}


def _quantisation_loss_any_Q(Y: F64Array, P: F64Array, Q: F64Array) -> float:
    return f64(np.sum(Q * ddcl.squared_distances(Y, P)) / Y.shape[0])


def _ols_loss_any_Q(Y: F64Array, P: F64Array, Q: F64Array) -> float:
    R = Y - Q @ P.T
    return f64(np.sum(R * R) / Y.shape[0])


def _prototype_variance_any_Q(P: F64Array, Q: F64Array) -> float:
    diff = P.T[None, :, :] - (Q @ P.T)[:, None, :]
    return f64(np.einsum("tk,tkd,tkd->", Q, diff, diff) / Q.shape[0])


# The reference's L_q, L_OLS and V refuse a Q that is not row-stochastic (check_assignments); these are
# the same three definitions (docs/theory.md, D1) without that check, so that D1's invariant — its own
# checks and bounds, unchanged — can evaluate the statement on such a Q.
_ANY_Q_OPS = dataclasses.replace(
    inv.REFERENCE_OPS,
    quantisation_loss=_quantisation_loss_any_Q,
    ols_loss=_ols_loss_any_Q,
    prototype_variance=_prototype_variance_any_Q,
)


def d1_conclusion(*, Y: F64Array, P: F64Array, Q: F64Array, **_: Any) -> bool:
    """D1 holds: ``L_q = L_OLS + V``, ``V ≥ 0``, ``V = ½ΣΣ q_j q_k‖p_j − p_k‖²`` (D1's invariant; for a
    ``Q`` that is not row-stochastic, with the definitions the reference refuses to evaluate there)."""
    ops = inv.REFERENCE_OPS if inv.q_row_stochastic(Q=Q) else _ANY_Q_OPS
    return _INVARIANT_HOLDS["D1"](Y=Y, P=P, Q=Q, ops=ops)


def d2_statement_any_temperature(Y: F64Array, P: F64Array, T_P: float) -> bool:
    """D2's statement evaluated directly at any ``T_P ≠ 0`` (the reference refuses ``T_P ≤ 0``).

    ``L_q = F + T_P·H̄``; ``∇_P F`` (central differences of ``F``) equals ``(2/n)(P diag(Qᵀ1) − YᵀQ)`` and
    ``∇_P L_q|_Q``; ``∇_P V|_Q = ∇_P L_q|_Q − ∇_P L_OLS|_Q``; ``Σ_q ⪰ 0``, ``Σ_q 1 = 0``,
    ``tr Σ_q = mean(1 − ‖q_t‖²)``; the full gradient of ``L_q`` through ``Q`` equals central differences
    of ``L_q``. Every quantity that takes only a row-stochastic ``Q`` is the reference's.
    """
    T = _check_temperature(T_P)
    n = Y.shape[0]
    Q = assignments_any_temperature(Y, P, T)
    D = ddcl.squared_distances(Y, P)
    scale = f64(D.max()) + abs(T) * math.log(max(P.shape[1], 2))
    F = _free_energy_any_T(Y, P, T)
    ok = _close(ddcl.quantisation_loss(Y, P, Q), F + T * ddcl.mean_entropy(Q), scale)
    g_fd = _fd_gradient(lambda X: _free_energy_any_T(Y, X, T), P)
    formula = (2.0 / n) * (P * Q.sum(axis=0)[None, :] - Y.T @ Q)
    g_fixed = ddcl.grad_quantisation_fixed_Q(Y, P, Q)[1]
    g_scale = f64(np.abs(P).max()) + f64(np.abs(Y).max())
    ok &= _close(g_fd, formula, g_scale) and _close(g_fd, g_fixed, g_scale)
    g_ols = -(2.0 / n) * (Y - Q @ P.T).T @ Q
    ok &= _close(ddcl.grad_variance_fixed_Q(P, Q), g_fixed - g_ols, g_scale)
    Sq = ddcl.assignment_covariance(Q)
    ok &= _at_most(-f64(np.linalg.eigvalsh(0.5 * (Sq + Sq.T))[0]), 0.0, 1.0)
    ok &= _close(Sq.sum(axis=1), 0.0, 1.0) and _close(f64(np.trace(Sq)), f64(np.mean(1.0 - np.sum(Q * Q, axis=1))), 1.0)
    ok &= _close(_fd_gradient(lambda X: _quantisation_any_T(Y, X, T), P), _grad_quantisation_full_any_T(Y, P, T), scale)
    return bool(ok)


def d2_conclusion(*, Y: F64Array, P: F64Array, T_P: float, **_: Any) -> bool:
    """D2 holds: its invariant for ``T_P > 0``; for ``T_P < 0``, where the reference refuses to compute,
    :func:`d2_statement_any_temperature`. Raises for ``T_P = 0`` (the statement is undefined there)."""
    if inv.temperature_positive(T_P=T_P):
        return _INVARIANT_HOLDS["D2"](Y=Y, P=P, T_P=T_P)
    return d2_statement_any_temperature(Y, P, T_P)


def _d3_statement_any_T(Y: F64Array, P: F64Array, T: float, eta: float) -> bool:
    """D3's checks evaluated directly (T ≠ 0): smoothness ``λ_max(∇²F − (2/n)diag(n_j)⊗I) ≤ 0`` (Hessian by
    central differences of ``∇F``), ``2n_j/n ≤ 2``, descent and Lyapunov for ``P⁺ = P − η∇F``, and for
    ``η ≤ 1/2`` the convex-combination form of ``P⁺``."""
    n, d = Y.shape
    Q = assignments_any_temperature(Y, P, T)
    nj = Q.sum(axis=0)
    H = _fd_hessian(lambda X: _grad_free_energy_any_T(Y, X, T), P)
    scale = f64(ddcl.squared_distances(Y, P).max()) + abs(T)
    ok = _at_most(f64(np.linalg.eigvalsh(H - np.kron(np.diag(2.0 * nj / n), np.eye(d)))[-1]), 0.0, scale)
    ok &= _at_most(f64(2.0 * nj.max() / n), 2.0, 1.0)
    g = _grad_free_energy_any_T(Y, P, T)
    P_next = arr(P - eta * g)
    F0, F1 = _free_energy_any_T(Y, P, T), _free_energy_any_T(Y, P_next, T)
    ok &= _at_most(F1 - F0 + eta * (1.0 - eta) * f64(np.sum(g * g)), 0.0, scale)
    ok &= _at_most(F1 - F0, 0.0, scale)
    if 0.0 < eta <= 0.5:
        coeff = 1.0 - 2.0 * eta * nj / n
        ok &= _at_most(-f64(coeff.min()), 0.0, 1.0)
        ok &= _close(P_next, P * coeff[None, :] + (2.0 * eta / n) * (Y.T @ Q), scale)
    return bool(ok)


def d3_conclusion(*, Y: F64Array, P: F64Array, T_P: float, eta: float, **_: Any) -> bool:
    """D3 holds: its invariant for ``T_P > 0``; for ``T_P < 0`` (refused by the reference) the same checks
    evaluated directly (:func:`_d3_statement_any_T`)."""
    if inv.temperature_positive(T_P=T_P):
        return _INVARIANT_HOLDS["D3"](Y=Y, P=P, T_P=T_P, eta=eta)
    return _d3_statement_any_T(Y, P, _check_temperature(T_P), eta)


def d4_conclusion(*, Y: F64Array, K: int, T_P: float, **_: Any) -> bool:
    """D4 holds: collapse is stationary for ``F`` and ``L_q`` and *unstable* for both (a negative Hessian
    eigenvalue at collapse).

    For ``T_P > 0``: D4's invariant (stationarity and the exact smallest eigenvalues, which hold at every
    temperature) and the sign of ``λ_min`` of the reference Hessians at collapse — the invariant alone
    would hold at ``T_P ≥ T_c`` too, where the conclusion "unstable" is false. For ``T_P < 0`` (refused by
    the reference): the analytic gradients and central-difference Hessians at collapse.
    """
    P0 = inv.collapsed_prototypes(Y, K)
    if inv.temperature_positive(T_P=T_P):
        if not _INVARIANT_HOLDS["D4"](Y=Y, K=K, T_P=T_P):
            return False
        lam_F = f64(np.linalg.eigvalsh(ddcl.hessian_free_energy(Y, P0, T_P))[0])
        lam_L = f64(np.linalg.eigvalsh(ddcl.hessian_quantisation(Y, P0, T_P))[0])
        return lam_F < 0.0 and lam_L < 0.0
    T = _check_temperature(T_P)
    scale = f64(np.abs(Y).max()) + 1.0
    stationary = _close(_grad_free_energy_any_T(Y, P0, T), 0.0, scale) and _close(
        _grad_quantisation_full_any_T(Y, P0, T), 0.0, scale
    )
    lam_F = f64(np.linalg.eigvalsh(_fd_hessian(lambda X: _grad_free_energy_any_T(Y, X, T), P0))[0])
    lam_L = f64(np.linalg.eigvalsh(_fd_hessian(lambda X: _grad_quantisation_full_any_T(Y, X, T), P0))[0])
    return bool(stationary and lam_F < 0.0 and lam_L < 0.0)


def d5_statement_any_temperature(Y: F64Array, P: F64Array, T_P: float, j: int) -> bool:
    """D5's statement evaluated directly at any ``T_P ≠ 0`` and any ``q_tj``, with ``log(1 − q_tj)`` in the
    exact form ``log Σ_{k≠j} e^{−D_tk/T} − log Σ_k e^{−D_tk/T}`` (finite even where ``q_tj`` rounds to 1).

    ``ΔF`` is measured as the difference of two free energies; checked: ``ΔF = −(T/n) Σ_t log(1 − q_tj)``,
    ``ΔF ≥ 0`` and ``ΔF ≤ (T/n) Σ_t q_tj/(1 − q_tj)``.
    """
    T = _check_temperature(T_P)
    K = P.shape[1]
    if K < 2:
        raise ValueError("K = 1: removing the only prototype leaves no free energy to compare (undefined)")
    L = arr(-ddcl.squared_distances(Y, P) / T)
    lse_all = _log_partition(L)
    lse_rest = _log_partition(arr(np.delete(L, j, axis=1)))
    log_1mq = lse_rest - lse_all
    n = Y.shape[0]
    measured = _free_energy_any_T(Y, arr(np.delete(P, j, axis=1)), T) - _free_energy_any_T(Y, P, T)
    predicted = f64(-T * np.sum(log_1mq) / n)
    # q/(1 − q) = e^{−D_j/T} / Σ_{k≠j} e^{−D_k/T}; for a token j owns alone in floats it exceeds the
    # float range, and inf is then the correctly rounded bound (the comparison ΔF ≤ inf is exact).
    with np.errstate(over="ignore"):
        upper = f64(T * np.sum(np.exp(L[:, j] - lse_rest)) / n)
    scale = abs(predicted) + f64(np.abs(L).max()) * abs(T)
    return _close(measured, predicted, scale) and _at_most(-measured, 0.0, scale) and _at_most(measured, upper, scale)


def d5_conclusion(*, Y: F64Array, P: F64Array, T_P: float, j: int, **_: Any) -> bool:
    """D5 holds: its invariant where the reference evaluates it (``T_P > 0``, ``K ≥ 2``, every ``q_tj < 1`` in
    floats); elsewhere (``T_P < 0``, or a token that prototype ``j`` owns alone in floats, where the
    invariant's bound is infinite and certifies nothing) :func:`d5_statement_any_temperature`."""
    if inv.temperature_positive(T_P=T_P) and inv.prototype_not_sole_owner(Y=Y, P=P, T_P=T_P, j=j):
        return _INVARIANT_HOLDS["D5"](Y=Y, P=P, T_P=T_P, j=j)
    return d5_statement_any_temperature(Y, P, T_P, j)


def not_sole_owner(*, Y: F64Array, P: F64Array, T_P: float, j: int, **_: Any) -> bool:
    """D5's hypothesis ``K ≥ 2`` and ``q_tj < 1`` for all t (in floats), at any ``T_P ≠ 0``:
    :func:`reference.invariants.ddcl.prototype_not_sole_owner` for ``T_P > 0``, the same test on
    ``softmax(−D/T_P)`` otherwise (so that it can be evaluated on D5's negative-temperature falsifier)."""
    if inv.temperature_positive(T_P=T_P):
        return inv.prototype_not_sole_owner(Y=Y, P=P, T_P=T_P, j=j)
    return P.shape[1] >= 2 and bool(np.all(assignments_any_temperature(Y, P, T_P)[:, j] < 1.0))


def _stationary_points_agree(Y_b: F64Array, grad_P: F64Array) -> bool:
    """D6's last part on one gradient: the DCL is stationary (``∇_W L = 0``, ``∇_b L = 0`` up to the rounding
    bound of ``‖∇_W‖² + ‖∇_b‖²``) iff the vanilla layer is (``∇_P L = 0``)."""
    gW, gb = dcl.dcl_gradients(Y_b, grad_P)
    M = dcl.dcl_preconditioner(Y_b)
    energy = f64(np.sum(gW * gW) + np.sum(gb * gb))
    bound = accumulation_bound(
        Y_b.shape[0] + Y_b.shape[1] + 8, f64(np.sum(np.abs(grad_P).T @ np.abs(M) @ np.abs(grad_P)))
    )
    return (energy <= bound) == bool(np.all(grad_P == 0.0))


def _d6_statement_any_eta(
    Y_b: F64Array,
    W: F64Array,
    b: F64Array,
    grad_P: F64Array,
    eta: float,
    update: tuple[F64Array, F64Array] | None = None,
) -> bool:
    """D6 evaluated directly for any real ``η`` (the reference's ``dcl_step`` refuses ``η ≤ 0``) and any given
    update ``(W, b) → update`` (default: the gradient step ``(W, b) − η(∇_W L, ∇_b L)``): the update moves
    ``P`` by ``−η M ∇_P L``, inside ``range(M)``; ``M ⪰ 0``; ``‖∇_W‖² + ‖∇_b‖² = tr(∇_Pᵀ M ∇_P)``; the
    stationary points agree."""
    gW, gb = dcl.dcl_gradients(Y_b, grad_P)
    M = dcl.dcl_preconditioner(Y_b)
    W1, b1 = (arr(W - eta * gW), arr(b - eta * gb)) if update is None else update
    dP = dcl.dcl_prototypes(Y_b, W1, b1) - dcl.dcl_prototypes(Y_b, W, b)
    scale = f64((np.abs(M) @ np.abs(grad_P)).max()) * (1.0 + abs(eta)) + f64(np.abs(W).max()) + f64(np.abs(b).max())
    ev, vecs = np.linalg.eigh(M)
    basis = vecs[:, ev > _DIRECT_RTOL * f64(ev[-1])]
    ok = _close(dP, -eta * M @ grad_P, scale) and _at_most(-f64(ev[0]), 0.0, f64(ev[-1]))
    ok &= _close(dP - basis @ (basis.T @ dP), 0.0, scale)
    quad = f64(np.trace(grad_P.T @ M @ grad_P))
    ok &= _close(f64(np.sum(gW * gW) + np.sum(gb * gb)), quad, abs(quad))
    return bool(ok and _stationary_points_agree(Y_b, grad_P))


def d6_conclusion(
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
    """D6 holds: its invariant (for ``η > 0``; :func:`_d6_statement_any_eta` for ``η ≤ 0``, which the
    reference refuses) and "the same stationary points" on this gradient — which the invariant does not
    decide, since it is exactly what fails when ``Y_bᵀY_b + 11ᵀ`` is singular. For a given update
    ``(W_next, b_next)`` (an Adam step, say; the invariant makes only the gradient step) the statement is
    evaluated directly on that update, ``ΔP = −ηM∇_P L`` included."""
    if W_next is not None or b_next is not None:
        if W_next is None or b_next is None:
            raise ValueError("W_next, b_next: give both (an update of (W, b)) or neither (the gradient step)")
        return _d6_statement_any_eta(Y_b, W, b, grad_P, eta, (W_next, b_next))
    if not inv.eta_positive(eta=eta):
        return _d6_statement_any_eta(Y_b, W, b, grad_P, eta)
    held = _INVARIANT_HOLDS["D6"](Y_b=Y_b, W=W, b=b, grad_P=grad_P, eta=eta)
    return held and _stationary_points_agree(Y_b, grad_P)


# --------------------------------------------------------------------------------------------------
# Falsifiers
# --------------------------------------------------------------------------------------------------


def d1_rows_not_stochastic() -> Counterexample:
    """Drop "``Q`` row-stochastic": per token ``Σ_j q_j‖y − p_j‖² − ‖y − Pq‖² − Σ_j q_j‖p_j − Pq‖²`` equals
    ``(s − 1)(‖y‖² − ‖Pq‖²)`` with ``s = Σ_j q_j``, which is not 0 for rows summing to ``s = 2``."""
    Y = _line_tokens()
    P = np.array([[3.0, -1.0], [1.0, 0.0]])
    Q = arr(2.0 * ddcl.assignments(Y, P, 1.0))
    inputs: dict[str, Any] = {"Y": Y, "P": P, "Q": Q}
    results = inv.d1_decomposition(Y=Y, P=P, Q=Q, ops=_ANY_Q_OPS)
    Lq, Lols, V = _quantisation_loss_any_Q(Y, P, Q), _ols_loss_any_Q(Y, P, Q), _prototype_variance_any_Q(P, Q)
    return Counterexample(
        claim_id="D1",
        hypothesis_dropped="q_row_stochastic",
        inputs=inputs,
        observed=f"Q = 2·softmax(−D), rows sum to 2: L_q = {Lq:.6g}, L_OLS + V = {Lols + V:.6g} "
        f"(residual {Lq - Lols - V:.4g}, bound {results[0].bound:.2g}); D1 checks violated: "
        f"{[r.check for r in results if not r.holds]}",
        conclusion_fails=not d1_conclusion(**inputs),
    )


def d3_step_size_too_large() -> Counterexample:
    """Drop ``0 < η < 1``: with one prototype ``F = mean‖y − p‖²`` and ``p⁺ − ȳ = (1 − 2η)(p − ȳ)``, so
    ``F`` increases whenever ``|1 − 2η| > 1``, i.e. ``η > 1``. We take ``η = 1.5`` (factor −2)."""
    Y = _line_tokens()
    P = np.array([[3.0], [1.0]])
    T_P, eta = 1.0, 1.5
    F0 = ddcl.free_energy(Y, P, T_P)
    F1 = ddcl.free_energy(Y, ddcl.prototype_step(Y, P, T_P, eta), T_P)
    results = inv.d3_lyapunov(Y=Y, P=P, T_P=T_P, eta=eta)
    lyapunov = next(r for r in results if "Lyapunov" in r.check)
    inputs: dict[str, Any] = {"Y": Y, "P": P, "T_P": T_P, "eta": eta}
    return Counterexample(
        claim_id="D3",
        hypothesis_dropped="step_size_in_unit_interval",
        inputs=inputs,
        observed=f"F went from {F0:.6g} to {F1:.6g} (increase {F1 - F0:.6g}); "
        f"Lyapunov check margin {lyapunov.margin:.3g} "
        "(the descent-lemma bound itself is tight here: F is exactly quadratic with Hessian 2I)",
        conclusion_fails=not d3_conclusion(**inputs),
    )


def d3_negative_temperature() -> Counterexample:
    """Drop ``T_P > 0``: at ``T_P < 0``, ``F_t = |T| log Σ_j e^{D_tj/|T|}`` is a soft *maximum* of the
    distances and its Hessian gains ``+(1/|T|) Jᵀ(diag q − qqᵀ)J ⪰ 0``: ``∇²F ⪯ (2/n)diag(n_j)⊗I`` fails, and
    a step with ``η = 1/2`` (inside ``0 < η < 1``, even ``≤ 1/2``) increases ``F``. Tokens ``±1`` in R¹,
    prototypes ``0.5`` and ``0``: each token is assigned to its *farthest* prototype, the step pulls each
    prototype past the other, and the roles swap."""
    Y = np.array([[-1.0], [1.0]])
    P = np.array([[0.5, 0.0]])
    T_P, eta = -0.25, 0.5
    g = _grad_free_energy_any_T(Y, P, T_P)
    P_next = arr(P - eta * g)
    F0, F1 = _free_energy_any_T(Y, P, T_P), _free_energy_any_T(Y, P_next, T_P)
    n, d = Y.shape
    nj = assignments_any_temperature(Y, P, T_P).sum(axis=0)
    H = _fd_hessian(lambda X: _grad_free_energy_any_T(Y, X, T_P), P)
    gap = f64(np.linalg.eigvalsh(H - np.kron(np.diag(2.0 * nj / n), np.eye(d)))[-1])
    inputs: dict[str, Any] = {"Y": Y, "P": P, "T_P": T_P, "eta": eta}
    return Counterexample(
        claim_id="D3",
        hypothesis_dropped="temperature_positive",
        inputs=inputs,
        observed=f"T_P = {T_P}, η = {eta}: λ_max(∇²F − (2/n)diag(n_j)⊗I) = {gap:.4g} > 0 (not 2-smooth); one "
        f"step moves P from {P.ravel().tolist()} to {[round(x, 4) for x in P_next.ravel().tolist()]} and F "
        f"from {F0:.6g} to {F1:.6g} (increase {F1 - F0:.4g}): F is not a Lyapunov function",
        conclusion_fails=not d3_conclusion(**inputs),
    )


def _collapse_is_local_minimum(Y: np.ndarray, K: int, T_P: float) -> tuple[float, float]:
    """Smallest Hessian eigenvalue of ``F`` at collapse, and the prototypes' spread after 200 gradient steps
    (η = 1/2) from a 1e-3 split: a positive eigenvalue and a shrinking spread mean collapse is stable."""
    P0 = inv.collapsed_prototypes(Y, K)
    lam = f64(np.linalg.eigvalsh(ddcl.hessian_free_energy(Y, P0, T_P))[0])
    rng = np.random.default_rng(0)
    P = P0 + 1e-3 * rng.standard_normal(P0.shape)
    for _ in range(200):
        P = ddcl.prototype_step(Y, P, T_P, 0.5)
    spread = f64(np.abs(P - P.mean(axis=1, keepdims=True)).max())
    return lam, spread


def d4_temperature_above_critical() -> Counterexample:
    """Drop ``T_P < T_c``: at ``T_P = 2T_c`` every Hessian eigenvalue at collapse is ≥ (2/K)(1 − 1/2) > 0,
    so collapse is a strict local minimum: a small split of the prototypes decays back to collapse."""
    Y = _line_tokens()
    K = 3
    T_c = ddcl.collapse_critical_temperatures(Y)[0]
    T_P = 2.0 * T_c
    lam, spread = _collapse_is_local_minimum(Y, K, T_P)
    inputs: dict[str, Any] = {"Y": Y, "K": K, "T_P": T_P}
    return Counterexample(
        claim_id="D4",
        hypothesis_dropped="temperature_below_critical",
        inputs=inputs,
        observed=f"T_c={T_c:.6g}, T_P={T_P:.6g}: λ_min(∇²F) at collapse = {lam:.6g} > 0; "
        f"after 200 steps from a 1e-3 split the prototype spread is {spread:.3g} (collapsed again)",
        conclusion_fails=not d4_conclusion(**inputs),
    )


def d4_single_prototype() -> Counterexample:
    """Drop ``K ≥ 2``: with one prototype the Hessian at collapse is ``2I`` at every temperature, so even far
    below ``T_c`` collapse (``p = ȳ``, the unique minimiser) is stable."""
    Y = _line_tokens()
    K = 1
    T_P = 1e-3 * ddcl.collapse_critical_temperatures(Y)[0]
    lam, spread = _collapse_is_local_minimum(Y, K, T_P)
    inputs: dict[str, Any] = {"Y": Y, "K": K, "T_P": T_P}
    return Counterexample(
        claim_id="D4",
        hypothesis_dropped="at_least_two_prototypes",
        inputs=inputs,
        observed=f"T_P={T_P:.3g} ≪ T_c: λ_min(∇²F) at collapse = {lam:.6g} (= 2), spread after descent {spread:.3g}",
        conclusion_fails=not d4_conclusion(**inputs),
    )


def d4_negative_temperature() -> Counterexample:
    """Drop ``T_P > 0``: ``T_P = −1 < T_c``, yet collapse is a strict local minimum. The Hessian at collapse is
    ``(2/K)I − (4/(T_P K))(I − 11ᵀ/K)⊗Cov(Y)``, whose eigenvalues ``(2/K)(1 + 2λ_i/|T_P|)`` are all ≥ 2/K for
    ``T_P < 0`` (``4λ_i`` for ``L_q``): "unstable iff ``T_P < T_c``" needs ``T_P > 0``."""
    Y = _line_tokens()
    K, T_P = 3, -1.0
    P0 = inv.collapsed_prototypes(Y, K)
    lam_F = f64(np.linalg.eigvalsh(_fd_hessian(lambda X: _grad_free_energy_any_T(Y, X, T_P), P0))[0])
    lam_L = f64(np.linalg.eigvalsh(_fd_hessian(lambda X: _grad_quantisation_full_any_T(Y, X, T_P), P0))[0])
    T_c = ddcl.collapse_critical_temperatures(Y)[0]
    inputs: dict[str, Any] = {"Y": Y, "K": K, "T_P": T_P}
    return Counterexample(
        claim_id="D4",
        hypothesis_dropped="temperature_positive",
        inputs=inputs,
        observed=f"T_P = {T_P} < T_c = {T_c:.6g}, K = {K}: at collapse λ_min(∇²F) = {lam_F:.6g} and "
        f"λ_min(∇²L_q) = {lam_L:.6g} (both 2/K = {2.0 / K:.6g}): collapse is a strict local minimum, not unstable",
        conclusion_fails=not d4_conclusion(**inputs),
    )


def d5_negative_temperature() -> Counterexample:
    """Drop ``T_P > 0``: ``ΔF = −(T_P/n) Σ_t log(1 − q_tj)`` still holds, but for ``T_P < 0`` it is ``≤ 0``
    (removing a prototype lowers the soft maximum of the distances), so ``ΔF ∈ [0, …]`` fails."""
    Y = _line_tokens()
    P = np.array([[3.0, -1.0], [1.0, 0.0]])
    T_P, j = -1.0, 0
    dF = _free_energy_any_T(Y, arr(np.delete(P, j, axis=1)), T_P) - _free_energy_any_T(Y, P, T_P)
    q = assignments_any_temperature(Y, P, T_P)[:, j]
    predicted = f64(-T_P * np.sum(np.log1p(-q)) / Y.shape[0])
    upper = f64(T_P * np.sum(q / (1.0 - q)) / Y.shape[0])
    inputs: dict[str, Any] = {"Y": Y, "P": P, "T_P": T_P, "j": j}
    return Counterexample(
        claim_id="D5",
        hypothesis_dropped="temperature_positive",
        inputs=inputs,
        observed=f"T_P = {T_P}, removing prototype {j}: measured ΔF = {dF:.6g} = −(T/n)Σ log(1 − q) = "
        f"{predicted:.6g}, but ΔF < 0: the claimed interval [0, (T/n)Σ q/(1 − q)] = [0, {upper:.4g}] is empty",
        conclusion_fails=not d5_conclusion(**inputs),
    )


def d6_singular_preconditioner() -> Counterexample:
    """Drop "``Y_bᵀY_b + 11ᵀ`` nonsingular": with one feature row ``Y_b = e₁ᵀ`` in R³ the matrix has rank 2
    and kernel ``span((0, 1, −1))``. Tokens with mean ``p − (0, 1, −1)`` make ``∇_P F = 2(p − ȳ)`` lie in that
    kernel: the DCL's gradients ``∇_W = Y_b∇_P F`` and ``∇_b = (∇_P F)ᵀ1`` are exactly 0 — the DCL is at a
    stationary point — while the vanilla layer is not (it would move ``p`` to ``ȳ``)."""
    Y_b = np.array([[1.0, 0.0, 0.0]])
    W, b = np.array([[1.0]]), np.array([0.0])
    P = dcl.dcl_prototypes(Y_b, W, b)  # p = (1, 0, 0)
    Y = np.array([[1.0, -1.0, 1.0], [1.0, -1.0, 1.0]])  # ȳ = p − (0, 1, −1)
    T_P = 1.0
    grad_P = ddcl.grad_free_energy(Y, P, T_P)[1]
    gW, gb = dcl.dcl_gradients(Y_b, grad_P)
    inputs: dict[str, Any] = {"Y_b": Y_b, "W": W, "b": b, "grad_P": grad_P, "eta": 0.1, "Y": Y, "T_P": T_P}
    ev = np.linalg.eigvalsh(dcl.dcl_preconditioner(Y_b))
    return Counterexample(
        claim_id="D6",
        hypothesis_dropped="dcl_preconditioner_nonsingular",
        inputs=inputs,
        observed=f"eig(Y_bᵀY_b + 11ᵀ) = {[round(f64(x), 6) for x in ev]}; ∇_P F = {grad_P.ravel().tolist()} ≠ 0 but "
        f"∇_W = {gW.ravel().tolist()}, ∇_b = {gb.tolist()}: the DCL is stationary where the vanilla layer is not",
        conclusion_fails=not d6_conclusion(**inputs),
    )


def dcl_adam_step(
    Y_b: F64Array, W: F64Array, b: F64Array, grads_P: tuple[F64Array, ...], eta: float
) -> tuple[F64Array, F64Array]:
    """``len(grads_P)`` steps of the reference's Adam (:class:`reference.optim.Adam`, the cluster study's
    optimiser: β₁ = 0.9, β₂ = 0.999, ε = 1e-8, bias correction) on the dual layer's ``(W, b)`` at rate ``η``,
    from zero moments, step ``t`` seeing ``∇_W L = Y_b G_t`` and ``∇_b L = G_tᵀ1`` for ``G_t = grads_P[t]``.
    Each parameter gets its own one-parameter Adam under the key ``"P"``, as in the study."""
    opt = Adam(LearningRates.uniform(float(eta)))
    params = {"W": arr(np.array(W, dtype=np.float64)), "b": arr(np.array(b, dtype=np.float64))}
    states = {name: opt.init_state() for name in params}
    for G in grads_P:
        gW, gb = dcl.dcl_gradients(Y_b, G)
        for name, g in (("W", gW), ("b", gb)):
            new, states[name] = opt.step(states[name], {"P": params[name]}, {"P": g})
            params[name] = new["P"]
    return params["W"], params["b"]


def _adam_step_case() -> tuple[F64Array, F64Array, F64Array, F64Array, float]:
    """``Y_b = diag(1, 2)``, ``W = I``, ``b = 0``, one prototype column ``∇_P L = (1, 1)ᵀ``, ``η = 0.1``."""
    Y_b = np.array([[1.0, 0.0], [0.0, 2.0]])
    W = np.array([[1.0], [0.0]])
    b = np.array([0.0])
    G = np.array([[1.0], [1.0]])
    return Y_b, W, b, G, 0.1


def d6_adam_step() -> Counterexample:
    """Drop "the update is the gradient step": one Adam step. ``Y_b = diag(1, 2)``, ``M = Y_bᵀY_b + 11ᵀ =
    [[2, 1], [1, 5]]`` (nonsingular), ``∇_P L = (1, 1)ᵀ``, ``η = 0.1``. Then ``∇_W L = Y_b∇_P L = (1, 2)ᵀ``,
    ``∇_b L = 2``, and Adam's first step (``m̂ = g``, ``v̂ = g²``) moves every entry by ``−η g/(|g| + ε)``:
    ``ΔW = −η(1, 1)ᵀ/(1 + O(ε))``, ``Δb = −η``. So ``ΔP = Y_bᵀΔW + 1Δb = −η(2, 3)ᵀ`` (to ``O(ε)``), while
    ``−ηM∇_P L = −η(3, 6)ᵀ``. The two are not parallel (``2/3 ≠ 3/6``): no rate ``η'`` makes
    ``ΔP = −η'M∇_P L``; the best, ``η' = η·24/45``, leaves the relative residual ``‖(2, 3) − (24/45)(3, 6)‖ /
    ‖(2, 3)‖ = √(1/5)/√13 = 0.124``. What still holds on this step: ``ΔP`` lies in ``range(M)`` (here all of
    R², nonsingular ``M``), and Adam's first step is zero iff ``(∇_W L, ∇_b L) = 0`` iff ``∇_P L = 0``."""
    Y_b, W, b, G, eta = _adam_step_case()
    W1, b1 = dcl_adam_step(Y_b, W, b, (G,), eta)
    dP = dcl.dcl_prototypes(Y_b, W1, b1) - dcl.dcl_prototypes(Y_b, W, b)
    MG = dcl.dcl_preconditioner(Y_b) @ G
    residual = dcl.best_rate_residual(dP, MG)  # ΔP against the best multiple c·MG (c = −η')
    inputs: dict[str, Any] = {"Y_b": Y_b, "W": W, "b": b, "grad_P": G, "eta": eta, "W_next": W1, "b_next": b1}
    return Counterexample(
        claim_id="D6",
        hypothesis_dropped="gradient_step",
        inputs=inputs,
        observed=f"one Adam step (η = {eta}): ΔP = {[round(f64(x), 6) for x in dP.ravel()]}, −ηM∇_P L = "
        f"{[round(f64(-eta * x), 6) for x in MG.ravel()]}; the best rate leaves a relative residual "
        f"{residual:.3f} (no rate makes ΔP = −η'M∇_P L)",
        conclusion_fails=not d6_conclusion(**inputs),
    )


__all__ = [
    "assignments_any_temperature",
    "d1_conclusion",
    "d1_rows_not_stochastic",
    "d2_conclusion",
    "d2_statement_any_temperature",
    "d3_conclusion",
    "d3_negative_temperature",
    "d3_step_size_too_large",
    "d4_conclusion",
    "d4_negative_temperature",
    "d4_single_prototype",
    "d4_temperature_above_critical",
    "d5_conclusion",
    "d5_negative_temperature",
    "d5_statement_any_temperature",
    "d6_adam_step",
    "d6_conclusion",
    "d6_singular_preconditioner",
    "dcl_adam_step",
    "not_sole_owner",
]
