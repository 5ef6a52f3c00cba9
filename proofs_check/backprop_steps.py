"""Symbolic steps "BP" for the layer's hand-derived backward (``reference.model``; docs/model.md).

Each step differentiates a tiny symbolic instance of one sublayer with sympy (``sp.diff`` is the
ground truth), checks that the closed form the reference implements equals it
(``is_zero(derivative − formula)``), then evaluates the closed form at a seeded random float64 point
and compares it with the reference function, within the float64 VALUE tolerance scaled by the
magnitude of the compared quantity.

Sizes: a softmax row of 3; ``T = 2`` tokens; ``d = 2``; ``d_k = d_v = 1`` for the end-to-end head;
``K = 2``/``3`` prototypes; ``B = 2`` sequences and 2 classes for the readout. The loss path through
``L_q`` (``grad_quantisation_full``) is step D2.6 of ``ddcl_steps``; the linear pieces
(``X = x W_in + E_pos``, ``Y = X + U``) are checked by finite differences only.

Exponentials in softmaxes are written with :class:`_Exp`, an ``exp`` that differentiates like
``exp`` but that sympy never merges (it rewrites ``exp(a)²`` as ``exp(2a)``). Before the equality test,
:func:`_rationalise` replaces every ``_Exp(arg)`` by one positive symbol per distinct expanded
argument, so each identity becomes one between rational functions, which ``simplify`` decides fast.
This is sound: an identity in independent symbols holds at any values, in particular at the
exponentials (it could only miss an identity that needs ``exp(a)exp(b) = exp(a+b)``; none here do).

``reference.model`` is looked up through the module at run time (``ref_back.head_backward``), so a
test can plant a violation by monkeypatching a function and watch the step fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import sympy as sp
from numpy.typing import NDArray

from proofs_check.core import Step, StepChecks, StepOutcome, collect_steps, step, step_rng, symbol_matrix
from reference import backward as ref_back
from reference import model as ref_model

F64: TypeAlias = NDArray[np.float64]
Sym: TypeAlias = Any  # a sympy expression, symbol or matrix (sympy ships no type information)

T_P: Sym = sp.Symbol("T_P", positive=True)

# --------------------------------------------------------------------------------------------------
# Bookkeeping (shared step checks, seeded generators, symbol matrices: proofs_check.core)
# --------------------------------------------------------------------------------------------------


class _Exp(sp.Function):  # type: ignore[misc]  # sympy is untyped
    """``exp`` that differentiates like ``exp`` (``d/dx _Exp(x) = _Exp(x)``) but is never auto-merged."""

    def fdiff(self, argindex: int = 1) -> Sym:
        return self


def _rationalise(expr: Sym) -> Sym:
    """Replace each ``_Exp(arg)``, innermost first, by a positive symbol keyed by ``expand(arg)``."""
    table: dict[Sym, Sym] = {}
    while True:
        innermost = [a for a in expr.atoms(_Exp) if not a.args[0].atoms(_Exp)]
        if not innermost:
            return expr
        for a in innermost:
            table.setdefault(sp.expand(a.args[0]), sp.Symbol(f"_E{len(table)}", positive=True))
        expr = expr.xreplace({a: table[sp.expand(a.args[0])] for a in innermost})


def _checks() -> StepChecks:
    """The step's checks; symbolic equalities are decided with exponentials as symbols (:func:`_rationalise`)."""
    return StepChecks(rewrite=_rationalise)


def _grad(f: Sym, M: Sym) -> Sym:
    """``∂f/∂M`` entrywise, as a matrix of M's shape."""
    return M.applyfunc(lambda m: sp.diff(f, m))


def _softmax_row(v: Sequence[Sym]) -> list[Sym]:
    e = [_Exp(x) for x in v]
    total = sp.Add(*e)
    return [x / total for x in e]


def _softmax_rows(S: Sym) -> Sym:
    rows = [_softmax_row(list(S.row(i))) for i in range(S.rows)]
    return sp.Matrix(rows)


def _softmax_rows_backward(A: Sym, dA: Sym) -> Sym:
    """The closed form under test, in sympy: ``A ⊙ (dA − (A ⊙ dA)1)``."""
    return sp.Matrix(
        A.rows,
        A.cols,
        lambda i, j: A[i, j] * (dA[i, j] - sum(A[i, k] * dA[i, k] for k in range(A.cols))),
    )


def _frobenius(G: Sym, M: Sym) -> Sym:
    """``⟨G, M⟩_F = Σ_ij G_ij M_ij``."""
    return sp.Add(*[G[i, j] * M[i, j] for i in range(M.rows) for j in range(M.cols)])


def _evaluate(expr: Sym, values: dict[Sym, float]) -> F64:
    """A sympy expression or matrix at a numeric point, as float64."""
    symbols = list(values)
    fn: Callable[..., object] = sp.lambdify(symbols, expr, modules=[{"_Exp": np.exp}, "numpy"])
    return np.asarray(fn(*[values[s] for s in symbols]), dtype=np.float64)


def _point(rng: np.random.Generator, *mats: Sym) -> dict[Sym, float]:
    """Random standard-normal values for every symbol of the given matrices."""
    return {s: float(rng.standard_normal()) for M in mats for s in M}


# --------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------


@step("BP.1", checks=("reference.backward.softmax_rows_backward", "reference.model.softmax_rows"))
def step_bp_1() -> StepOutcome:
    """Softmax backward: for a = softmax(s), ∂(gᵀa)/∂s = a ⊙ (g − (aᵀg)1)."""
    c = _checks()
    s, g = symbol_matrix("s", 1, 3), symbol_matrix("g", 1, 3)
    a = _softmax_rows(s)
    f = _frobenius(g, a)
    formula = _softmax_rows_backward(a, g)
    c.zero("∂(gᵀ softmax(s))/∂s", _grad(f, s) - formula)
    point = _point(step_rng("BP.1"), s, g)
    A = ref_model.softmax_rows(_evaluate(s, point))
    c.close("softmax_rows", A, _evaluate(a, point))
    c.close("softmax_rows_backward", ref_back.softmax_rows_backward(A, _evaluate(g, point)), _evaluate(formula, point))
    return c.outcome()


@step("BP.2", checks=("reference.backward.attention_scores_backward", "reference.model.attention_scores"))
def step_bp_2() -> StepOutcome:
    """Scores S = X M Xᵀ: ∂⟨G,S⟩/∂M = XᵀGX and ∂⟨G,S⟩/∂X = G X Mᵀ + Gᵀ X M."""
    c = _checks()
    X, M, G = symbol_matrix("X", 2, 2), symbol_matrix("M", 2, 2), symbol_matrix("G", 2, 2)
    f = _frobenius(G, X * M * X.T)
    dM, dX = X.T * G * X, G * X * M.T + G.T * X * M
    c.zero("∂f/∂M", _grad(f, M) - dM)
    c.zero("∂f/∂X", _grad(f, X) - dX)
    point = _point(step_rng("BP.2"), X, M, G)
    Xn, Mn, Gn = _evaluate(X, point), _evaluate(M, point), _evaluate(G, point)
    c.close("attention_scores", ref_model.attention_scores(Xn[None], Mn)[0], _evaluate(X * M * X.T, point))
    ref_dX, ref_dM = ref_back.attention_scores_backward(Xn[None], Mn, Gn[None])
    c.close("attention_scores_backward dX", ref_dX[0], _evaluate(dX, point))
    c.close("attention_scores_backward dM", ref_dM, _evaluate(dM, point))
    return c.outcome()


def _head(point: dict[Sym, float], W_Q: Sym, W_K: Sym, W_V: Sym, W_O: Sym, s: Sym) -> ref_model.HeadParams:
    return ref_model.HeadParams(
        W_Q=_evaluate(W_Q, point),
        W_K=_evaluate(W_K, point),
        W_V=_evaluate(W_V, point),
        W_O=_evaluate(W_O, point),
        s=float(point[s]),
    )


@step("BP.3", checks=("reference.backward.score_operator_backward", "reference.model.score_operator"))
def step_bp_3() -> StepOutcome:
    """M = W_Q W_Kᵀ e^{−s}/√d_k: ∂⟨G,M⟩/∂W_Q = c G W_K, ∂/∂W_K = c Gᵀ W_Q, ∂/∂s = −⟨G,M⟩ (c = e^{−s}/√d_k; the
    log-temperature derivative).
    """
    c = _checks()
    d_k = 2
    W_Q, W_K, G = symbol_matrix("W_Q", 2, d_k), symbol_matrix("W_K", 2, d_k), symbol_matrix("G", 2, 2)
    s = sp.Symbol("s", real=True)
    coef = _Exp(-s) / sp.sqrt(d_k)
    M = W_Q * W_K.T * coef
    f = _frobenius(G, M)
    formulas = {"W_Q": coef * G * W_K, "W_K": coef * G.T * W_Q, "s": -f}
    c.zero("∂f/∂W_Q", _grad(f, W_Q) - formulas["W_Q"])
    c.zero("∂f/∂W_K", _grad(f, W_K) - formulas["W_K"])
    c.zero("∂f/∂s (∂M/∂s = −M)", sp.diff(f, s) - formulas["s"])
    point = _point(step_rng("BP.3"), W_Q, W_K, G)
    point[s] = float(step_rng("BP.3 s").standard_normal())
    # W_V, W_O do not enter M; any values make a valid head.
    head = ref_model.HeadParams(
        W_Q=_evaluate(W_Q, point), W_K=_evaluate(W_K, point), W_V=np.zeros((2, 1)), W_O=np.zeros((1, 2)), s=point[s]
    )
    c.close("score_operator", ref_model.score_operator(head), _evaluate(M, point))
    dW_Q, dW_K, ds = ref_back.score_operator_backward(head, _evaluate(G, point))
    c.close("score_operator_backward W_Q", dW_Q, _evaluate(formulas["W_Q"], point))
    c.close("score_operator_backward W_K", dW_K, _evaluate(formulas["W_K"], point))
    c.close("score_operator_backward s", ds, _evaluate(formulas["s"], point))
    return c.outcome()


@step(
    "BP.4", checks=("reference.backward.head_backward", "reference.model.head_forward", "reference.model.head_output")
)
def step_bp_4() -> StepOutcome:
    """One head end to end: the gradients of ⟨G, softmax_row(X M Xᵀ) X W_V W_O⟩ in W_Q, W_K, W_V, W_O, s and X are the
    chain of BP.1–BP.3 as implemented by reference.backward.head_backward.

    Chain: ``dA = G (X W_V W_O)ᵀ``, ``dS = A ⊙ (dA − (A ⊙ dA)1)``, ``dM = Xᵀ dS X``, then BP.3 for
    ``(W_Q, W_K, s)``; ``dW_O = (A X W_V)ᵀ G``, ``dW_V = Xᵀ Aᵀ G W_Oᵀ``;
    ``dX = Aᵀ G W_Oᵀ W_Vᵀ + dS X Mᵀ + dSᵀ X M``.
    """
    c = _checks()
    X, G = symbol_matrix("X", 2, 2), symbol_matrix("G", 2, 2)
    W_Q, W_K, W_V = symbol_matrix("W_Q", 2, 1), symbol_matrix("W_K", 2, 1), symbol_matrix("W_V", 2, 1)
    W_O = symbol_matrix("W_O", 1, 2)
    s = sp.Symbol("s", real=True)
    coef = _Exp(-s)  # d_k = 1
    M = W_Q * W_K.T * coef
    A = _softmax_rows(X * M * X.T)
    O = X * W_V * W_O
    f = _frobenius(G, A * O)
    dA = G * O.T
    dS = _softmax_rows_backward(A, dA)
    dM = X.T * dS * X
    formulas = {
        "s": -_frobenius(dM, M),
        "W_Q": coef * dM * W_K,
        "W_K": coef * dM.T * W_Q,
        "W_V": X.T * A.T * G * W_O.T,
        "W_O": (A * X * W_V).T * G,
        "X": A.T * G * W_O.T * W_V.T + dS * X * M.T + dS.T * X * M,
    }
    c.zero("∂f/∂s", sp.diff(f, s) - formulas["s"])
    for name, wrt in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V), ("W_O", W_O), ("X", X)):
        c.zero(f"∂f/∂{name}", _grad(f, wrt) - formulas[name])
    rng = step_rng("BP.4")
    point = _point(rng, X, G, W_Q, W_K, W_V, W_O)
    point[s] = float(rng.standard_normal())
    head = _head(point, W_Q, W_K, W_V, W_O, s)
    Xn = _evaluate(X, point)[None]
    cache = ref_model.head_forward(head, Xn)
    c.close("head_output", ref_model.head_output(cache.A, Xn, head.W_V, head.W_O)[0], _evaluate(A * O, point))
    dX, grads = ref_back.head_backward(head, Xn, cache, _evaluate(G, point)[None])
    for name in ("W_Q", "W_K", "W_V", "W_O", "s"):
        c.close(f"head_backward {name}", grads[name], _evaluate(formulas[name], point))
    c.close("head_backward X", dX[0], _evaluate(formulas["X"], point))
    return c.outcome()


@step(
    "BP.5",
    checks=(
        "reference.backward.cross_entropy_backward",
        "reference.backward.readout_backward",
        "reference.model.cross_entropy",
        "reference.model.log_softmax",
        "reference.model.readout",
    ),
)
def step_bp_5() -> StepOutcome:
    """Mean-pool readout + cross-entropy (mean over B): ∂L/∂logits = (softmax − onehot)/B, ∂L/∂W_c = z̄ᵀ∂L/∂logits,
    ∂L/∂b_c = 1ᵀ∂L/∂logits, ∂L/∂Z_{b,t} = (∂L/∂logits W_cᵀ)_b / T.

    Readout + cross-entropy, mean over ``B``: with ``p_b = softmax(z̄_b W_c + b_c)``,
    ``∂L/∂logits = (p − onehot)/B``, ``∂L/∂W_c = z̄ᵀ ∂L/∂logits``, ``∂L/∂b_c = 1ᵀ ∂L/∂logits`` and
    ``∂L/∂Z_{b,t} = (∂L/∂logits W_cᵀ)_b / T``.
    """
    c = _checks()
    B, T, d, n_classes = 2, 2, 2, 2
    labels = [1, 0]
    Zs = [symbol_matrix(f"Z{b}", T, d) for b in range(B)]
    W_c, b_c = symbol_matrix("W_c", d, n_classes), symbol_matrix("b_c", 1, n_classes)
    z_bar = sp.Matrix([[sum(Zs[b][t, i] for t in range(T)) / T for i in range(d)] for b in range(B)])
    logits = z_bar * W_c + sp.ones(B, 1) * b_c
    log_norm = [sp.log(sum(sp.exp(logits[b, k]) for k in range(n_classes))) for b in range(B)]
    L = -sp.Add(*[logits[b, labels[b]] - log_norm[b] for b in range(B)]) / B
    probs = sp.Matrix(B, n_classes, lambda b, k: sp.exp(logits[b, k] - log_norm[b]))
    dlogits = (probs - sp.Matrix(B, n_classes, lambda b, k: 1 if k == labels[b] else 0)) / B
    dz_bar = dlogits * W_c.T
    c.zero("∂L/∂W_c", _grad(L, W_c) - z_bar.T * dlogits)
    c.zero("∂L/∂b_c", _grad(L, b_c) - sp.ones(1, B) * dlogits)
    for b in range(B):
        c.zero(f"∂L/∂Z_{b}", _grad(L, Zs[b]) - sp.ones(T, 1) * dz_bar.row(b) / T)
    point = _point(step_rng("BP.5"), *Zs, W_c, b_c)
    Zn = np.stack([_evaluate(Z, point) for Z in Zs])
    Wn, bn = _evaluate(W_c, point), _evaluate(b_c, point)[0]
    labels_n = np.array(labels, dtype=np.int64)
    z_bar_n, logits_n = ref_model.readout(Zn, Wn, bn)
    log_probs = ref_model.log_softmax(logits_n)
    c.close("cross_entropy", ref_model.cross_entropy(log_probs, labels_n), _evaluate(L, point))
    dlog_n = ref_back.cross_entropy_backward(log_probs, labels_n)
    c.close("cross_entropy_backward", dlog_n, _evaluate(dlogits, point))
    dZ, dW, db = ref_back.readout_backward(z_bar_n, Wn, dlog_n, T)
    c.close("readout_backward W_c", dW, _evaluate(z_bar.T * dlogits, point))
    c.close("readout_backward b_c", db, _evaluate(sp.ones(1, B) * dlogits, point)[0])
    c.close("readout_backward Z", dZ, np.stack([_evaluate(_grad(L, Zs[b]), point) for b in range(B)]))
    return c.outcome()


@step("BP.6", checks=("reference.backward.softmax_rows_backward", "reference.model.softmax_rows"))
def step_bp_6() -> StepOutcome:
    """Through Q = softmax(−D/T_P): ∂(gᵀPq)/∂D_k = −(1/T_P) q_k (r_k − qᵀr), r = Pᵀg."""
    c = _checks()
    K = 3
    D, P, g = symbol_matrix("D", 1, K), symbol_matrix("P", 2, K), symbol_matrix("g", 2, 1)
    q = _softmax_rows(-D / T_P)
    f = (g.T * P * q.T)[0, 0]
    r = (P.T * g).T
    formula = -_softmax_rows_backward(q, r) / T_P
    c.zero("∂(gᵀPq)/∂D", _grad(f, D) - formula)
    rng = step_rng("BP.6")
    point = _point(rng, P, g)
    point.update({s: float(abs(rng.standard_normal())) for s in D})
    point[T_P] = 0.5 + float(rng.random())
    Qn = ref_model.softmax_rows(-_evaluate(D, point) / point[T_P])
    rn = (_evaluate(P, point).T @ _evaluate(g, point)).T
    c.close(
        "−softmax_rows_backward(Q, dQ)/T_P",
        -ref_back.softmax_rows_backward(Qn, rn) / point[T_P],
        _evaluate(formula, point),
    )
    return c.outcome()


@step("BP.7", checks=("reference.backward.ddcl_block_backward", "reference.model.ddcl_block"))
def step_bp_7() -> StepOutcome:
    """Z = Y + Q(Y,P)Pᵀ per token: ∇_y = g + 2(Σw)y − 2Pw, ∇_P = g qᵀ + 2(P diag w − y wᵀ), w = ∂(gᵀz)/∂D from BP.6
    (reference.backward.ddcl_block_backward).

    DDCL output ``z = y + P q(y, P)`` for one token (``d = K = 2``), ``f = gᵀz``:
    ``∇_y f = g + 2(Σ_k w_k) y − 2 P w`` and ``∇_P f = g qᵀ + 2(P diag(w) − y wᵀ)`` with ``w = ∂f/∂D``
    from BP.6 — the pull-back through ``D_k = ‖y − p_k‖²`` of ``reference.ddcl.pullback_distances``.
    """
    c = _checks()
    y, P, g = symbol_matrix("y", 2, 1), symbol_matrix("P", 2, 2), symbol_matrix("g", 2, 1)
    D = sp.Matrix(1, 2, lambda _, k: ((y - P.col(k)).T * (y - P.col(k)))[0, 0])
    q = _softmax_rows(-D / T_P)
    f = (g.T * (y + P * q.T))[0, 0]
    w = -_softmax_rows_backward(q, (P.T * g).T) / T_P  # 1×K
    grad_y = g + 2 * sum(w) * y - 2 * P * w.T
    grad_P = g * q + 2 * (P * sp.diag(*w) - y * w)
    c.zero("∇_y f", _grad(f, y) - grad_y)
    c.zero("∇_P f", _grad(f, P) - grad_P)
    rng = step_rng("BP.7")
    point = _point(rng, y, P, g)
    point[T_P] = 0.5 + float(rng.random())
    Yn, Pn = _evaluate(y, point).T, _evaluate(P, point)
    _, Q_n, Z_n = ref_model.ddcl_block(Yn, Pn, point[T_P])
    c.close("ddcl_block Z", Z_n, _evaluate((y + P * q.T).T, point))
    dY, dP = ref_back.ddcl_block_backward(Yn, Pn, Q_n, point[T_P], _evaluate(g, point).T)
    c.close("ddcl_block_backward Y", dY, _evaluate(grad_y.T, point))
    c.close("ddcl_block_backward P", dP, _evaluate(grad_P, point))
    return c.outcome()


STEPS: tuple[Step, ...] = collect_steps(globals())


__all__ = [
    "F64",
    "STEPS",
    "T_P",
    "Sym",
    "step_bp_1",
    "step_bp_2",
    "step_bp_3",
    "step_bp_4",
    "step_bp_5",
    "step_bp_6",
    "step_bp_7",
]
