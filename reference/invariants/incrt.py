"""Invariants of the INCRT claims G1–G6 (SPEC §4, static operator ``A``).

Every check returns :class:`InvariantResult` records ``value ≤ bound``; bounds come from
:mod:`reference.tolerances` (``accumulation_bound``) and from the a-priori eigen-solver bound
:func:`reference.incrt.eigh_error_bound`, composed through the perturbation inequalities written in
each docstring (Weyl, Davis–Kahan's residual form, Cauchy interlacing). Nothing is a picked literal.

Notation: ``A`` symmetric d×d with eigenvalues ``λ_1 ≥ … ≥ λ_d`` and unit eigenvectors ``v_i``;
``E(B) = eigh_error_bound(B)``; a capture run has directions ``û_k`` (columns of ``Q_cap``) and births
``λ̂_k``; ``Â_k = Π̂_k A Π̂_k`` with ``Π̂_k = I − Q̂_{<k} Q̂_{<k}ᵀ`` is the operator round ``k`` saw.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_dim, check_index, f64
from reference.incrt import (
    CaptureResult,
    TrackerKind,
    TrackerResult,
    angle,
    check_attention,
    check_basis,
    check_symmetric,
    check_theta,
    commutator_form,
    complement_projector,
    contraction_factor,
    deflate,
    eigenvalues_desc,
    eigenvector_sin_bound,
    eigh_error_bound,
    frobenius,
    head_output,
    head_output_bound,
    head_strength,
    is_near_tie,
    residual_operator,
    spectral_error,
    step_size_certified,
    task_loss_change_bound,
    tracked_gap_certified,
    tracker_tan_bound,
)
from reference.invariants.result import InvariantResult, finish
from reference.tolerances import accumulation_bound

# --------------------------------------------------------------------------------------------------
# Shared bounds
# --------------------------------------------------------------------------------------------------


def orthonormality_bound(d: int, m: int) -> float:
    """Bound on ``max |Q_capᵀQ_cap − I|`` for a ``Q_cap`` built by ``append_direction`` (G1).

    Appending ``u`` (unit, ``‖Q̂ᵀu‖ = s ≤ 1/2``) computes ``w = u − Q̂(Q̂ᵀu)`` with error
    ``‖e‖ ≤ γ_{d+m+1}(1 + ‖|Q̂||Q̂ᵀ|‖) ≤ γ_{d+m+1}(1 + m)``; in exact arithmetic
    ``Q̂ᵀw = (I − Q̂ᵀQ̂)Q̂ᵀu`` is second order; ``‖w‖ ≥ √(1 − s²) ≥ √3/2`` and the normalisation adds
    ``γ_{d+2}``; forming the Gram entry adds ``γ_d``. Summing over the ``m`` appends and bounding
    ``(1 + m)/(√3/2) ≤ 2(m + 1)``: ``|q_iᵀq_j − δ_ij| ≤ γ_{2d+2m+4} · 2(m + 1)²`` (times the table's
    INVARIANT multiplier, through :func:`accumulation_bound`).
    """
    return accumulation_bound(2 * d + 2 * m + 4, 2.0 * (m + 1) ** 2)


def _lambda_max(B: F64Array) -> float:
    return f64(np.linalg.eigvalsh(B)[-1])


def round_operators(A: F64Array, capture: CaptureResult) -> list[F64Array]:
    """``Â_k = Π̂_k A Π̂_k`` for ``k = 1..m+1`` (the last one is the stopping check's operator)."""
    Q = capture.Q_cap
    return [deflate(A, arr(Q[:, :k])) for k in range(Q.shape[1] + 1)]


def capture_bounds(A: Float64[np.ndarray, "d d"], capture: CaptureResult) -> tuple[list[float], list[float]]:
    """A-priori ``(R_k, L_k)``: ``‖Aû_k − λ̂_k û_k‖ ≤ R_k`` and ``|λ̂_k − λ_k(A)| ≤ L_k`` (G2, G4).

    Gap-free (valid with repeated eigenvalues). Round ``k`` certifies (``E_k`` = the run's
    ``method_errors[k]``, recomputed as ``E(Â_k)(1 + 2‖Â_k‖_F/λ̂_k)`` for ``eigh`` runs)
    ``‖(Â_k − λ̂_k)û_k‖ ≤ E_k`` and ``|λ̂_k − λ_max(Â_k)| ≤ E_k``. Then:

    * residual w.r.t. ``A``: ``Aû − Â_kû = Q̂Q̂ᵀAû`` (``û ⟂ Q̂``), and ``û_jᵀAû = λ̂_j û_jᵀû + r_jᵀû``,
      so ``‖(A − λ̂_k)û_k‖ ≤ E_k + ρ_k + ω√k‖A‖_F``, ``ρ_k = (Σ_{j<k} R_j²)^{1/2}``, ``ω`` the G1
      orthonormality bound;
    * eigenvalue: in the basis ``[Q̂, Q̂⊥]``, ``A = [[H, Fᵀ], [F, G]]`` with ``‖F‖_2 ≤ ρ_k`` and the
      eigenvalues of ``H`` within ``ρ_k`` of ``λ̂_1..λ̂_{k−1}``; by Weyl the sorted spectrum of ``A`` is
      within ``ρ_k`` of ``eig(H) ∪ eig(G)``, whose ``k``-th largest lies in
      ``[λ̂_k − ρ_k − E_k, λ̂_k + E_k]`` (births non-increasing, ``λ_max(G) = λ_max(Â_k)``). So
      ``L_k = E_k + 2ρ_k + E(A)`` (the last term for computing ``λ_k(A)`` itself).
    """
    A_ = check_symmetric("A", A)
    ops = round_operators(A_, capture)
    nA = frobenius(A_)
    omega = orthonormality_bound(A_.shape[0], capture.m)
    R: list[float] = []
    L: list[float] = []
    for k in range(capture.m):
        lam_k = capture.lam_births[k]
        if capture.method == "eigh":
            Ek = eigh_error_bound(ops[k]) * (1.0 + 2.0 * frobenius(ops[k]) / lam_k) if lam_k > 0 else math.inf
        else:
            Ek = capture.method_errors[k]
        rho = math.sqrt(sum(r * r for r in R))
        R.append(Ek + rho + omega * math.sqrt(k + 1) * nA + accumulation_bound(A_.shape[0] + 2, nA + abs(lam_k)))
        L.append(Ek + 2.0 * rho + eigh_error_bound(A_))
    return R, L


def admissible_counts(A: F64Array, theta: float) -> tuple[int, int]:
    """``[m_lo, m_hi]``: ``m* = #{λ_i > θ}`` unless an eigenvalue is a near-tie with θ (SPEC §6)."""
    lam = eigenvalues_desc(A)
    E = eigh_error_bound(A)
    ties = [bool(is_near_tie(x, theta)) or abs(x - theta) <= E for x in lam.tolist()]
    above = [x > theta for x in lam.tolist()]
    m_lo = sum(1 for a, t in zip(above, ties, strict=True) if a and not t)
    m_hi = sum(1 for a, t in zip(above, ties, strict=True) if a or t)
    return m_lo, m_hi


def _interval_distance(x: int, lo: int, hi: int) -> float:
    return float(max(lo - x, x - hi, 0))


# --------------------------------------------------------------------------------------------------
# G1 Finite termination
# --------------------------------------------------------------------------------------------------


def check_g1(
    *,
    Q_cap: Float64[np.ndarray, "d m"],
    ranks: Sequence[int],
    theta: float,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """G1: ``Q_cap`` orthonormal, each growth raises its rank by exactly one, at most ``d`` growths.

    Proof (θ > 0): ``A_res = Π⊥ S Π⊥`` so ``A_res Q_cap = 0`` (step G1.2); growth needs
    ``λ_max(A_res) > θ > 0``, and an eigenvector for a non-zero eigenvalue lies in ``range(Π⊥)``
    (``u = A_res u/λ``), i.e. ``u₊ ⟂ Q_cap``; appending a unit vector orthogonal to an orthonormal set
    keeps it orthonormal and raises its rank by one (step G1.3); rank ≤ d. In floats: see
    :func:`orthonormality_bound`. ``ranks`` is the rank after each event, starting with the initial
    one; ``theta`` is only read by the hypothesis ``theta_positive``.
    """
    Q = check_array("Q_cap", Q_cap, 2, allow_empty=True)
    d, m = Q.shape
    r = [int(x) for x in ranks]
    if len(r) == 0:
        raise ValueError("ranks: expected at least the initial rank")
    gram_err = f64(np.max(np.abs(Q.T @ Q - np.eye(m)))) if m else 0.0
    steps = [b - a for a, b in itertools.pairwise(r)]
    step_err = float(max((abs(s - 1) for s in steps), default=0))
    n_events = len(r) - 1
    out = (
        InvariantResult(
            "G1", "orthonormal Q_cap: max|Q_capᵀQ_cap − I|", gram_err, orthonormality_bound(d, m), f"d={d}, m={m}"
        ),
        InvariantResult("G1", "rank +1 per growth: max|Δrank − 1|", step_err, 0.0, f"ranks={r}"),
        InvariantResult(
            "G1", "final rank equals the number of columns", float(abs(r[-1] - m)), 0.0, f"ranks[-1]={r[-1]}, m={m}"
        ),
        InvariantResult("G1", "growth events ≤ d", float(n_events), float(d), f"events={n_events}, d={d}"),
    )
    return finish(out, raise_on_violation)


# --------------------------------------------------------------------------------------------------
# G2 Spectral ordering
# --------------------------------------------------------------------------------------------------


def check_g2(
    *,
    A: Float64[np.ndarray, "d d"],
    theta: float,
    capture: CaptureResult,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """G2: births are non-increasing, at ``A``'s eigenvalues ``λ_1, λ_2, …``, along its eigenvectors.

    Proof: with exact eigenvectors, ``Π_k A Π_k`` has spectrum ``{0^(k−1), λ_k, …, λ_d}`` with the
    same eigenvectors (step G2.1: deflation leaves the other eigenpairs unchanged), so round ``k``'s
    top eigenpair is ``(λ_k, v_k)`` (``λ_k > θ > 0`` beats the zeros). Floats: the bounds
    ``R_k, L_k`` of :func:`capture_bounds`; order may be violated by at most ``L_k + L_{k+1}``.
    """
    A_ = check_symmetric("A", A)
    check_theta("theta", theta)
    check_dim("capture.Q_cap", capture.Q_cap, 0, A_.shape[0], "A's width d")
    lam = eigenvalues_desc(A_)
    R, L = capture_bounds(A_, capture)
    out: list[InvariantResult] = []
    b = capture.lam_births
    for k in range(capture.m):
        if k + 1 < capture.m:
            out.append(
                InvariantResult(
                    "G2",
                    f"births non-increasing: λ̂_{k + 2} − λ̂_{k + 1}",
                    b[k + 1] - b[k],
                    L[k] + L[k + 1],
                    f"births={b}",
                )
            )
        if k < lam.shape[0]:
            out.append(
                InvariantResult(
                    "G2",
                    f"birth {k + 1} at λ_{k + 1}(A): |λ̂ − λ|",
                    abs(b[k] - f64(lam[k])),
                    L[k],
                    f"λ̂={b[k]!r}, λ={f64(lam[k])!r}",
                )
            )
        u = capture.Q_cap[:, k]
        res = f64(np.linalg.norm(A_ @ u - b[k] * u))
        out.append(InvariantResult("G2", f"birth {k + 1} along an eigenvector: ‖Aû − λ̂û‖", res, R[k], f"λ̂={b[k]!r}"))
    return finish(out, raise_on_violation)


# --------------------------------------------------------------------------------------------------
# G3 Minimality
# --------------------------------------------------------------------------------------------------


def residual_top(A: F64Array, Q: F64Array) -> float:
    """``λ_max(Π⊥ A Π⊥)`` for the captured set ``Q`` (sufficiency means ``≤ θ``)."""
    return _lambda_max(deflate(A, Q))


def brute_force_min_residual(
    A: Float64[np.ndarray, "d d"], m: int, *, rng: np.random.Generator, n_random: int = 64
) -> tuple[float, F64Array]:
    """``min λ_max(Π⊥AΠ⊥)`` over candidate orthonormal d×m sets, and the best set (small d only).

    Candidates: every subset of ``m`` eigenvectors of ``A`` (``C(d, m)`` sets, which contain the
    minimiser, the top ``m``), and ``n_random`` Haar-random orthonormal sets (QR of Gaussians). For
    ``m = 0`` it is ``λ_max(A)``. Cauchy interlacing says the minimum over *all* sets is
    ``max(λ_{m+1}(A), 0)`` for ``m ≥ 1``; the search is the empirical side of that proof.
    """
    A_ = check_symmetric("A", A)
    d = A_.shape[0]
    m_ = check_index("m", m, d + 1)
    if m_ == 0:
        return _lambda_max(A_), arr(np.zeros((d, 0)))
    _, V = np.linalg.eigh(A_)
    best = math.inf
    best_Q = arr(np.zeros((d, m_)))
    cands: list[F64Array] = [arr(V[:, list(c)]) for c in itertools.combinations(range(d), m_)]
    for _ in range(n_random):
        Qr, Rr = np.linalg.qr(rng.standard_normal((d, m_)))
        cands.append(arr(Qr * np.sign(np.diag(Rr))[None, :]))
    for Q in cands:
        val = residual_top(A_, Q)
        if val < best:
            best, best_Q = val, Q
    return best, best_Q


def check_g3(
    *,
    A: Float64[np.ndarray, "d d"],
    theta: float,
    capture: CaptureResult,
    rng: np.random.Generator | None = None,
    n_random: int = 32,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """G3: the greedy count is ``m* = #{λ_i > θ}``, it is sufficient, and no fewer directions suffice.

    Proof of minimality (Cauchy interlacing, step G3.1): for any orthonormal ``Q`` with ``m < m*``
    columns, ``Π⊥AΠ⊥`` has the compression ``VᵀAV`` (``V`` an orthonormal basis of ``Q⊥``,
    ``d − m`` columns) among its eigen-blocks, and ``λ_1(VᵀAV) ≥ λ_{m+1}(A) ≥ λ_{m*}(A) > θ``.
    Sufficiency of the greedy ``m*``: by G2 the stopping operator's top eigenvalue is
    ``max(λ_{m*+1}, 0) ≤ θ``. Checks: the count (a near-tie eigenvalue widens the admissible range,
    SPEC §6), sufficiency ``λ_max(Π̂AΠ̂) ≤ θ + E``, and — when ``rng`` is given — for every
    ``m < m*`` the brute-force minimum over candidate sets satisfies interlacing (``≥ λ_{m+1} − 2E``)
    and is above θ.
    """
    A_ = check_symmetric("A", A)
    th = check_theta("theta", theta)
    check_dim("capture.Q_cap", capture.Q_cap, 0, A_.shape[0], "A's width d")
    lam = eigenvalues_desc(A_)
    m_lo, m_hi = admissible_counts(A_, th)
    E_A = eigh_error_bound(A_)
    final = residual_top(A_, capture.Q_cap)
    out: list[InvariantResult] = [
        InvariantResult(
            "G3",
            "count equals m* = #{λ_i > θ}",
            _interval_distance(capture.m, m_lo, m_hi),
            0.0,
            f"m={capture.m}, m* ∈ [{m_lo}, {m_hi}], θ={th!r}, λ={lam.tolist()}",
        ),
        InvariantResult(
            "G3",
            "sufficient: λ_max(Π⊥AΠ⊥) ≤ θ",
            final,
            th + eigh_error_bound(deflate(A_, capture.Q_cap)) + E_A,
            f"m={capture.m}",
        ),
    ]
    if rng is not None:
        for m in range(m_lo):
            best, _ = brute_force_min_residual(A_, m, rng=rng, n_random=n_random)
            lower = f64(lam[m]) if m == 0 else max(f64(lam[m]), 0.0)
            out.append(
                InvariantResult(
                    "G3",
                    f"interlacing with {m} directions: λ_{m + 1}(A) − min λ_max",
                    lower - best,
                    2.0 * E_A,
                    f"min over search={best!r}",
                )
            )
            out.append(
                InvariantResult(
                    "G3",
                    f"{m} < m* directions never suffice: θ vs min λ_max",
                    th,
                    best - 2.0 * E_A,
                    f"min over search={best!r}",
                )
            )
    return finish(out, raise_on_violation)


# --------------------------------------------------------------------------------------------------
# G4 Uniqueness
# --------------------------------------------------------------------------------------------------


def direction_sin_bounds(A: Float64[np.ndarray, "d d"], capture: CaptureResult) -> list[float]:
    """``s_k ≥ sin∠(û_k, v_k)`` (Davis–Kahan, residual form; ``1`` when no certificate).

    Writing ``û = Σ c_i v_i``: ``‖(A − λ̂)û‖² = Σ c_i²(λ_i − λ̂)² ≥ min_{i≠k}(λ_i − λ̂)² · sin²∠(û, v_k)``
    and ``min_{i≠k}|λ_i − λ̂| ≥ g_k − |λ̂ − λ_k|`` with ``g_k = min_{i≠k}|λ_i − λ_k|``. So
    ``s_k = R_k/(g_k − L_k − 2E(A))`` (the ``2E(A)`` because ``g_k`` is computed).
    """
    A_ = check_symmetric("A", A)
    lam = eigenvalues_desc(A_)
    R, L = capture_bounds(A_, capture)
    E = eigh_error_bound(A_)
    out: list[float] = []
    for k in range(capture.m):
        others = np.delete(lam, k) if lam.shape[0] > 1 else np.array([math.inf])
        g = f64(np.min(np.abs(others - lam[k])))
        den = g - L[k] - 2.0 * E
        out.append(min(1.0, R[k] / den) if den > 0.0 else 1.0)
    return out


def check_g4(
    *,
    A: Float64[np.ndarray, "d d"],
    theta: float,
    captures: Sequence[CaptureResult],
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """G4: every run (seed, initialisation, tracker history) captures ``m*`` directions at the same
    eigenvalues; with a spectral gap, the same directions up to sign.

    Proof: by G3 the count is ``#{λ_i > θ}``, a function of the spectrum alone; by G2 the births are
    ``λ_1..λ_{m*}``. If those eigenvalues are simple, each eigenspace is a line, so ``û_k = ±v_k``.
    Floats: births agree within ``L^a_k + L^b_k``; directions: ``∠(û^a, û^b) ≤ ∠(û^a, v) + ∠(v, û^b)``,
    so ``sin∠(û^a_k, û^b_k) ≤ sin(asin s^a_k + asin s^b_k)`` with ``s`` from
    :func:`direction_sin_bounds` (vacuous, ``= 1``, without a gap: there the claim does not apply).
    """
    A_ = check_symmetric("A", A)
    th = check_theta("theta", theta)
    if len(captures) < 1:
        raise ValueError("captures: expected at least one capture run")
    m_lo, m_hi = admissible_counts(A_, th)
    bounds = [capture_bounds(A_, c) for c in captures]
    sins = [direction_sin_bounds(A_, c) for c in captures]
    out: list[InvariantResult] = []
    for i, c in enumerate(captures):
        out.append(
            InvariantResult(
                "G4",
                f"run {i}: count equals m*",
                _interval_distance(c.m, m_lo, m_hi),
                0.0,
                f"m={c.m}, m* ∈ [{m_lo}, {m_hi}]",
            )
        )
    for (i, a), (j, b) in itertools.combinations(enumerate(captures), 2):
        out.append(InvariantResult("G4", f"runs {i},{j}: same count", float(abs(a.m - b.m)), 0.0, f"{a.m} vs {b.m}"))
        for k in range(min(a.m, b.m)):
            out.append(
                InvariantResult(
                    "G4",
                    f"runs {i},{j}: birth {k + 1} eigenvalue",
                    abs(a.lam_births[k] - b.lam_births[k]),
                    bounds[i][1][k] + bounds[j][1][k],
                    f"{a.lam_births[k]!r} vs {b.lam_births[k]!r}",
                )
            )
            sa, sb = sins[i][k], sins[j][k]
            bound = math.sin(min(math.pi / 2.0, math.asin(sa) + math.asin(sb)))
            val = math.sin(angle(arr(a.Q_cap[:, k]), arr(b.Q_cap[:, k])))
            out.append(
                InvariantResult(
                    "G4",
                    f"runs {i},{j}: direction {k + 1} equal up to sign (sin∠)",
                    val,
                    bound,
                    f"certified s_a={sa:.3g}, s_b={sb:.3g}",
                )
            )
    return finish(out, raise_on_violation)


# --------------------------------------------------------------------------------------------------
# G5 Pruning safety
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
    scale = d * (1 + m) ** 2 * nC * (frobenius(M_tot) + frobenius(Ms[h_]) + frobenius(M_rest))
    E_b, E_a = eigh_error_bound(before), eigh_error_bound(after)
    lam_b, lam_a = _lambda_max(before), _lambda_max(after)
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
                "hysteresis λ_max + G_h ≤ θ ⇒ no growth at the next check: λ_max(after)",
                lam_a,
                th + E_a + E_b + accumulation_bound(4 * d + 6, scale) * d,
                f"θ={th!r}, λ_max before={lam_b!r}, G_h={G_h!r}",
            )
        )
    if output is not None:
        out.extend(_check_g5_output(output))
    return finish(out, raise_on_violation)


def _check_g5_output(o: PruneOutput) -> list[InvariantResult]:
    """Output checks of G5 (bounds derived in :func:`reference.incrt.task_loss_change_bound`).

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
    U_ref = head_output(A_h, X, o.W_V, o.W_O)
    U = check_array("U_h", o.U_h, 3)
    check_dim("U_h", U, 0, B, "X's batch size")
    check_dim("U_h", U, 1, T, "X's sequence length")
    check_dim("U_h", U, 2, d, "X's width")
    dv = o.W_V.shape[1]
    absprod = np.einsum("bts,bsd->btd", np.abs(A_h), np.abs(X) @ np.abs(o.W_V) @ np.abs(o.W_O))
    beta = head_output_bound(X, o.W_V, o.W_O)
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
            "‖U_h,b‖_F ≤ √T · max_s‖x_s W_V W_O‖",
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
# G6 Tracker agreement
# --------------------------------------------------------------------------------------------------


def check_g6(
    *,
    A: Float64[np.ndarray, "d d"],
    tracker: TrackerResult,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """G6: after ``t`` steps the tracker's direction and eigenvalue are within the derived bounds.

    Hypotheses first. G6 speaks only about a run whose tracked eigenvalue has a certified gap
    (:func:`reference.incrt.tracked_gap_certified`: computed gap ``ĝ > 3E``) and whose steps satisfy
    the certified step-size condition (:func:`reference.incrt.step_size_certified`). When either fails,
    or the run's certificate ``τ`` is still ``inf`` (start too close to ``v⊥``), **nothing is
    emitted**: a bound of π/2 on an angle in ``[0, π/2]`` could not fail, and recording it as "holds"
    would count a non-check as a pass. Likewise each check below is emitted only when its bound is
    below the largest value its quantity can take (so that it *can* fail).

    Proof (static ``A``; docs/theory.md, "G6 Tracker agreement"): each step multiplies the
    eigen-coordinates by ``1 ± α(λ_i − ρ)`` (step G6.3), so ``tan∠(w_t, v) ≤ τ`` with
    ``τ = Π_k q(α_k) tan∠(w_0, v) (+ rounding)`` (:func:`reference.incrt.tracker_tan_bound`), ``q < 1``
    under both hypotheses.

    * Direction, measured against ``eigh``'s ``v̂``: ``∠(w_t, v̂) ≤ ∠(w_t, v) + ∠(v, v̂) ≤ atan τ + asin s``
      with ``s = E/(ĝ − 2E)`` (:func:`reference.incrt.eigenvector_sin_bound`, Davis–Kahan's residual
      form: ``‖(A − λ̂)v̂‖ ≤ E`` and the exact separation ``min_{i≠1}|λ_i − λ̂_1| ≥ ĝ − 2E``).
    * Eigenvalue: ``|ρ(w) − λ| = Σ_{i≠} c_i²|λ_i − λ|/Σ c_i² ≤ Δ sin²∠(w, v)``, with the exact spread
      ``Δ ≤ Δ̂ + 3E`` (:func:`reference.incrt.spectral_error`); the computed ``λ̂`` adds ``E`` and the
      Rayleigh quotient's rounding ``γ_{2d+4}‖A‖_F``.
    """
    A_ = check_symmetric("A", A)
    check_dim("tracker.w", tracker.w, 0, A_.shape[0], "A's width d")
    top = tracker.kind is TrackerKind.OJA
    if A_.shape[0] == 1:  # every non-zero vector is the eigenvector: there is nothing that could fail
        return finish((), raise_on_violation)
    if not (tracked_gap_certified(A_, tracker.kind) and step_size_certified(A_, tracker.alphas)):
        return finish((), raise_on_violation)
    tau = tracker_tan_bound(A_, tracker)
    if not math.isfinite(tau):
        return finish((), raise_on_violation)
    lam_asc, V = np.linalg.eigh(A_)
    lam = arr(lam_asc[::-1].copy())
    v = arr(V[:, -1] if top else V[:, 0])
    lam_ref = f64(lam[0] if top else lam[-1])
    d = A_.shape[0]
    E = eigh_error_bound(A_)
    gap = f64(lam[0] - lam[1] if top else lam[-2] - lam[-1])
    spread = f64(lam[0] - lam[-1])
    ang_exact = math.atan(tau)
    s_ref = eigenvector_sin_bound(gap, E)
    dir_bound = ang_exact + math.asin(s_ref)
    ang = angle(v, tracker.w)
    rho_err = accumulation_bound(2 * d + 4, frobenius(A_))
    eig_bound = (spread + spectral_error(A_)) * math.sin(ang_exact) ** 2 + E + rho_err
    q0 = contraction_factor(lam, f64(tracker.alphas[0]), tracker.kind) if tracker.n_steps else 0.0
    detail = (
        f"kind={tracker.kind.value}, steps={tracker.n_steps}, q(α_0)={q0:.4g}, ĝ={gap:.4g}, E={E:.3g}, "
        f"τ={tau:.4g}, |cos|={math.cos(ang):.17g}"
    )
    out: list[InvariantResult] = []
    if dir_bound < 0.5 * math.pi:
        out.append(
            InvariantResult(
                "G6",
                "direction: ∠(w_t, v̂) ≤ atan(Π q(α_k) tan∠_0 + rounding) + asin(E/(ĝ − 2E))",
                ang,
                dir_bound,
                detail,
            )
        )
    if eig_bound < spread:
        out.append(
            InvariantResult(
                "G6",
                "eigenvalue: |ρ(w_t) − λ| ≤ Δ sin²∠",
                abs(tracker.estimate - lam_ref),
                eig_bound,
                f"ρ={tracker.estimate!r}, λ={lam_ref!r}; {detail}",
            )
        )
    return finish(out, raise_on_violation)
