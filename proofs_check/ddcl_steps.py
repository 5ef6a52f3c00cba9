"""Symbolic steps for the DDCL claims D1–D6 (SPEC §4), checked with sympy and against ``reference``.

Every step follows one pattern (nerva-sympy, STYLE.md): tiny symbolic sizes (one token in "D-space"
with ``K = 3`` distances, or ``n ≤ 2`` tokens, ``d = 2``, ``K = 2``/``3`` in "P-space"), symbols with
declared assumptions (real coordinates, positive temperature ``T_P``), equality as
``is_zero(lhs − rhs)``; then the symbolic result is evaluated at a random float64 point from a seeded
``numpy.random.Generator`` and compared with the corresponding ``reference`` function, within the
float64 ``VALUE`` tolerance of :mod:`reference.tolerances` scaled by the magnitude of the compared
quantity. Sign conditions (``V ≥ 0``, coefficients ``≥ 0``) are shown as identities with a sum of
terms that sympy's assumption system certifies non-negative from the declared assumptions.

Conventions shared with ``reference.ddcl``: ``Y`` is n×d (rows ``y_t``), ``P`` is d×K (columns
``p_j``), ``D_tj = ‖y_t − p_j‖²``, ``Q = softmax(−D/T_P)`` row-wise, and Hessians in ``P`` use the
index ``j·d + i`` for entry ``P[i, j]`` (column-major ``vec P``), so ``∇²`` blocks are ``A_K ⊗ B_d``.

``reference`` functions are looked up through their modules at run time (``ref.free_energy``), so a
test can plant a violation by monkeypatching one of them and watch the step fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeAlias

import numpy as np
import sympy as sp
from numpy.typing import NDArray

from proofs_check.core import (
    Step,
    StepChecks,
    StepOutcome,
    as_f64,
    collect_steps,
    max_abs,
    step,
    step_rng,
    symbol_matrix,
    value_bound,
)
from reference import dcl as ref_dcl
from reference import ddcl as ref
from reference.invariants.ddcl import collapsed_prototypes

F64: TypeAlias = NDArray[np.float64]
Sym: TypeAlias = Any  # a sympy expression, symbol or matrix (sympy ships no type information)

T_P: Sym = sp.Symbol("T_P", positive=True)
ETA: Sym = sp.Symbol("eta", positive=True)


# --------------------------------------------------------------------------------------------------
# Random points (bookkeeping, seeded generators and symbol matrices: proofs_check.core)
# --------------------------------------------------------------------------------------------------


def _stochastic(rng: np.random.Generator, n: int, K: int) -> F64:
    """A random row-stochastic n×K matrix with all entries positive."""
    return as_f64(rng.dirichlet(np.ones(K), size=n))


# --------------------------------------------------------------------------------------------------
# Sympy helpers
# --------------------------------------------------------------------------------------------------


def _assign(symbols: Sym, values: F64) -> dict[Sym, float]:
    """``{symbol: value}`` entrywise for a symbol matrix and an array of the same shape."""
    vals = np.asarray(values, dtype=np.float64).reshape(symbols.shape)
    return {symbols[r, c]: float(vals[r, c]) for r in range(symbols.rows) for c in range(symbols.cols)}


def _evaluate(expr: Sym, values: Mapping[Sym, float]) -> F64:
    """Evaluate a sympy expression or matrix at a float64 point (``lambdify`` with NumPy)."""
    symbols = list(values)
    f = sp.lambdify(symbols, expr, modules="numpy")
    return as_f64(f(*(values[s] for s in symbols)))


def _sum(terms: Sequence[Sym]) -> Sym:
    return sp.Add(*terms)


def _msum(mats: Sequence[Sym]) -> Sym:
    """The sum of a non-empty list of equally shaped matrices."""
    total = mats[0]
    for m in mats[1:]:
        total = total + m
    return total


def _sq_norm(v: Sym) -> Sym:
    return _sum([x**2 for x in v])


def _vec(P: Sym) -> list[Sym]:
    """Column-major ``vec P``: entry ``P[i, j]`` at index ``j·d + i`` (the reference's Hessian index)."""
    return [P[i, j] for j in range(P.cols) for i in range(P.rows)]


def _grad(f: Sym, M: Sym) -> Sym:
    """The matrix of partial derivatives ``∂f/∂M[r, c]``."""
    return M.applyfunc(lambda x: sp.diff(f, x))


def _centering(K: int) -> Sym:
    """``I_K − 11ᵀ/K``."""
    return sp.eye(K) - sp.ones(K, K) / K


@dataclass(frozen=True)
class _Token:
    """One token in D-space: distances ``D_k`` (real), ``q = softmax(−D/T_P)`` and its functionals."""

    D: Sym  # K×1 symbols
    q: Sym  # K×1 softmax
    Dbar: Sym  # D̄ = Σ_k q_k D_k
    F: Sym  # −T_P log Σ_k exp(−D_k/T_P)
    L: Sym  # Σ_k q_k D_k (= D̄)
    H: Sym  # −Σ_k q_k log q_k


@cache
def _token(K: int) -> _Token:
    D = sp.Matrix(K, 1, lambda k, _: sp.Symbol(f"D_{k}", real=True))
    E = D.applyfunc(lambda x: sp.exp(-x / T_P))
    Z = _sum(list(E))
    q = E / Z
    Dbar = _sum([q[k] * D[k] for k in range(K)])
    H = -_sum([q[k] * sp.log(q[k]) for k in range(K)])
    return _Token(D=D, q=q, Dbar=Dbar, F=-T_P * sp.log(Z), L=Dbar, H=H)


@dataclass(frozen=True)
class _Block:
    """The DDCL block in P-space: ``Y`` (n×d), ``P`` (d×K), ``D``, softmax ``Q``, ``F``, ``L_q``."""

    n: int
    d: int
    K: int
    Y: Sym
    P: Sym
    D: Sym
    Q: Sym
    F: Sym
    Lq: Sym

    def in_D(self, expr: Sym, t: int) -> Sym:
        """A D-space expression of one token, written for token ``t`` of this block."""
        tok = _token(self.K)
        return expr.xreplace({tok.D[k]: self.D[t, k] for k in range(self.K)})

    def values(self, Y: F64, P: F64, T: float) -> dict[Sym, float]:
        return {**_assign(self.Y, Y), **_assign(self.P, P), T_P: T}

    def ybar(self) -> Sym:
        """``ȳ = (1/n) Σ_t y_t`` as a d×1 column."""
        return sp.Matrix(self.d, 1, lambda i, _: _sum([self.Y[t, i] for t in range(self.n)]) / self.n)

    def collapse(self) -> dict[Sym, Sym]:
        """The substitution ``p_j = ȳ`` for every ``j`` (the collapsed configuration)."""
        yb = self.ybar()
        return {self.P[i, j]: yb[i] for i in range(self.d) for j in range(self.K)}

    def cov(self) -> Sym:
        """``Cov(Y) = (1/n) Σ_t (y_t − ȳ)(y_t − ȳ)ᵀ`` (the 1/n convention of the reference)."""
        yb = self.ybar()
        terms = [(self.Y[t, :].T - yb) * (self.Y[t, :].T - yb).T for t in range(self.n)]
        return _msum(terms) / self.n


@cache
def _block(n: int, d: int, K: int) -> _Block:
    Y = symbol_matrix("y", n, d)
    P = symbol_matrix("p", d, K)
    D = sp.Matrix(n, K, lambda t, j: _sum([(Y[t, i] - P[i, j]) ** 2 for i in range(d)]))
    E = D.applyfunc(lambda x: sp.exp(-x / T_P))
    Zs = [_sum([E[t, k] for k in range(K)]) for t in range(n)]
    Q = sp.Matrix(n, K, lambda t, j: E[t, j] / Zs[t])
    F = -T_P / n * _sum([sp.log(Z) for Z in Zs])
    Lq = _sum([Q[t, j] * D[t, j] for t in range(n) for j in range(K)]) / n
    return _Block(n=n, d=d, K=K, Y=Y, P=P, D=D, Q=Q, F=F, Lq=Lq)


@cache
def _grad_F(n: int, d: int, K: int) -> tuple[Sym, Sym]:
    """``(∇_Y F, ∇_P F)`` by direct differentiation of the explicit free energy."""
    b = _block(n, d, K)
    return _grad(b.F, b.Y), _grad(b.F, b.P)


@cache
def _grad_Lq(n: int, d: int, K: int) -> tuple[Sym, Sym]:
    """``(∇_Y L_q, ∇_P L_q)`` by direct differentiation, softmax ``Q`` included."""
    b = _block(n, d, K)
    return _grad(b.Lq, b.Y), _grad(b.Lq, b.P)


@cache
def _hessian_F(n: int, d: int, K: int) -> Sym:
    b = _block(n, d, K)
    return sp.hessian(b.F, _vec(b.P))


@cache
def _hessian_Lq(n: int, d: int, K: int) -> Sym:
    b = _block(n, d, K)
    return sp.hessian(b.Lq, _vec(b.P))


def _pullback(Y: Sym, P: Sym, G: Sym) -> tuple[Sym, Sym]:
    """The reference's pull-back: ``∇_Y = 2(diag(G1)Y − GPᵀ)``, ``∇_P = 2(P diag(Gᵀ1) − YᵀG)``."""
    row = G * sp.ones(G.cols, 1)
    col = G.T * sp.ones(G.rows, 1)
    return 2 * (sp.diag(*row) * Y - G * P.T), 2 * (P * sp.diag(*col) - Y.T * G)


def _fixed_Q_gradient_P(Y: Sym, P: Sym, Q: Sym) -> Sym:
    """``(2/n)(P diag(Qᵀ1) − YᵀQ)``."""
    return _pullback(Y, P, Q / Y.rows)[1]


def _random_point(rng: np.random.Generator, n: int, d: int, K: int) -> tuple[F64, F64, float]:
    """Tokens, prototypes and a temperature at which no softmax saturates (``D/T_P`` is O(1)–O(10))."""
    Y = as_f64(rng.normal(size=(n, d)))
    P = as_f64(rng.normal(size=(d, K)))
    return Y, P, float(rng.uniform(0.5, 2.0))


def _cov(Y: F64) -> F64:
    E = Y - Y.mean(axis=0, keepdims=True)
    return as_f64(E.T @ E / Y.shape[0])


# --------------------------------------------------------------------------------------------------
# D1 Decomposition
# --------------------------------------------------------------------------------------------------


def _token_q(K: int) -> tuple[list[Sym], Sym]:
    """Free weights ``q_0..q_{K−2}`` and the simplex column ``q`` with ``q_{K−1} = 1 − Σ others``."""
    free = [sp.Symbol(f"q_{k}", real=True) for k in range(K - 1)]
    return free, sp.Matrix([*free, 1 - _sum(free)])


def _d1_terms(d: int, K: int) -> tuple[Sym, Sym, list[Sym], Sym, Sym, Sym, Sym]:
    """Per token: ``y``, ``P``, free q's, ``q``, and ``E_q‖y − p‖²``, ``‖y − Pq‖²``, ``Var_q(p)``."""
    y = symbol_matrix("y", d, 1)
    P = symbol_matrix("p", d, K)
    free, q = _token_q(K)
    m = P * q
    Eq = _sum([q[j] * _sq_norm(y - P[:, j]) for j in range(K)])
    ols = _sq_norm(y - m)
    var = _sum([q[j] * _sq_norm(P[:, j] - m) for j in range(K)])
    return y, P, free, q, Eq, ols, var


def _token_mean(expr: Sym, y: Sym, free: list[Sym], Y: F64, P_sym: Sym, P: F64, Q: F64) -> float:
    """``(1/n) Σ_t expr(y_t, q_t)`` for a per-token expression (``q_{K−1}`` eliminated)."""
    total = 0.0
    for t in range(Y.shape[0]):
        vals = {**_assign(y, Y[t][:, None]), **_assign(P_sym, P)}
        vals.update({free[k]: float(Q[t, k]) for k in range(len(free))})
        total += float(_evaluate(expr, vals))
    return total / int(Y.shape[0])


@step(
    "D1.1", checks=("reference.ddcl.ols_loss", "reference.ddcl.prototype_variance", "reference.ddcl.quantisation_loss")
)
def step_d1_1() -> StepOutcome:
    """Per token Σ_j q_j‖y − p_j‖² = ‖y − Σ_j q_j p_j‖² + Σ_j q_j‖p_j − Σ_k q_k p_k‖² when Σ_j q_j = 1; averaged over
    tokens, L_q = L_OLS + V.
    """
    c = StepChecks()
    d, K = 2, 3
    y, P_s, free, _q, Eq, ols, var = _d1_terms(d, K)
    c.zero("E_q‖y−p‖² = ‖y − Pq‖² + Var_q(p) (Σq = 1)", Eq - (ols + var))

    rng = step_rng("D1.1")
    n = 4
    Y, P, _ = _random_point(rng, n, d, K)
    Q = _stochastic(rng, n, K)
    Lq_ref, ols_ref, V_ref = ref.quantisation_loss(Y, P, Q), ref.ols_loss(Y, P, Q), ref.prototype_variance(P, Q)
    c.close("L_q vs reference.quantisation_loss", _token_mean(Eq, y, free, Y, P_s, P, Q), Lq_ref)
    c.close("L_OLS vs reference.ols_loss", _token_mean(ols, y, free, Y, P_s, P, Q), ols_ref)
    c.close("V vs reference.prototype_variance", _token_mean(var, y, free, Y, P_s, P, Q), V_ref)
    c.close("reference: L_q = L_OLS + V", ols_ref + V_ref, Lq_ref)
    return c.outcome()


@step("D1.2", checks=("reference.ddcl.prototype_variance",))
def step_d1_2() -> StepOutcome:
    """Per token Var_q(p) = Σ_{j<k} q_j q_k ‖p_j − p_k‖² (Σq = 1), a sum of terms ≥ 0: V ≥ 0, and V = 0 iff every pair
    with q_j q_k > 0 coincides (one-hot q or coinciding prototypes).
    """
    c = StepChecks()
    d, K = 2, 3
    y, P_s, free, q, _Eq, _ols, var = _d1_terms(d, K)
    pairs = [(j, k) for j in range(K) for k in range(j + 1, K)]
    pairwise = _sum([q[j] * q[k] * _sq_norm(P_s[:, j] - P_s[:, k]) for j, k in pairs])
    c.zero("Var_q(p) = Σ_{j<k} q_j q_k ‖p_j − p_k‖² (Σq = 1)", var - pairwise)
    # Each pair term is ≥ 0 for q ≥ 0: certified by sympy's assumptions on fresh non-negative weights.
    r = [sp.Symbol(f"r_{k}", nonnegative=True) for k in range(K)]
    c.sym(
        "q_j q_k ‖p_j − p_k‖² ≥ 0 for q ≥ 0",
        all((r[j] * r[k] * _sq_norm(P_s[:, j] - P_s[:, k])).is_nonnegative is True for j, k in pairs),
    )
    # Zero set, "if" direction: one-hot q (q_{K−1} = 1 − Σ others makes the last one-hot too) ...
    for hot in range(K):
        onehot = {free[k]: sp.Integer(1 if k == hot else 0) for k in range(K - 1)}
        c.zero(f"V = 0 at q = e_{hot}", var.xreplace(onehot))
    # ... or q spread over prototypes that coincide (support {0, 1}, p_1 = p_0).
    coincide = {free[1]: sp.Integer(1) - free[0], **{P_s[i, 1]: P_s[i, 0] for i in range(d)}}
    c.zero("V = 0 when q weights coinciding prototypes", var.xreplace(coincide))

    rng = step_rng("D1.2")
    n = 4
    Y, P, _ = _random_point(rng, n, d, K)
    Q = _stochastic(rng, n, K)
    V_ref = ref.prototype_variance(P, Q)
    c.close("V vs reference.prototype_variance", _token_mean(var, y, free, Y, P_s, P, Q), V_ref)
    c.close("pairwise form vs reference.prototype_variance", _token_mean(pairwise, y, free, Y, P_s, P, Q), V_ref)
    scale = float(np.max(P**2))
    c.at_most("reference V ≥ 0", -V_ref, 0.0, scale=scale)
    hard = as_f64(np.eye(K)[rng.integers(0, K, size=n)])
    c.close("reference V = 0 at one-hot Q", ref.prototype_variance(P, hard), 0.0, scale=scale)
    P_co = P.copy()
    P_co[:, 1] = P_co[:, 0]
    Q_co = Q.copy()
    Q_co[:, 0] += Q_co[:, 2]
    Q_co[:, 2] = 0.0
    c.close("reference V = 0 on coinciding prototypes", ref.prototype_variance(P_co, Q_co), 0.0, scale=scale)
    return c.outcome()


# --------------------------------------------------------------------------------------------------
# D2 Free energy and gradients
# --------------------------------------------------------------------------------------------------


@step(
    "D2.1",
    checks=(
        "reference.ddcl.assignments",
        "reference.ddcl.free_energy",
        "reference.ddcl.mean_entropy",
        "reference.ddcl.quantisation_loss",
    ),
)
def step_d2_1() -> StepOutcome:
    """With q = softmax(−D/T_P): Σ_k q_k D_k = −T_P log Σ_k exp(−D_k/T_P) + T_P H(q), hence L_q = F + T_P·H̄."""
    c = StepChecks()
    K = 3
    tok = _token(K)
    c.zero("Σ q_k D_k = F + T_P·H (softmax q, one token)", tok.L - (tok.F + T_P * tok.H))

    rng = step_rng("D2.1")
    n, d = 3, 2
    b = _block(n, d, K)
    Y, P, T = _random_point(rng, n, d, K)
    vals = b.values(Y, P, T)
    mean = {
        name: float(_evaluate(_sum([b.in_D(e, t) for t in range(n)]) / n, vals))
        for name, e in (("L", tok.L), ("F", tok.F), ("H", tok.H))
    }
    Q = ref.assignments(Y, P, T)
    Lq_ref, F_ref, H_ref = ref.quantisation_loss(Y, P, Q), ref.free_energy(Y, P, T), ref.mean_entropy(Q)
    c.close("L_q vs reference.quantisation_loss", mean["L"], Lq_ref)
    c.close("F vs reference.free_energy", mean["F"], F_ref)
    c.close("H̄ vs reference.mean_entropy", mean["H"], H_ref)
    c.close("reference: L_q = F + T_P·H̄", F_ref + T * H_ref, Lq_ref, scale=abs(F_ref) + T * H_ref)
    return c.outcome()


@step("D2.2", checks=("reference.ddcl.grad_quantisation_fixed_Q",))
def step_d2_2() -> StepOutcome:
    """With Q fixed: ∇_P L_q = (2/n)(P diag(Qᵀ1) − YᵀQ) (and ∇_Y L_q = (2/n)(diag(Q1)Y − QPᵀ))."""
    c = StepChecks()
    n, d, K = 2, 2, 3
    Y, P, Q = symbol_matrix("y", n, d), symbol_matrix("p", d, K), symbol_matrix("q", n, K)
    L = _sum([Q[t, j] * _sq_norm(Y[t, :].T - P[:, j]) for t in range(n) for j in range(K)]) / n
    gY, gP = _grad(L, Y), _grad(L, P)
    form_Y, form_P = _pullback(Y, P, Q / n)
    c.zero("∇_P L_q|_Q = (2/n)(P diag(Qᵀ1) − YᵀQ)", gP - form_P)
    c.zero("∇_Y L_q|_Q = (2/n)(diag(Q1)Y − QPᵀ)", gY - form_Y)

    rng = step_rng("D2.2")
    Yv, Pv, _ = _random_point(rng, n, d, K)
    Qv = _stochastic(rng, n, K)
    vals = {**_assign(Y, Yv), **_assign(P, Pv), **_assign(Q, Qv)}
    ref_Y, ref_P = ref.grad_quantisation_fixed_Q(Yv, Pv, Qv)
    c.close("∇_P vs reference.grad_quantisation_fixed_Q", _evaluate(gP, vals), ref_P)
    c.close("∇_Y vs reference.grad_quantisation_fixed_Q", _evaluate(gY, vals), ref_Y)
    return c.outcome()


@step(
    "D2.3",
    checks=(
        "reference.ddcl.assignments",
        "reference.ddcl.grad_free_energy",
        "reference.ddcl.grad_quantisation_fixed_Q",
    ),
)
def step_d2_3() -> StepOutcome:
    """Envelope: ∇_P F = (2/n)(P diag(Qᵀ1) − YᵀQ) with Q = softmax(−D/T_P), i.e. ∇_P F = ∇_P L_q|_{Q fixed}."""
    c = StepChecks()
    n, d, K = 2, 2, 2
    b = _block(n, d, K)
    gY, gP = _grad_F(n, d, K)
    form_Y, form_P = _pullback(b.Y, b.P, b.Q / n)
    c.zero("∇_P F = (2/n)(P diag(Qᵀ1) − YᵀQ) with Q = softmax (envelope)", gP - form_P)
    c.zero("∇_Y F = (2/n)(diag(Q1)Y − QPᵀ)", gY - form_Y)

    rng = step_rng("D2.3")
    Y, P, T = _random_point(rng, n, d, K)
    vals = b.values(Y, P, T)
    ref_Y, ref_P = ref.grad_free_energy(Y, P, T)
    c.close("∇_P F vs reference.grad_free_energy", _evaluate(gP, vals), ref_P)
    c.close("∇_Y F vs reference.grad_free_energy", _evaluate(gY, vals), ref_Y)
    _, fixed_P = ref.grad_quantisation_fixed_Q(Y, P, ref.assignments(Y, P, T))
    c.close("reference: ∇_P F = ∇_P L_q|_Q", ref_P, fixed_P)
    return c.outcome()


def _row_stochastic(n: int, K: int) -> tuple[Sym, list[Sym]]:
    """An n×K symbolic Q with ``q_{t,K−1} = 1 − Σ_{j<K−1} q_tj`` and the list of free symbols."""
    free = symbol_matrix("q", n, K - 1)
    Q = sp.Matrix(n, K, lambda t, j: free[t, j] if j < K - 1 else 1 - _sum(list(free[t, :])))
    return Q, free


def _sigma_q(Q: Sym) -> Sym:
    """``Σ_q = (1/n)(diag(Qᵀ1) − QᵀQ)``."""
    col = Q.T * sp.ones(Q.rows, 1)
    return (sp.diag(*col) - Q.T * Q) / Q.rows


@step("D2.4", checks=("reference.ddcl.grad_variance_fixed_Q",))
def step_d2_4() -> StepOutcome:
    """With Q fixed and row-stochastic: ∇_P V = 2 P Σ_q, Σ_q = (1/n)(diag(Qᵀ1) − QᵀQ)."""
    c = StepChecks()
    n, d, K = 2, 2, 3
    P = symbol_matrix("p", d, K)
    Q, free = _row_stochastic(n, K)
    V = _sum([Q[t, j] * _sq_norm(P[:, j] - P * Q[t, :].T) for t in range(n) for j in range(K)]) / n
    gP = _grad(V, P)
    c.zero("∇_P V|_Q = 2 P Σ_q (rows of Q on the simplex)", gP - 2 * P * _sigma_q(Q))

    rng = step_rng("D2.4")
    Pv = as_f64(rng.normal(size=(d, K)))
    Qv = _stochastic(rng, n, K)
    vals = {**_assign(P, Pv), **_assign(free, Qv[:, : K - 1])}
    c.close("∇_P V vs reference.grad_variance_fixed_Q", _evaluate(gP, vals), ref.grad_variance_fixed_Q(Pv, Qv))
    return c.outcome()


@step("D2.5", checks=("reference.ddcl.assignment_covariance",))
def step_d2_5() -> StepOutcome:
    """Σ_q 1 = 0 for row-stochastic Q; per token diag q − qqᵀ = Σ_j q_j(e_j − q)(e_j − q)ᵀ ⪰ 0, with trace Σ_j q_j(1 −
    q_j): Σ_q ⪰ 0 and Σ_q = 0 iff every q_t is one-hot.
    """
    c = StepChecks()
    n, K = 2, 3
    Q, free = _row_stochastic(n, K)
    S = _sigma_q(Q)
    c.zero("Σ_q 1 = 0", S * sp.ones(K, 1))
    _free_t, q = _token_q(K)
    cov_t = sp.diag(*q) - q * q.T
    e = sp.eye(K)
    outer = [(e[:, j] - q) * (e[:, j] - q).T for j in range(K)]
    c.zero("diag q − qqᵀ = Σ_j q_j (e_j − q)(e_j − q)ᵀ (Σq = 1)", cov_t - _msum([q[j] * outer[j] for j in range(K)]))
    # Each term is PSD: xᵀ[r_j (e_j − q)(e_j − q)ᵀ]x = r_j ((e_j − q)ᵀx)² with r_j ≥ 0.
    x = symbol_matrix("x", K, 1)
    r = [sp.Symbol(f"r_{k}", nonnegative=True) for k in range(K)]
    c.sym(
        "x ᵀ q_j(e_j − q)(e_j − q)ᵀ x ≥ 0 for q_j ≥ 0",
        all((r[j] * ((e[:, j] - q).T * x)[0, 0] ** 2).is_nonnegative is True for j in range(K)),
    )
    # Zero iff hard: trace = Σ_j q_j(1 − q_j), each term ≥ 0 on [0, 1] and zero only at q_j ∈ {0, 1}.
    qs = symbol_matrix("s", K, 1)
    c.zero(
        "tr(diag q − qqᵀ) = Σ_j q_j(1 − q_j)",
        (sp.diag(*qs) - qs * qs.T).trace() - _sum([qs[j] * (1 - qs[j]) for j in range(K)]),
    )
    u = sp.Symbol("u", real=True)
    c.sym("q(1 − q) = 0 ⇔ q ∈ {0, 1}", set(sp.solve(u * (1 - u), u)) == {0, 1})
    for hot in range(K):
        c.zero(
            f"diag q − qqᵀ = 0 at q = e_{hot}",
            cov_t.xreplace({_free_t[k]: sp.Integer(1 if k == hot else 0) for k in range(K - 1)}),
        )

    rng = step_rng("D2.5")
    Qv = _stochastic(rng, n, K)
    S_ref = ref.assignment_covariance(Qv)
    c.close("Σ_q vs reference.assignment_covariance", _evaluate(S, _assign(free, Qv[:, : K - 1])), S_ref)
    c.close("reference Σ_q 1 = 0", S_ref @ np.ones(K), np.zeros(K), scale=1.0)
    c.at_most("reference Σ_q ⪰ 0 (−λ_min ≤ 0)", -float(np.linalg.eigvalsh(S_ref)[0]), 0.0, scale=1.0)
    hard = as_f64(np.eye(K)[rng.integers(0, K, size=n)])
    c.close("reference Σ_q = 0 at hard Q", ref.assignment_covariance(hard), np.zeros((K, K)), scale=1.0)
    return c.outcome()


@step(
    "D2.6",
    checks=(
        "reference.ddcl.grad_quantisation_full",
        "reference.ddcl.quantisation_distance_weights",
        "reference.ddcl.squared_distances",
    ),
)
def step_d2_6() -> StepOutcome:
    """Through softmax Q: ∂L_q/∂D_tk = (1/n) q_tk(1 − (D_tk − D̄_t)/T_P), D̄_t = Σ_j q_tj D_tj; pulled back by ∇_P =
    2(P diag(Gᵀ1) − YᵀG), ∇_Y = 2(diag(G1)Y − GPᵀ), G = ∂L/∂D.
    """
    c = StepChecks()
    K = 3
    tok = _token(K)
    w = [tok.q[k] * (1 - (tok.D[k] - tok.Dbar) / T_P) for k in range(K)]
    for k in range(K):
        c.zero(f"∂(Σ q D)/∂D_{k} = q_{k}(1 − (D_{k} − D̄)/T_P)", sp.diff(tok.L, tok.D[k]) - w[k])
    c.zero("Σ_k w_k = 1", _sum(w) - 1)
    # Pull-back through D_tk = ‖y_t − p_k‖² for a generic G = ∂L/∂D.
    n, d, Kp = 2, 2, 2
    Y, P, G = symbol_matrix("y", n, d), symbol_matrix("p", d, Kp), symbol_matrix("g", n, Kp)
    Dm = sp.Matrix(n, Kp, lambda t, k: _sq_norm(Y[t, :].T - P[:, k]))
    lin = _sum([G[t, k] * Dm[t, k] for t in range(n) for k in range(Kp)])  # d/dθ of L = Σ G ∂D/∂θ
    form_Y, form_P = _pullback(Y, P, G)
    c.zero("Σ_tk G_tk ∂D_tk/∂P = 2(P diag(Gᵀ1) − YᵀG)", _grad(lin, P) - form_P)
    c.zero("Σ_tk G_tk ∂D_tk/∂Y = 2(diag(G1)Y − GPᵀ)", _grad(lin, Y) - form_Y)

    rng = step_rng("D2.6")
    b = _block(n, d, Kp)
    Yv, Pv, T = _random_point(rng, n, d, Kp)
    vals = b.values(Yv, Pv, T)
    ref_Y, ref_P = ref.grad_quantisation_full(Yv, Pv, T)
    gY, gP = _grad_Lq(n, d, Kp)
    c.close("∇_P L_q (sympy diff) vs reference.grad_quantisation_full", _evaluate(gP, vals), ref_P)
    c.close("∇_Y L_q (sympy diff) vs reference.grad_quantisation_full", _evaluate(gY, vals), ref_Y)
    tok2 = _token(Kp)
    W = sp.Matrix(n, Kp, lambda t, k: b.in_D(tok2.q[k] * (1 - (tok2.D[k] - tok2.Dbar) / T_P), t))
    c.close(
        "w vs reference.quantisation_distance_weights",
        _evaluate(W, vals),
        ref.quantisation_distance_weights(ref.squared_distances(Yv, Pv), T),
    )
    chain_Y, chain_P = _pullback(b.Y, b.P, W / n)
    c.close("pull-back of w/n vs reference ∇_P", _evaluate(chain_P, vals), ref_P)
    c.close("pull-back of w/n vs reference ∇_Y", _evaluate(chain_Y, vals), ref_Y)
    return c.outcome()


# --------------------------------------------------------------------------------------------------
# D3 Lyapunov stability (frozen encoder)
# --------------------------------------------------------------------------------------------------


def _distance_jacobian(b: _Block, t: int) -> Sym:
    """``J_t = ∂D_t/∂vec P`` (K × dK): ``J[k, j·d + i] = 2(p_k − y_t)_i δ_kj``."""
    return sp.Matrix(
        b.K, b.d * b.K, lambda k, col: 2 * (b.P[col % b.d, k] - b.Y[t, col % b.d]) if col // b.d == k else 0
    )


@step("D3.1", checks=("reference.ddcl.assignments", "reference.ddcl.hessian_free_energy"))
def step_d3_1() -> StepOutcome:
    """∂²F_t/∂D_t² = −(1/T_P)(diag q − qqᵀ) ⪯ 0 and ∇²_P F = (2/n)diag(n_j)⊗I − (1/(n T_P)) Σ_t J_tᵀ(diag q_t − q_t
    q_tᵀ)J_t, hence ∇²F ⪯ (2/n)diag(n_j)⊗I ⪯ 2I.
    """
    c = StepChecks()
    K = 3
    tok = _token(K)
    c.zero("∂F/∂D = q", sp.Matrix([sp.diff(tok.F, x) for x in tok.D]) - tok.q)
    c.zero(
        "∂²F/∂D² = −(1/T_P)(diag q − qqᵀ)", sp.hessian(tok.F, list(tok.D)) + (sp.diag(*tok.q) - tok.q * tok.q.T) / T_P
    )
    n, d, Kp = 1, 2, 2
    b = _block(n, d, Kp)
    H = _hessian_F(n, d, Kp)
    q = b.Q[0, :].T
    J = _distance_jacobian(b, 0)
    diag_part = sp.kronecker_product(2 * sp.diag(*q) / n, sp.eye(d))  # (2/n) diag(n_j) ⊗ I, n_j = q_j
    c.zero(
        "∇²_P F − (2/n)diag(n_j)⊗I = −(1/T_P) Jᵀ(diag q − qqᵀ)J",
        H - diag_part + J.T * (sp.diag(*q) - q * q.T) * J / T_P,
    )
    # (2/n) n_j ≤ 2: 2 − (2/n) n_j = (2/n) Σ_t (1 − q_tj), a sum of terms ≥ 0 since q_tj ≤ 1.
    qs = [sp.Symbol(f"q_{t}", real=True) for t in range(3)]
    c.zero("2 − (2/n) n_j = (2/n) Σ_t (1 − q_tj)", 2 - 2 * _sum(qs) / 3 - 2 * _sum([1 - x for x in qs]) / 3)

    rng = step_rng("D3.1")
    Y, P, T = _random_point(rng, n, d, Kp)
    c.close(
        "∇²_P F (n = 1) vs reference.hessian_free_energy",
        _evaluate(H, b.values(Y, P, T)),
        ref.hessian_free_energy(Y, P, T),
    )
    # The ordering ∇²F ⪯ (2/n)diag(n_j)⊗I ⪯ 2I on a larger random instance.
    nb, db, Kb = 5, 2, 3
    Yb, Pb, Tb = _random_point(rng, nb, db, Kb)
    Hb = ref.hessian_free_energy(Yb, Pb, Tb)
    nj = ref.assignments(Yb, Pb, Tb).sum(axis=0)
    upper = np.kron(np.diag(2.0 * nj / nb), np.eye(db))
    scale = max_abs(Hb) * Hb.shape[0]
    c.at_most("λ_max(∇²F − (2/n)diag(n_j)⊗I) ≤ 0", float(np.linalg.eigvalsh(Hb - upper)[-1]), 0.0, scale=scale)
    c.at_most("λ_max(∇²F) ≤ 2", float(np.linalg.eigvalsh(Hb)[-1]), 2.0, scale=scale)
    return c.outcome()


@step("D3.2", checks=("reference.ddcl.grad_free_energy", "reference.ddcl.prototype_step"))
def step_d3_2() -> StepOutcome:
    """Descent lemma at L = 2: F(P − η∇F) ≤ F(P) − η‖∇F‖² + η²‖∇F‖² = F(P) − η(1 − η)‖∇F‖², and η(1 − η) > 0 iff 0 < η
    < 1.
    """
    c = StepChecks()
    g = symbol_matrix("g", 2, 2)  # ∇_P F for d = 2, K = 2, as a generic matrix
    Fs = sp.Symbol("F", real=True)
    Lsm = sp.Integer(2)
    g2 = _sq_norm(list(g))
    inner = _sum([g[i] * (-ETA * g[i]) for i in range(4)])  # ⟨∇F, −ηg⟩ with g = ∇F
    c.zero("⟨∇F, −η∇F⟩ = −η‖∇F‖²", inner + ETA * g2)
    c.zero(
        "F − η‖g‖² + (L/2)η²‖g‖² = F − η(1 − η)‖g‖² at L = 2",
        (Fs + inner + Lsm / 2 * ETA**2 * g2) - (Fs - ETA * (1 - ETA) * g2),
    )
    e = sp.Symbol("e", real=True)
    c.sym(
        "η(1 − η) > 0 ⇔ 0 < η < 1",
        sp.solve_univariate_inequality(e * (1 - e) > 0, e, relational=False) == sp.Interval.open(0, 1),
    )

    rng = step_rng("D3.2")
    n, d, K = 2, 2, 2
    b = _block(n, d, K)
    Y, P, T = _random_point(rng, n, d, K)
    eta = float(rng.uniform(0.05, 0.95))
    P_new = ref.prototype_step(Y, P, T, eta)
    _, grad_ref = ref.grad_free_energy(Y, P, T)
    _, gP = _grad_F(n, d, K)
    c.close(
        "reference.prototype_step = P − η ∇_P F (sympy)",
        P_new,
        P - eta * _evaluate(gP, b.values(Y, P, T)),
        scale=max_abs(P),
    )
    F0, F1 = ref.free_energy(Y, P, T), ref.free_energy(Y, P_new, T)
    gn = float(np.sum(grad_ref**2))
    c.at_most("F(P⁺) ≤ F(P) − η(1−η)‖∇F‖²", F1, F0 - eta * (1 - eta) * gn, scale=abs(F0) + abs(F1) + gn)
    return c.outcome()


@step("D3.3", checks=("reference.ddcl.assignments", "reference.ddcl.prototype_step"))
def step_d3_3() -> StepOutcome:
    """p_j⁺ = (1 − 2η n_j/n) p_j + (2η/n) Σ_t q_tj y_t; the coefficients sum to 1 and are ≥ 0 for η ≤ 1/2 (n_j ≤ n):
    prototypes stay in the convex hull of the data and their previous position.
    """
    c = StepChecks()
    n, d, K = 2, 2, 2
    Y, P, Q = symbol_matrix("y", n, d), symbol_matrix("p", d, K), symbol_matrix("q", n, K)
    step = P - ETA * _fixed_Q_gradient_P(Y, P, Q)
    nj = [_sum([Q[t, j] for t in range(n)]) for j in range(K)]
    coef_p = [1 - 2 * ETA * nj[j] / n for j in range(K)]
    coef_y = [[2 * ETA * Q[t, j] / n for t in range(n)] for j in range(K)]
    hull = sp.Matrix.hstack(
        *[coef_p[j] * P[:, j] + _sum([coef_y[j][t] * Y[t, :].T for t in range(n)]) for j in range(K)]
    )
    c.zero("p_j⁺ = (1 − 2η n_j/n) p_j + (2η/n) Σ_t q_tj y_t", step - hull)
    c.zero("coefficients sum to 1", sp.Matrix([coef_p[j] + _sum(coef_y[j]) - 1 for j in range(K)]))
    # 1 − 2η n_j/n = (1 − 2η) + (2η/n) Σ_t (1 − q_tj): with u = 1 − 2η ≥ 0 (η ≤ 1/2), s_t = 1 − q_tj ≥ 0.
    u = sp.Symbol("u", nonnegative=True)
    s = [sp.Symbol(f"s_{t}", nonnegative=True) for t in range(n)]
    rest = 2 * ETA * _sum(s) / n
    c.zero(
        "1 − 2η n_j/n = (1 − 2η) + (2η/n) Σ_t (1 − q_tj)",
        coef_p[0] - ((1 - 2 * ETA) + (2 * ETA * _sum([1 - Q[t, 0] for t in range(n)]) / n)),
    )
    c.sym("(1 − 2η) + (2η/n) Σ_t (1 − q_tj) ≥ 0 when η ≤ 1/2", (u + rest).is_nonnegative is True)
    qn = sp.Symbol("q_nonneg", nonnegative=True)
    c.sym("(2η/n) q_tj ≥ 0", (2 * ETA * qn / n).is_nonnegative is True)

    rng = step_rng("D3.3")
    b = _block(n, d, K)
    Yv, Pv, T = _random_point(rng, n, d, K)
    eta = float(rng.uniform(0.05, 0.5))
    sub = {Q[t, j]: b.Q[t, j] for t in range(n) for j in range(K)}
    sub.update({Y[t, i]: b.Y[t, i] for t in range(n) for i in range(d)})
    vals = {**b.values(Yv, Pv, T), ETA: eta}
    c.close(
        "convex-combination form vs reference.prototype_step",
        _evaluate(hull.xreplace(sub), vals),
        ref.prototype_step(Yv, Pv, T, eta),
        scale=max_abs(Pv),
    )
    Qv = ref.assignments(Yv, Pv, T)
    coef_num = 1.0 - 2.0 * eta * Qv.sum(axis=0) / n
    c.at_most("min coefficient ≥ 0 at η ≤ 1/2", -float(coef_num.min()), 0.0, scale=1.0)
    return c.outcome()


# --------------------------------------------------------------------------------------------------
# D4 Anti-collapse
# --------------------------------------------------------------------------------------------------


def _collapse_hessian(K: int, d: int, cov: Sym, factor: int) -> Sym:
    """``(2/K) I − (factor/(T_P K)) (I_K − 11ᵀ/K) ⊗ Cov`` (factor 4 for F, 8 for L_q)."""
    return 2 * sp.eye(K * d) / K - factor / (T_P * K) * sp.kronecker_product(_centering(K), cov)


def _collapse_spectrum_checks(c: StepChecks, factor: int, name: str) -> None:
    """Eigenvalues of the collapse Hessian (d = 2, K = 2, symmetric Cov = [[a, b], [b, e]]), and the sign.

    With ``α = 2/K`` and ``μ_i = α(1 − (factor/2) λ_i / T_P)``: ``det(xI − H) = (x − α)^d Π_i (x − μ_i)``,
    where ``Π_i (x − μ_i)`` is written through ``tr Cov`` and ``det Cov``; and
    ``μ_i = (2/(K T_P)) (T_P − (factor/2) λ_i)`` has the sign of ``T_P − (factor/2) λ_i``.
    """
    K, d = 2, 2
    a, bb, e, x = sp.symbols("a b e x", real=True)
    cov = sp.Matrix([[a, bb], [bb, e]])
    H = _collapse_hessian(K, d, cov, factor)
    alpha = sp.Rational(2, K)
    k = sp.Rational(factor, 2)
    tr, det = a + e, a * e - bb**2
    mu_sum = alpha * (2 - k * tr / T_P)
    mu_prod = alpha**2 * (1 - k * tr / T_P + k**2 * det / T_P**2)
    char = (x * sp.eye(K * d) - H).det()
    c.zero(
        f"{name}: det(xI − H) = (x − 2/K)^d (x² − Σμ x + Πμ)", char - (x - alpha) ** d * (x**2 - mu_sum * x + mu_prod)
    )
    lam = sp.Symbol("lambda", nonnegative=True)
    mu = alpha * (1 - k * lam / T_P)
    c.zero(f"{name}: μ = (2/(K T_P))(T_P − {k}λ)", mu - 2 / (K * T_P) * (T_P - k * lam))
    c.sym(f"{name}: 2/(K T_P) > 0", (2 / (K * T_P)).is_positive is True)
    c.zero(f"{name}: K = 1 has no unstable direction ((I − 11ᵀ/K) = 0)", _centering(1))


def _collapse_numeric(c: StepChecks, rng: np.random.Generator, factor: int, name: str) -> None:
    """Reference Hessian at collapse vs the closed form, its spectrum, and the instability decision."""
    hess = ref.hessian_free_energy if factor == 4 else ref.hessian_quantisation
    n, d, K = 6, 3, 3
    Y = as_f64(rng.normal(size=(n, d)) * np.array([1.5, 1.0, 0.5]))
    P = collapsed_prototypes(Y, K)
    C = _cov(Y)
    lam = as_f64(np.linalg.eigvalsh(C))
    Tc_F, Tc_L = ref.collapse_critical_temperatures(Y)
    c.close("T_c^F = 2 λ_max(Cov Y) vs reference.collapse_critical_temperatures", Tc_F, 2.0 * lam[-1])
    c.close("T_c^{L_q} = 4 λ_max(Cov Y) vs reference.collapse_critical_temperatures", Tc_L, 4.0 * lam[-1])
    Tc = Tc_F if factor == 4 else Tc_L
    for ratio in (0.5, 1.5):
        T = ratio * Tc
        H = hess(Y, P, T)
        form = 2.0 * np.eye(K * d) / K - factor / (T * K) * np.kron(np.eye(K) - 1.0 / K, C)
        c.close(f"{name}: reference Hessian at collapse (T = {ratio} T_c) vs closed form", H, form)
        predicted = np.sort(
            np.concatenate([np.full(d, 2.0 / K), np.repeat(2.0 / K * (1.0 - factor / 2 * lam / T), K - 1)])
        )
        eig = as_f64(np.linalg.eigvalsh(H))
        c.close(f"{name}: spectrum at T = {ratio} T_c", eig, predicted, scale=max_abs(H))
        unstable = bool(eig[0] < 0.0)
        c.at_most(
            f"{name}: unstable iff T < T_c (T = {ratio} T_c)",
            0.0 if unstable == (Tc > T) else abs(float(eig[0])),
            0.0,
            scale=max_abs(H),
        )


@step("D4.1", checks=("reference.ddcl.grad_free_energy", "reference.ddcl.grad_quantisation_full"))
def step_d4_1() -> StepOutcome:
    """At the collapsed configuration p_j = ȳ (all j), q_t = 1/K and ∇_P F = ∇_P L_q = 0."""
    c = StepChecks()
    n, d, K = 2, 2, 2
    b = _block(n, d, K)
    col = b.collapse()
    _, gF = _grad_F(n, d, K)
    _, gL = _grad_Lq(n, d, K)
    c.zero("∇_P F = 0 at p_j = ȳ", gF.xreplace(col))
    c.zero("∇_P L_q = 0 at p_j = ȳ", gL.xreplace(col))
    c.zero("q_t = 1/K at p_j = ȳ", b.Q.xreplace(col) - sp.ones(n, K) / K)

    rng = step_rng("D4.1")
    Y, _, T = _random_point(rng, n, d, K)
    P = collapsed_prototypes(Y, K)
    vals = b.values(Y, P, T)
    scale = 2.0 * max_abs(Y)  # the terms (2/n) p_j n_j and (2/n) Σ q_tj y_t that cancel
    c.close(
        "reference.grad_free_energy = 0 at collapse", ref.grad_free_energy(Y, P, T)[1], np.zeros((d, K)), scale=scale
    )
    c.close(
        "reference.grad_quantisation_full = 0 at collapse",
        ref.grad_quantisation_full(Y, P, T)[1],
        np.zeros((d, K)),
        scale=scale,
    )
    c.close("sympy ∇_P F at collapse vs reference", _evaluate(gF, vals), ref.grad_free_energy(Y, P, T)[1], scale=scale)
    c.close(
        "sympy ∇_P L_q at collapse vs reference",
        _evaluate(gL, vals),
        ref.grad_quantisation_full(Y, P, T)[1],
        scale=scale,
    )
    # A larger instance: the same cancellation for n = 7, K = 4.
    Yb = as_f64(rng.normal(size=(7, 3)))
    Pb = collapsed_prototypes(Yb, 4)
    c.close(
        "reference ∇_P F = 0 at collapse (n = 7, K = 4)",
        ref.grad_free_energy(Yb, Pb, T)[1],
        np.zeros((3, 4)),
        scale=2.0 * max_abs(Yb),
    )
    c.close(
        "reference ∇_P L_q = 0 at collapse (n = 7, K = 4)",
        ref.grad_quantisation_full(Yb, Pb, T)[1],
        np.zeros((3, 4)),
        scale=2.0 * max_abs(Yb),
    )
    return c.outcome()


@step("D4.2", checks=("reference.ddcl.collapse_critical_temperatures", "reference.ddcl.hessian_free_energy"))
def step_d4_2() -> StepOutcome:
    """At collapse ∇²_P F = (2/K)I − (4/(T_P K))(I_K − 11ᵀ/K) ⊗ Cov(Y); eigenvalues 2/K and (2/K)(1 − 2λ_i/T_P);
    unstable iff T_P < T_c = 2 λ_max(Cov Y) (K ≥ 2).
    """
    c = StepChecks()
    n, d, K = 2, 2, 2
    b = _block(n, d, K)
    H = _hessian_F(n, d, K).xreplace(b.collapse())
    c.zero("∇²_P F at collapse = (2/K)I − (4/(T_P K))(I − 11ᵀ/K) ⊗ Cov(Y)", H - _collapse_hessian(K, d, b.cov(), 4))
    _collapse_spectrum_checks(c, 4, "F")

    rng = step_rng("D4.2")
    Y, _, T = _random_point(rng, n, d, K)
    P = collapsed_prototypes(Y, K)
    c.close(
        "sympy ∇²_P F at collapse vs reference.hessian_free_energy",
        _evaluate(H, b.values(Y, P, T)),
        ref.hessian_free_energy(Y, P, T),
    )
    _collapse_numeric(c, rng, 4, "F")
    return c.outcome()


@step("D4.3", checks=("reference.ddcl.collapse_critical_temperatures", "reference.ddcl.hessian_quantisation"))
def step_d4_3() -> StepOutcome:
    """At collapse ∂²L_q/∂D² = −(2/T_P)(diag q − qqᵀ), so ∇²_P L_q = (2/K)I − (8/(T_P K))(I_K − 11ᵀ/K) ⊗ Cov(Y);
    unstable iff T_P < 4 λ_max(Cov Y) = 2 T_c.
    """
    c = StepChecks()
    K = 3
    tok = _token(K)
    equal = {tok.D[k]: tok.D[0] for k in range(1, K)}
    HD = sp.hessian(tok.L, list(tok.D)).xreplace(equal)
    q = sp.ones(K, 1) / K
    c.zero("∂²(Σ qD)/∂D² at equal D = −(2/T_P)(diag q − qqᵀ), q = 1/K", HD + 2 * (sp.diag(*q) - q * q.T) / T_P)
    c.zero("w = q at equal D", sp.Matrix([sp.diff(tok.L, x) for x in tok.D]).xreplace(equal) - q)
    n, d, Kp = 2, 2, 2
    b = _block(n, d, Kp)
    H = _hessian_Lq(n, d, Kp).xreplace(b.collapse())
    c.zero("∇²_P L_q at collapse = (2/K)I − (8/(T_P K))(I − 11ᵀ/K) ⊗ Cov(Y)", H - _collapse_hessian(Kp, d, b.cov(), 8))
    _collapse_spectrum_checks(c, 8, "L_q")

    rng = step_rng("D4.3")
    Y, _, T = _random_point(rng, n, d, Kp)
    P = collapsed_prototypes(Y, Kp)
    c.close(
        "sympy ∇²_P L_q at collapse vs reference.hessian_quantisation",
        _evaluate(H, b.values(Y, P, T)),
        ref.hessian_quantisation(Y, P, T),
    )
    _collapse_numeric(c, rng, 8, "L_q")
    Tc_F, Tc_L = ref.collapse_critical_temperatures(Y)
    c.close("T_c^{L_q} = 2 T_c^F", Tc_L, 2.0 * Tc_F)
    return c.outcome()


@step("D4.4", checks=("reference.ddcl.hessian_quantisation",))
def step_d4_4() -> StepOutcome:
    """With w_k = q_k(1 − (D_k − D̄)/T): ∂D̄/∂D_l = w_l and ∂w_k/∂D_l = −(1/T) q_k(δ_kl − q_l)(1 − (D_k − D̄)/T) −
    (q_k/T)(δ_kl − w_l) (the second derivative of reference.hessian_quantisation).
    """
    c = StepChecks()
    K = 3
    tok = _token(K)
    q, D, Dbar = tok.q, tok.D, tok.Dbar
    w = [q[k] * (1 - (D[k] - Dbar) / T_P) for k in range(K)]
    for ell in range(K):
        c.zero(f"∂D̄/∂D_{ell} = w_{ell}", sp.diff(Dbar, D[ell]) - w[ell])
    delta = sp.eye(K)
    form = sp.Matrix(
        K,
        K,
        lambda k, ell: (
            -q[k] * (delta[k, ell] - q[ell]) * (1 - (D[k] - Dbar) / T_P) / T_P - q[k] * (delta[k, ell] - w[ell]) / T_P
        ),
    )
    c.zero(
        "∂w_k/∂D_l = −(1/T)q_k(δ_kl − q_l)(1 − (D_k − D̄)/T) − (q_k/T)(δ_kl − w_l)",
        sp.Matrix(K, K, lambda k, ell: sp.diff(w[k], D[ell])) - form,
    )

    rng = step_rng("D4.4")
    n, d, Kp = 2, 2, 2
    b = _block(n, d, Kp)
    Y, P, T = _random_point(rng, n, d, Kp)
    c.close(
        "sympy ∇²_P L_q (non-collapsed) vs reference.hessian_quantisation",
        _evaluate(_hessian_Lq(n, d, Kp), b.values(Y, P, T)),
        ref.hessian_quantisation(Y, P, T),
    )
    return c.outcome()


# --------------------------------------------------------------------------------------------------
# D5 Prototype pruning safety
# --------------------------------------------------------------------------------------------------


@step(
    "D5.1",
    checks=(
        "reference.ddcl.assignments",
        "reference.ddcl.free_energy",
        "reference.ddcl.removal_free_energy_change",
        "reference.ddcl.remove_prototype",
    ),
)
def step_d5_1() -> StepOutcome:
    """Removing prototype j: F without p_j − F = −(T_P/n) Σ_t log(1 − q_tj)."""
    c = StepChecks()
    K = 3
    tok = _token(K)
    for j in range(K):
        F_minus = -T_P * sp.log(_sum([sp.exp(-tok.D[k] / T_P) for k in range(K) if k != j]))
        c.zero(f"F without p_{j} − F = −T_P log(1 − q_{j}) (one token)", F_minus - tok.F + T_P * sp.log(1 - tok.q[j]))

    rng = step_rng("D5.1")
    n, d = 3, 2
    b = _block(n, d, K)
    Y, P, T = _random_point(rng, n, d, K)
    vals = b.values(Y, P, T)
    Q = ref.assignments(Y, P, T)
    for j in range(K):
        predicted = float(_evaluate(-T_P / n * _sum([sp.log(1 - b.Q[t, j]) for t in range(n)]), vals))
        F0, F1 = ref.free_energy(Y, P, T), ref.free_energy(Y, ref.remove_prototype(P, j), T)
        c.close(
            f"ΔF (j = {j}) vs reference free_energy ∘ remove_prototype", predicted, F1 - F0, scale=abs(F0) + abs(F1)
        )
        c.close(
            f"ΔF (j = {j}) vs reference.removal_free_energy_change",
            predicted,
            ref.removal_free_energy_change(Q, j, T)[0],
        )
    return c.outcome()


@step("D5.2", checks=("reference.ddcl.assignments", "reference.ddcl.removal_free_energy_change"))
def step_d5_2() -> StepOutcome:
    """For q ∈ [0, 1): 0 ≤ −log(1 − q) ≤ q/(1 − q) (g = q/(1 − q) + log(1 − q), g(0) = 0, g' = q/(1 − q)² ≥ 0), hence 0
    ≤ ΔF ≤ (T_P/n) Σ_t q_tj/(1 − q_tj).
    """
    c = StepChecks()
    q = sp.Symbol("q", real=True)
    s = sp.Symbol("s", nonnegative=True)
    g = q / (1 - q) + sp.log(1 - q)
    c.zero("g(0) = 0", g.subs(q, 0))
    c.zero("g'(q) = q/(1 − q)²", sp.diff(g, q) - q / (1 - q) ** 2)
    # q = s/(1 + s) maps s ∈ [0, ∞) onto q ∈ [0, 1) (inverse s = q/(1 − q)).
    to_s = s / (1 + s)
    c.zero("s ↦ s/(1 + s) inverts q ↦ q/(1 − q)", to_s.subs(s, q / (1 - q)) - q)
    c.sym("g'(q) ≥ 0 on [0, 1)", sp.cancel((q / (1 - q) ** 2).subs(q, to_s)).is_nonnegative is True)
    minus_log = sp.expand_log(-sp.log(sp.together(1 - to_s)))
    c.sym("−log(1 − q) ≥ 0 on [0, 1)", minus_log.is_nonnegative is True)
    c.zero("−log(1 − q) = log(1 + s)", minus_log - sp.log(1 + s))

    rng = step_rng("D5.2")
    n, d, K = 4, 2, 3
    Y, P, T = _random_point(rng, n, d, K)
    Q = ref.assignments(Y, P, T)
    qsym = symbol_matrix("q", n, 1)
    change = -T_P / n * _sum([sp.log(1 - qsym[t]) for t in range(n)])
    upper = T_P / n * _sum([qsym[t] / (1 - qsym[t]) for t in range(n)])
    F0 = ref.free_energy(Y, P, T)
    for j in range(K):
        vals = {**_assign(qsym, Q[:, j]), T_P: T}
        dF, bound = ref.removal_free_energy_change(Q, j, T)
        sym_dF, sym_bound = float(_evaluate(change, vals)), float(_evaluate(upper, vals))
        c.close(f"ΔF (j = {j}) vs reference.removal_free_energy_change", sym_dF, dF)
        c.close(f"bound (j = {j}) vs reference.removal_free_energy_change", sym_bound, bound)
        c.at_most(f"0 ≤ ΔF (j = {j})", -dF, 0.0, scale=abs(dF))
        c.at_most(f"ΔF ≤ bound (j = {j})", dF, bound, scale=abs(bound))
        measured = ref.free_energy(Y, ref.remove_prototype(P, j), T) - F0
        c.at_most(f"measured ΔF ≤ bound (j = {j})", measured, bound, scale=abs(F0) + abs(bound))
        c.at_most(f"measured ΔF ≥ 0 (j = {j})", -measured, 0.0, scale=abs(F0) + abs(measured))
    return c.outcome()


# --------------------------------------------------------------------------------------------------
# D6 Dual–vanilla equivalence
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DCL:
    Yb: Sym  # n_b×d
    W: Sym  # n_b×K
    b: Sym  # K×1
    G: Sym  # d×K, a generic ∇_P L
    P: Sym  # Y_bᵀ W + 1_d bᵀ
    M: Sym  # Y_bᵀ Y_b + 1_d 1_dᵀ


@cache
def _dcl(nb: int, d: int, K: int) -> _DCL:
    Yb, W = symbol_matrix("yb", nb, d), symbol_matrix("w", nb, K)
    b, G = symbol_matrix("b", K, 1), symbol_matrix("g", d, K)
    ones = sp.ones(d, 1)
    return _DCL(Yb=Yb, W=W, b=b, G=G, P=Yb.T * W + ones * b.T, M=Yb.T * Yb + ones * ones.T)


def _dcl_chain(m: _DCL) -> tuple[Sym, Sym]:
    """``(∂L/∂W, ∂L/∂b)`` by the chain rule ``Σ_ij G_ij ∂P_ij/∂θ`` for a generic ``G = ∇_P L``."""
    lin = _sum([m.G[i, j] * m.P[i, j] for i in range(m.P.rows) for j in range(m.P.cols)])
    return _grad(lin, m.W), _grad(lin, m.b)


@step(
    "D6.1",
    checks=(
        "reference.dcl.dcl_gradients",
        "reference.dcl.dcl_preconditioner",
        "reference.dcl.dcl_prototypes",
        "reference.dcl.dcl_step",
    ),
)
def step_d6_1() -> StepOutcome:
    """DCL chain rule with P = Y_bᵀW + 1_d bᵀ: ∇_W L = Y_b ∇_P L, ∇_b L = (∇_P L)ᵀ1_d, and a step on (W, b) moves P by
    −η(Y_bᵀY_b + 1_d1_dᵀ)∇_P L (a PSD preconditioner).
    """
    c = StepChecks()
    nb, d, K = 2, 2, 2
    m = _dcl(nb, d, K)
    gW, gb = _dcl_chain(m)
    c.zero("∇_W L = Y_b ∇_P L", gW - m.Yb * m.G)
    c.zero("∇_b L = (∇_P L)ᵀ 1_d", gb - m.G.T * sp.ones(d, 1))
    moved = (m.Yb.T * (m.W - ETA * gW) + sp.ones(d, 1) * (m.b - ETA * gb).T) - m.P
    c.zero("P(W − η∇_W, b − η∇_b) − P = −η(Y_bᵀY_b + 11ᵀ)∇_P L", moved + ETA * m.M * m.G)
    x = symbol_matrix("x", d, 1)
    A = m.Yb.col_join(sp.ones(1, d))
    c.zero("xᵀ M x = ‖A x‖² (M ⪰ 0)", (x.T * m.M * x)[0, 0] - _sq_norm(A * x))

    rng = step_rng("D6.1")
    Yb, W, G = (as_f64(rng.normal(size=s)) for s in ((nb, d), (nb, K), (d, K)))
    bv = as_f64(rng.normal(size=K))
    eta = float(rng.uniform(0.05, 0.5))
    vals = {**_assign(m.Yb, Yb), **_assign(m.W, W), **_assign(m.b, bv), **_assign(m.G, G), ETA: eta}
    ref_W, ref_b = ref_dcl.dcl_gradients(Yb, G)
    c.close("P vs reference.dcl_prototypes", _evaluate(m.P, vals), ref_dcl.dcl_prototypes(Yb, W, bv))
    c.close("∇_W vs reference.dcl_gradients", _evaluate(gW, vals), ref_W)
    c.close("∇_b vs reference.dcl_gradients", _evaluate(gb, vals).reshape(K), ref_b)
    c.close("M vs reference.dcl_preconditioner", _evaluate(m.M, vals), ref_dcl.dcl_preconditioner(Yb))
    W1, b1 = ref_dcl.dcl_step(Yb, W, bv, G, eta)
    dP_ref = ref_dcl.dcl_prototypes(Yb, W1, b1) - ref_dcl.dcl_prototypes(Yb, W, bv)
    c.close(
        "ΔP of reference.dcl_step vs −η M ∇_P L (sympy)",
        dP_ref,
        _evaluate(-ETA * m.M * m.G, vals),
        scale=max_abs(ref_dcl.dcl_prototypes(Yb, W, bv)),
    )
    return c.outcome()


@step("D6.2", checks=("reference.dcl.dcl_gradients", "reference.dcl.dcl_preconditioner"))
def step_d6_2() -> StepOutcome:
    """With A = [Y_b; 1_dᵀ], M = AᵀA: the DCL gradient is A∇_P L, A G = 0 ⇔ M G = 0; for nonsingular M it vanishes iff
    ∇_P L = 0; M's column space lies in span(rows Y_b) + span(1_d).
    """
    c = StepChecks()
    nb, d, K = 2, 2, 2
    m = _dcl(nb, d, K)
    A = m.Yb.col_join(sp.ones(1, d))  # (n_b + 1) × d
    c.zero("M = AᵀA", A.T * A - m.M)
    gW, gb = _dcl_chain(m)
    c.zero("(∇_W L; ∇_bᵀ L) = A ∇_P L", gW.col_join(gb.T) - A * m.G)
    c.zero("tr(Gᵀ M G) = ‖A G‖²_F (so M G = 0 ⇒ A G = 0)", (m.G.T * m.M * m.G).trace() - _sq_norm(list(A * m.G)))
    c.zero("M G = Aᵀ(A G) (so A G = 0 ⇒ M G = 0)", m.M * m.G - A.T * (A * m.G))
    c.zero("adj(M) M = det(M) I (M G = 0 and det M ≠ 0 ⇒ G = 0)", m.M.adjugate() * m.M - m.M.det() * sp.eye(d))
    x = symbol_matrix("x", d, 1)
    c.zero(
        "M x = Y_bᵀ(Y_b x) + 1_d(1_dᵀx) ∈ span(rows Y_b) + span(1_d)",
        m.M * x - (m.Yb.T * (m.Yb * x) + sp.ones(d, 1) * (sp.ones(1, d) * x)),
    )

    rng = step_rng("D6.2")
    nb_v, d_v, K_v = 3, 2, 2
    Yb = as_f64(rng.normal(size=(nb_v, d_v)))
    G = as_f64(rng.normal(size=(d_v, K_v)))
    M = ref_dcl.dcl_preconditioner(Yb)
    Av = np.vstack([Yb, np.ones((1, d_v))])
    c.close("reference.dcl_preconditioner = AᵀA", M, Av.T @ Av)
    gW_ref, gb_ref = ref_dcl.dcl_gradients(Yb, G)
    stacked = np.vstack([gW_ref, gb_ref[None, :]])
    c.close("reference DCL gradient = A ∇_P L", stacked, Av @ G)
    lam_min = float(np.linalg.eigvalsh(M)[0])
    c.sym("random M is nonsingular (λ_min > 0)", lam_min > value_bound(max_abs(M)))
    # Nonsingular M: ‖DCL gradient‖² = tr(GᵀMG) ≥ λ_min(M)‖G‖², so it vanishes only with ∇_P L.
    c.at_most(
        "λ_min(M)‖G‖² ≤ ‖DCL gradient‖²",
        lam_min * float(np.sum(G**2)),
        float(np.sum(stacked**2)),
        scale=float(np.sum(stacked**2)),
    )
    # Movement stays in span(rows Y_b) + span(1_d): visible when that span is a proper subspace (n_b = 1, d = 3).
    Y1 = as_f64(rng.normal(size=(1, 3)))
    G1 = as_f64(rng.normal(size=(3, 2)))
    W0, b0 = as_f64(rng.normal(size=(1, 2))), as_f64(rng.normal(size=2))
    W1, b1 = ref_dcl.dcl_step(Y1, W0, b0, G1, 0.3)
    dP = ref_dcl.dcl_prototypes(Y1, W1, b1) - ref_dcl.dcl_prototypes(Y1, W0, b0)
    basis, _ = np.linalg.qr(np.vstack([Y1, np.ones((1, 3))]).T)
    c.close("ΔP ⊂ span(rows Y_b) + span(1_d)", dP - basis @ (basis.T @ dP), np.zeros_like(dP), scale=max_abs(dP))
    return c.outcome()


# --------------------------------------------------------------------------------------------------
# The steps, in claim order
# --------------------------------------------------------------------------------------------------

STEPS: tuple[Step, ...] = collect_steps(globals())


__all__ = [
    "ETA",
    "F64",
    "STEPS",
    "T_P",
    "Sym",
    "step_d1_1",
    "step_d1_2",
    "step_d2_1",
    "step_d2_2",
    "step_d2_3",
    "step_d2_4",
    "step_d2_5",
    "step_d2_6",
    "step_d3_1",
    "step_d3_2",
    "step_d3_3",
    "step_d4_1",
    "step_d4_2",
    "step_d4_3",
    "step_d4_4",
    "step_d5_1",
    "step_d5_2",
    "step_d6_1",
    "step_d6_2",
]
