"""Invariants of claim G5 (pruning safety, SPEC §4) and the bounds they rest on.

G5 has two halves. On the operator: removing head ``h`` changes ``A_res`` by exactly
``−Π⊥ ½[C, M_a^h] Π⊥``, of spectral norm ``≤ G_h = ‖C M_a^h‖_F``, so ``λ_max(A_res)`` moves by at most
``G_h`` and, under hysteresis, a prune never re-triggers growth at the next check on the same probe.
On the layer: the output ``Y`` changes by exactly the head's term ``U_h = A_h X W_V^h W_O^h``, and the
certified bounds below limit ``‖U_h‖`` and the change of ``L_task``. Every bound is derived here, in
the docstrings, from the steps G5.1–G5.7; the trainer only records the results
(:func:`check_g5_at_prune`, :func:`check_no_retrigger`).

This module is the G5 part of the INCRT family (``reference.invariants.incrt`` has G1–G4 and G6); it is
separate because it is the one INCRT claim about the layer itself, not only about operators.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from jaxtyping import Float64

from reference._arrays import (
    F64Array,
    arr,
    check_array,
    check_dim,
    check_index,
    check_temperature,
    f64,
    finite_result,
)
from reference.growth_statistics import Probe, head_operators, residual_for
from reference.incrt.controller import EventKind, GrowthConfig, GrowthState, grow_check
from reference.incrt.operators import (
    check_basis,
    check_symmetric,
    check_theta,
    commutator_form,
    complement_projector,
    eigenvalues_desc,
    eigh_error_bound,
    exact_extremes,
    frobenius,
    head_strength,
    is_near_tie,
    is_symmetric,
    residual_operator,
)
from reference.invariants.incrt import orthonormality_bound
from reference.invariants.result import InvariantResult, finish
from reference.model import HeadParams, LayerConfig, ModelParams, forward, head_output
from reference.tolerances import CheckKind, accumulation_bound, tolerance

# --------------------------------------------------------------------------------------------------
# Certified bounds on the removed head term and on the change of L_task (steps G5.5–G5.7)
# --------------------------------------------------------------------------------------------------


# The names of G5's two checks that need its hysteresis hypothesis (the registry's Hypothesis.only_for).
HYSTERESIS_CHECK = "hysteresis λ_max + G_h ≤ θ ⇒ no growth at the next check"
NO_RETRIGGER_CHECK = "no re-trigger"


def check_attention(name: str, value: object, B: int, T: int) -> F64Array:
    """A B×T×T array with rows on the simplex (within the STOCHASTIC tolerance·T)."""
    A = check_array(name, value, 3)
    check_dim(name, A, 0, B, "X's batch size B")
    check_dim(name, A, 1, T, "X's sequence length T")
    check_dim(name, A, 2, T, "X's sequence length T")
    if np.any(A < 0.0):
        raise ValueError(f"{name}: attention weights must be >= 0, min is {f64(A.min())!r}")
    atol = tolerance("float64", CheckKind.STOCHASTIC).atol * T
    err = f64(np.max(np.abs(A.sum(axis=2) - 1.0)))
    if err > atol:
        raise ValueError(f"{name}: rows must sum to 1 (tol {atol:.1e}), max |row sum − 1| = {err:.3g}")
    return A


@finite_result("X", "W_V", "W_O")
def head_output_bound(
    X: Float64[np.ndarray, "B T d"], W_V: Float64[np.ndarray, "d d_v"], W_O: Float64[np.ndarray, "d_v d"]
) -> Float64[np.ndarray, " B"]:
    """Per sequence ``b``: ``β_b = max_s ‖X_{b,s} W_V W_O‖`` (``X_{b,s}`` a row of the layer input), which
    bounds every row of ``U_h`` (G5).

    Row ``t`` of ``A_h X W_V W_O`` is ``Σ_s a_ts (X_s W_V W_O)`` with ``a_t`` on the simplex, a convex
    combination, so its norm is at most ``β_b`` (step G5.5); hence ``‖U_{h,b}‖_F ≤ √T β_b`` and
    ``β_b ≤ max_s ‖X_{b,s}‖ · ‖W_V W_O‖_2``. The bound holds for *every* attention pattern, so it needs
    no knowledge of ``M_h`` or ``τ_h``.
    """
    X_ = check_array("X", X, 3)
    W_V_ = check_array("W_V", W_V, 2)
    W_O_ = check_array("W_O", W_O, 2)
    check_dim("W_V", W_V_, 0, X_.shape[2], "X's width d")
    check_dim("W_O", W_O_, 0, W_V_.shape[1], "W_V's value width d_v")
    check_dim("W_O", W_O_, 1, X_.shape[2], "X's width d")
    V = X_ @ W_V_ @ W_O_
    return arr(np.sqrt(np.max(np.sum(V * V, axis=2), axis=1)))


@finite_result("P", "T_P")
def prototype_lipschitz(P: Float64[np.ndarray, "d K"], T_P: float) -> float:
    """``L_Z = 1 + diam(P)²/(2 T_P)``: Lipschitz constant of ``y ↦ z = y + P q(y)`` (per token, G5).

    ``∂(P q)/∂y = (2/T_P) Cov_q(P)`` with ``Cov_q(P) = Σ_j q_j (p_j − p̄)(p_j − p̄)ᵀ`` (step G5.7), PSD
    with ``λ_max ≤ max_{‖v‖=1} Var_q(vᵀp) ≤ diam(P)²/4`` (Popoviciu). So ``‖∂z/∂y‖_2 ≤ L_Z`` everywhere
    and, by the mean-value inequality along the segment, ``‖Δz_t‖ ≤ L_Z ‖Δy_t‖``.
    """
    P_ = check_array("P", P, 2)
    T = check_temperature("T_P", T_P)
    diff = P_[:, :, None] - P_[:, None, :]
    diam2 = f64(np.max(np.sum(diff * diff, axis=0)))
    return 1.0 + diam2 / (2.0 * T)


@finite_result("W_c")
def readout_lipschitz(W_c: Float64[np.ndarray, "d c"]) -> float:
    """``√2 ‖W_c‖_2``: Lipschitz constant of ``z̄ ↦ CE(z̄ W_c + b_c, y)`` for every label ``y`` (G5).

    ``∇_o CE = softmax(o) − e_y`` has ``‖·‖² = (1 − p_y)² + Σ_{j≠y} p_j² ≤ 2(1 − p_y)² ≤ 2``
    (step G5.6), and ``‖Δz̄ W_c‖ ≤ ‖W_c‖_2 ‖Δz̄‖``.
    """
    W = check_array("W_c", W_c, 2)
    return float(np.sqrt(2.0)) * f64(np.linalg.norm(W, 2))


@finite_result("dY", "P", "T_P", "W_c")
def task_loss_change_bound(
    dY: Float64[np.ndarray, "B T d"],
    P: Float64[np.ndarray, "d K"],
    T_P: float,
    W_c: Float64[np.ndarray, "d c"],
) -> float:
    """Certified ``|L_task(Y) − L_task(Y − ΔY)| ≤ √2‖W_c‖_2 · L_Z · mean_b mean_t ‖Δy_{b,t}‖`` (claim G5).

    ``ΔY`` is the change of the attention-sublayer output; for the removal of head ``h`` it is exactly
    ``U_h = A_h X W_V^h W_O^h`` (the other heads do not depend on ``h``). Chain, per sequence ``b``:
    per token ``‖Δz_t‖ ≤ L_Z ‖Δy_t‖`` (:func:`prototype_lipschitz`, step G5.7); mean pooling
    ``‖Δz̄_b‖ ≤ mean_t ‖Δz_{b,t}‖ ≤ L_Z mean_t ‖Δy_{b,t}‖``; ``|Δℓ_b| ≤ √2‖W_c‖_2 ‖Δz̄_b‖``
    (:func:`readout_lipschitz`, step G5.6); ``L_task = mean_b ℓ_b``.

    For a prune ``mean_t ‖u_{b,t}‖ ≤ β_b`` (:func:`head_output_bound`, step G5.5), so this is never
    larger than the attention-free form ``√2‖W_c‖_2 · L_Z · mean_b β_b``; using the per-token norms
    instead of their maximum is what makes it tighter (docs/theory.md, G5, reports the measured ratios).
    """
    dY_ = check_array("dY", dY, 3)
    P_ = check_array("P", P, 2)
    check_dim("P", P_, 0, dY_.shape[2], "dY's width d")
    W = check_array("W_c", W_c, 2)
    check_dim("W_c", W, 0, dY_.shape[2], "dY's width d")
    lipschitz = readout_lipschitz(W) * prototype_lipschitz(P_, T_P)
    scale = f64(np.max(np.abs(dY_)))
    if scale == 0.0:
        return 0.0
    Z = dY_ / scale  # scaled first so that squares of tiny entries do not underflow (as frobenius)
    token_norms = scale * np.sqrt(np.sum(Z * Z, axis=2))
    return lipschitz * f64(np.mean(token_norms))


# --------------------------------------------------------------------------------------------------
# Hypotheses of G5 (predicates on the invariant's keyword inputs)
# --------------------------------------------------------------------------------------------------


def second_moment_symmetric(*, C: F64Array, **_: Any) -> bool:
    """``C = Cᵀ``."""
    return is_symmetric(C)


def heads_antisymmetric(*, head_operators: Sequence[F64Array], **_: Any) -> bool:
    """Every ``M_a^h = −M_a^hᵀ``."""
    return all(is_symmetric(M, sign=-1.0) for M in head_operators)


def captured_orthonormal(*, Q_cap: F64Array, **_: Any) -> bool:
    """``Q_capᵀQ_cap = I`` within the G1 orthonormality bound (so ``Π⊥`` is a projector)."""
    d, m = check_array("Q_cap", Q_cap, 2, allow_empty=True).shape
    return m == 0 or f64(np.max(np.abs(Q_cap.T @ Q_cap - np.eye(m)))) <= orthonormality_bound(d, m)


def hysteresis(
    *, C: F64Array, head_operators: Sequence[F64Array], h: int, Q_cap: F64Array, theta: float, **_: Any
) -> bool:
    """The prune of head ``h`` happens only if ``λ_max(A_res) + G_h ≤ θ`` (SPEC §3.3)."""
    Ms = [check_array(f"head_operators[{i}]", M, 2) for i, M in enumerate(head_operators)]
    M_a = np.sum(np.stack(Ms), axis=0)
    lam = exact_extremes(residual_operator(C, M_a, Q_cap)).lam_max
    return bool(lam + head_strength(C, head_operators[h]) <= theta)


# --------------------------------------------------------------------------------------------------
# The invariant
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PruneOutput:
    """What the trainer measured at a prune, for G5's output and loss checks.

    ``U_h`` is the removed head's term as the implementation computed it (``Y_before − Y_after`` is
    this term in exact arithmetic, since the other heads do not depend on ``h``); ``dY`` the measured
    ``Y_before − Y_after`` of the two attention-sublayer outputs at which ``loss_before`` and
    ``loss_after`` were evaluated (the loss bound is stated for it, so the rounding of forming the two
    ``Y`` is not hidden); ``A_h`` its attention, ``X`` the layer input, ``W_V``/``W_O`` its value/output
    maps; ``P``, ``T_P`` the DDCL block; ``W_c`` the readout; ``loss_before``/``loss_after`` the
    measured ``L_task`` on the same batch.
    """

    A_h: Float64[np.ndarray, "B T T"]
    X: Float64[np.ndarray, "B T d"]
    W_V: Float64[np.ndarray, "d d_v"]
    W_O: Float64[np.ndarray, "d_v d"]
    U_h: Float64[np.ndarray, "B T d"]
    dY: Float64[np.ndarray, "B T d"]
    P: Float64[np.ndarray, "d K"]
    T_P: float
    W_c: Float64[np.ndarray, "d c"]
    loss_before: float
    loss_after: float


@finite_result("C", "head_operators", "Q_cap", "theta")
def check_g5(
    *,
    C: Float64[np.ndarray, "d d"],
    head_operators: Sequence[Float64[np.ndarray, "d d"]],
    h: int,
    Q_cap: Float64[np.ndarray, "d m"],
    theta: float,
    A_res_after: Float64[np.ndarray, "d d"] | None = None,
    output: PruneOutput | None = None,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """G5: removing head ``h`` changes ``A_res`` by ``−Π⊥ S_h Π⊥`` (``S_h = ½[C, M_a^h]``), of spectral
    norm ``≤ G_h``; ``λ_max`` moves by ``≤ G_h``; under hysteresis no growth at the next check; the
    output and ``L_task`` change within the certified bounds.

    Proofs: ``A_res`` is linear in ``M_a = Σ_h M_a^h`` (step G5.2). ``‖Π⊥ S_h Π⊥‖_2 ≤ ‖S_h‖_2 ≤
    ½(‖C M_a^h‖_2 + ‖M_a^h C‖_2) = ‖C M_a^h‖_2 ≤ ‖C M_a^h‖_F = G_h`` (``M_a^h C = −(C M_a^h)ᵀ``, step
    G5.3; ``‖·‖_2 ≤ ‖·‖_F``, step G5.4). Weyl: ``|λ_max(A + Δ) − λ_max(A)| ≤ ‖Δ‖_2``. Hysteresis
    ``λ_max + G_h ≤ θ`` then gives ``λ_max(after) ≤ θ``: the growth test ``> θ`` fails.

    Floats: the three operators are computed with entrywise error ``≤ γ_{4d+6}`` times
    ``d(1 + m)²‖C‖_F‖M_x‖_F`` each (two products for ``S``, two with ``Π⊥``, whose rows have
    ``ℓ1``-norm ``≤ √d(1 + m)``); eigenvalues carry ``E``. ``head_operators`` are the ``M_a^h`` of all
    active heads *before* the prune; ``A_res_after`` is the implementation's (default: the reference's).
    """
    C_ = check_symmetric("C", C)
    d = C_.shape[0]
    Ms = [check_symmetric(f"head_operators[{i}]", M, sign=-1.0) for i, M in enumerate(head_operators)]
    if len(Ms) == 0:
        raise ValueError("head_operators: expected at least one head")
    for i, M in enumerate(Ms):
        check_dim(f"head_operators[{i}]", M, 0, d, "C's width d")
    h_ = check_index("h", h, len(Ms))
    Q = check_basis("Q_cap", Q_cap, d)
    th = check_theta("theta", theta)
    m = Q.shape[1]
    M_tot = arr(np.sum(np.stack(Ms), axis=0))
    M_rest = arr(M_tot - Ms[h_])
    before = residual_operator(C_, M_tot, Q)
    after = residual_operator(C_, M_rest, Q) if A_res_after is None else check_symmetric("A_res_after", A_res_after)
    check_dim("A_res_after", after, 0, d, "C's width d")
    Pi = complement_projector(Q)
    delta_formula = arr(-(Pi @ commutator_form(C_, Ms[h_]) @ Pi))
    G_h = head_strength(C_, Ms[h_])
    nC = frobenius(C_)
    norm_M = frobenius(M_tot) + frobenius(Ms[h_]) + frobenius(M_rest)
    # With every M zero the three operators are exactly zero whatever C, and so is their error scale
    # (computed as a product, an overflowed ‖C‖_F = inf times 0 would be NaN).
    scale = 0.0 if norm_M == 0.0 else d * (1 + m) ** 2 * nC * norm_M
    E_b, E_a = eigh_error_bound(before), eigh_error_bound(after)
    lam_b, lam_a = f64(eigenvalues_desc(before)[0]), f64(eigenvalues_desc(after)[0])
    delta_norm = f64(np.linalg.norm(delta_formula, 2))
    out: list[InvariantResult] = [
        InvariantResult(
            "G5",
            "removal: A_res(after) − A_res(before) = −Π⊥½[C, M_a^h]Π⊥",
            f64(np.max(np.abs(after - before - delta_formula))),
            accumulation_bound(4 * d + 6, scale),
            f"h={h_}, d={d}, m={m}",
        ),
        InvariantResult(
            "G5",
            "‖Π⊥½[C, M_a^h]Π⊥‖_2 ≤ G_h = ‖C M_a^h‖_F",
            delta_norm,
            G_h + accumulation_bound(4 * d + 6, scale) * d + eigh_error_bound(delta_formula),
            f"G_h={G_h!r}",
        ),
        InvariantResult(
            "G5",
            "Weyl: |λ_max(after) − λ_max(before)| ≤ G_h",
            abs(lam_a - lam_b),
            G_h + E_a + E_b + accumulation_bound(4 * d + 6, scale) * d,
            f"λ_max before={lam_b!r}, after={lam_a!r}, G_h={G_h!r}",
        ),
    ]
    if lam_b + G_h <= th:
        out.append(
            InvariantResult(
                "G5",
                f"{HYSTERESIS_CHECK}: λ_max(after)",
                lam_a,
                th + E_a + E_b + accumulation_bound(4 * d + 6, scale) * d,
                f"θ={th!r}, λ_max before={lam_b!r}, G_h={G_h!r}",
            )
        )
    if output is not None:
        out.extend(_check_g5_output(output))
    return finish(out, raise_on_violation)


def _check_g5_output(o: PruneOutput) -> list[InvariantResult]:
    """Output checks of G5 (bounds derived in :func:`task_loss_change_bound`).

    * the measured head term equals ``A_h X W_V W_O`` within Higham's product bound
      ``γ_{T+d+d_v}·(|A_h||X||W_V||W_O|)``;
    * per sequence ``‖U_{h,b}‖_F ≤ √T β_b`` (rows are convex combinations, step G5.5);
    * ``|L_after − L_before| ≤ √2‖W_c‖_2 · L_Z · mean_{b,t} ‖Δy_{b,t}‖`` for the measured ``ΔY``, plus
      the rounding of the two measured losses, ``γ_{T+K+2d+c+10}(|L_before| + |L_after|)``, and of
      evaluating the bound itself (norms, means, products: ``γ_{BT+2d+c+K+8}`` relative).
    """
    X = check_array("X", o.X, 3)
    B, T, d = X.shape
    A_h = check_attention("A_h", o.A_h, B, T)
    beta = head_output_bound(X, o.W_V, o.W_O)  # validates W_V, W_O against X (names them) before use
    U_ref = head_output(A_h, X, o.W_V, o.W_O)
    U = check_array("U_h", o.U_h, 3)
    check_dim("U_h", U, 0, B, "X's batch size")
    check_dim("U_h", U, 1, T, "X's sequence length")
    check_dim("U_h", U, 2, d, "X's width")
    dv = o.W_V.shape[1]
    absprod = np.einsum("bts,bsd->btd", np.abs(A_h), np.abs(X) @ np.abs(o.W_V) @ np.abs(o.W_O))
    norms = np.sqrt(np.sum(U * U, axis=(1, 2)))
    caps = np.sqrt(T) * beta
    worst = int(np.argmax(norms - caps))
    dY = check_array("dY", o.dY, 3)
    check_dim("dY", dY, 0, B, "X's batch size")
    check_dim("dY", dY, 1, T, "X's sequence length")
    check_dim("dY", dY, 2, d, "X's width")
    K, c = o.P.shape[1], o.W_c.shape[1]
    loss_bound = task_loss_change_bound(dY, o.P, o.T_P, o.W_c)
    loss_slack = accumulation_bound(T + K + 2 * d + c + 10, abs(o.loss_before) + abs(o.loss_after)) + (
        accumulation_bound(B * T + 2 * d + c + K + 8, loss_bound)
    )
    return [
        InvariantResult(
            "G5",
            "removed output term equals A_h X W_V W_O",
            f64(np.max(np.abs(U - U_ref))),
            accumulation_bound(T + d + dv, f64(np.max(absprod))),
            f"B={B}, T={T}, d={d}",
        ),
        InvariantResult(
            "G5",
            "‖U_h,b‖_F ≤ √T · max_s‖X_s W_V W_O‖",
            f64(norms[worst]),
            f64(caps[worst]) + accumulation_bound(T + d + dv + 2, f64(caps[worst])),
            f"worst b={worst}",
        ),
        InvariantResult(
            "G5",
            "|ΔL_task| ≤ √2‖W_c‖_2 · L_Z · mean_{b,t}‖Δy_{b,t}‖",
            abs(o.loss_after - o.loss_before),
            loss_bound + loss_slack,
            f"bound={loss_bound!r}",
        ),
    ]


# --------------------------------------------------------------------------------------------------
# G5 at a prune during training (the trainer records these results)
# --------------------------------------------------------------------------------------------------


def check_g5_at_prune(
    *,
    layer_cfg: LayerConfig,
    theta: float,
    before: ModelParams,
    after: ModelParams,
    head_id: int,
    C: F64Array,
    Q_cap: F64Array,
    probe: Probe,
) -> tuple[InvariantResult, ...]:
    """G5 at the removal of ``head_id`` (``before`` → ``after``) during training, measured on the probe.

    :func:`check_g5` with the trainer's own ``A_res`` after removal and the
    measured output (the head term from the forward cache, ``L_task`` before/after), plus two checks
    of the measured change of the layer output ``ΔY = Y_before − Y_after``:

    * ``ΔY`` equals the head's term ``U_h`` exactly up to rounding: ``Y = X + Σ_h U_h`` is a recursive
      sum of ``|𝓗| + 1`` terms whose other terms are bit-identical before and after, so
      ``|ΔY − U_h| ≤ γ_{|𝓗|+2} · 2(|X| + Σ_h |U_h|)`` entrywise (Higham §4.2, through
      :func:`reference.tolerances.accumulation_bound`);
    * per sequence ``‖ΔY_b‖_F ≤ √T β_b`` (:func:`head_output_bound`), up to that
      rounding (``√(T d)`` times the entrywise bound) and the rounding of ``U_h`` itself
      (``γ_{T+d+d_v+2} √T β_b``, as in check_g5).
    """
    cfg = layer_cfg
    ids = sorted(before.heads)
    Ms = head_operators(before)
    cache_b = forward(before, cfg, probe.x, probe.labels)
    cache_a = forward(after, cfg, probe.x, probe.labels)
    hc = cache_b.heads[head_id]
    head: HeadParams = before.heads[head_id]
    output = PruneOutput(
        A_h=hc.A,
        X=cache_b.X,
        W_V=head.W_V,
        W_O=head.W_O,
        U_h=hc.out,
        dY=arr(cache_b.Y - cache_a.Y),
        P=before.P,
        T_P=cfg.T_P,
        W_c=before.W_c,
        loss_before=cache_b.L_task,
        loss_after=cache_a.L_task,
    )
    res = check_g5(
        C=C,
        head_operators=[Ms[h] for h in ids],
        h=ids.index(head_id),
        Q_cap=Q_cap,
        theta=theta,
        A_res_after=residual_for(after, C, Q_cap),
        output=output,
    )
    B, T, d = cache_b.Y.shape
    dY = cache_b.Y - cache_a.Y
    scale = np.abs(cache_b.X) + sum((np.abs(c.out) for c in cache_b.heads.values()), start=np.zeros_like(dY))
    entry_bound = accumulation_bound(len(ids) + 2, 2.0 * f64(np.max(scale)))
    beta = head_output_bound(cache_b.X, head.W_V, head.W_O)
    norms = np.sqrt(np.sum(dY * dY, axis=(1, 2)))
    caps = math.sqrt(T) * beta
    worst = int(np.argmax(norms - caps))
    cap = f64(caps[worst])
    d_v = head.W_V.shape[1]
    extra = (
        InvariantResult(
            "G5",
            "measured ΔY = Y_before − Y_after equals the head term U_h",
            f64(np.max(np.abs(dY - hc.out))),
            entry_bound,
            f"h={head_id}, heads={ids}",
        ),
        InvariantResult(
            "G5",
            "measured ‖ΔY_b‖_F ≤ √T · max_s‖X_s W_V W_O‖ (certified)",
            f64(norms[worst]),
            cap + accumulation_bound(T + d + d_v + 2, cap) + math.sqrt(T * d) * entry_bound,
            f"h={head_id}, worst b={worst}, B={B}",
        ),
    )
    return res + extra


def check_no_retrigger(
    *, growth_cfg: GrowthConfig, params: ModelParams, growth: GrowthState, C: F64Array, step: int
) -> InvariantResult:
    """G5's "no grow/prune oscillation": right after the prune(s), the growth test on the same probe,
    with the dwell switched off, makes no birth. A DECISION near-tie is allowed to fire (SPEC §6)."""
    A_after = residual_for(params, C, growth.Q_cap)
    _, events = grow_check(growth, replace(growth_cfg, T_d=0), A_after, step, new_head_id=params.next_head_id)
    births = sum(1 for e in events if e.kind is EventKind.BIRTH)
    lam = exact_extremes(A_after).lam_max
    tie = is_near_tie(lam, growth_cfg.theta)
    return InvariantResult(
        "G5",
        f"{NO_RETRIGGER_CHECK}: births at the next check on the same probe (T_d = 0)",
        float(births),
        1.0 if tie else 0.0,
        f"λ_max(after)={lam!r}, θ={growth_cfg.theta!r}, near-tie={tie}, m={growth.m}",
    )


__all__ = [
    "HYSTERESIS_CHECK",
    "NO_RETRIGGER_CHECK",
    "PruneOutput",
    "captured_orthonormal",
    "check_attention",
    "check_g5",
    "check_g5_at_prune",
    "check_no_retrigger",
    "head_output_bound",
    "heads_antisymmetric",
    "hysteresis",
    "prototype_lipschitz",
    "readout_lipschitz",
    "second_moment_symmetric",
    "task_loss_change_bound",
]
