"""Invariants of the INCRT claims G1–G6 (SPEC §4, static operator ``A``).

Every check returns :class:`InvariantResult` records ``value ≤ bound``; bounds come from
:mod:`reference.tolerances` (``accumulation_bound``) and from the a-priori eigen-solver bound
:func:`reference.incrt.operators.eigh_error_bound`, composed through the perturbation inequalities written in
each docstring (Weyl, Davis–Kahan's residual form, Cauchy interlacing). Nothing is a picked literal.

Notation: ``A`` symmetric d×d with eigenvalues ``λ_1 ≥ … ≥ λ_d`` and unit eigenvectors ``v_i``;
``E(B) = eigh_error_bound(B)``; a capture run has directions ``û_k`` (columns of ``Q_cap``) and births
``λ̂_k``; ``Â_k = Π̂_k A Π̂_k`` with ``Π̂_k = I − Q̂_{<k} Q̂_{<k}ᵀ`` is the operator round ``k`` saw.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_count, check_dim, check_index, f64, finite_result
from reference.incrt.capture import CaptureResult
from reference.incrt.operators import (
    check_symmetric,
    check_theta,
    deflate,
    eigenvalues_desc,
    eigh_error_bound,
    exact_extremes,
    frobenius,
    is_near_tie,
    is_symmetric,
)
from reference.incrt.trackers import (
    TrackerKind,
    TrackerResult,
    angle,
    contraction_factor,
    eigenvector_sin_bound,
    spectral_error,
    step_size_certified,
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


def _check_capture(name: str, value: object) -> CaptureResult:
    if not isinstance(value, CaptureResult):
        raise TypeError(f"{name}: expected a CaptureResult (from greedy_capture), got {type(value).__name__}")
    return value


def _check_tracker(name: str, value: object) -> TrackerResult:
    if not isinstance(value, TrackerResult):
        raise TypeError(f"{name}: expected a TrackerResult (from oja_track or exin_track), got {type(value).__name__}")
    return value


def round_operators(A: F64Array, capture: CaptureResult) -> list[F64Array]:
    """``Â_k = Π̂_k A Π̂_k`` for ``k = 1..m+1`` (the last one is the stopping check's operator)."""
    Q = _check_capture("capture", capture).Q_cap
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
    _check_capture("capture", capture)
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
# Hypotheses of G1–G4 and G6 (predicates on the invariants' keyword inputs; G5's are in pruning.py)
# --------------------------------------------------------------------------------------------------


def theta_positive(*, theta: float, **_: Any) -> bool:
    """``θ > 0`` (finite)."""
    return bool(math.isfinite(theta) and theta > 0.0)


def operator_symmetric(*, A: F64Array, **_: Any) -> bool:
    """``A = Aᵀ`` (the static operator is symmetric, as every ``A_res`` is)."""
    return is_symmetric(A)


def spectral_gap(*, A: F64Array, theta: float, **_: Any) -> bool:
    """The eigenvalues above θ are simple and none equals θ (all separated by more than ``2E(A)``,
    and no eigenvalue is a DECISION near-tie with θ)."""
    lam = eigenvalues_desc(A)
    E = eigh_error_bound(A)
    if any(is_near_tie(x, theta) or abs(x - theta) <= E for x in lam.tolist()):
        return False
    above = lam[lam > theta]
    return bool(np.all(np.abs(np.diff(lam[: above.shape[0] + 1])) > 2.0 * E)) if above.shape[0] else True


def step_size(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """``α_t (λ_max − λ_min) < 2`` for every step (Oja: ``α = η``; EXIN: ``α_t = η/‖w_t‖²``), certified in
    floats with the spread raised by ``3E`` (:func:`reference.incrt.trackers.step_size_certified`)."""
    _check_tracker("tracker", tracker)
    return step_size_certified(A, tracker.alphas)


def tracked_gap(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """The tracked eigenvalue is simple, certified in floats: ``λ̂_1 − λ̂_2 > 3E`` (Oja) or
    ``λ̂_{d−1} − λ̂_d > 3E`` (EXIN) (:func:`reference.incrt.trackers.tracked_gap_certified`)."""
    _check_tracker("tracker", tracker)
    return tracked_gap_certified(A, tracker.kind)


def start_not_orthogonal(*, A: F64Array, tracker: TrackerResult, **_: Any) -> bool:
    """``v ᵀ w_0 ≠ 0`` for the tracked eigenvector ``v`` (true with probability 1 for random ``w_0``)."""
    _check_tracker("tracker", tracker)
    ext = exact_extremes(A)
    v = ext.u_max if tracker.kind is TrackerKind.OJA else ext.u_min
    w0 = tracker.w0 / np.sqrt(tracker.w0 @ tracker.w0)
    return abs(f64(v @ w0)) > 0.0


# --------------------------------------------------------------------------------------------------
# G1 Finite termination
# --------------------------------------------------------------------------------------------------


@finite_result("Q_cap", "theta")
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
    # ranks are counts: a fractional or boolean rank is refused, never truncated by int()
    r = [check_count(f"ranks[{i}]", x, 0) for i, x in enumerate(ranks)]
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


@finite_result("A", "theta")
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
    _check_capture("capture", capture)
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


@finite_result("A", "theta")
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
    _check_capture("capture", capture)
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
    _check_capture("capture", capture)
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


def side_of_theta_certified(value: float, error: float, theta: float) -> bool:
    """Whether ``[value − error, value + error]`` lies at or below θ, or above it, or inside the DECISION
    near-tie band around it (SPEC §6: there either decision is admissible): the side of θ of the quantity
    the interval certifies is then known. The sides are compared exactly (a rounded ``value ± error``
    could land on θ); a non-finite value or error certifies nothing."""
    if not (math.isfinite(value) and math.isfinite(error)):
        return False
    below = Fraction(value) + Fraction(error) <= Fraction(theta)
    above = Fraction(value) - Fraction(error) > Fraction(theta)
    return below or above or (is_near_tie(value - error, theta) and is_near_tie(value + error, theta))


def stop_certified(capture: CaptureResult, theta: float) -> bool:
    """Whether a run's stop is certified: its stopping statistic's certified interval
    ``[λ̂_stop − F, λ̂_stop + F]`` (``F`` = ``capture.final_error``) lies at or below θ, or above θ, or inside
    the DECISION near-tie band around θ (SPEC §6: there either decision is admissible).

    Why it decides G4's lower count: for any orthonormal ``Q`` with ``m`` columns, Cauchy interlacing
    gives ``λ_max(Π⊥AΠ⊥) ≥ λ_{m+1}(A)`` (G3's minimality step), so a stop at an operator with
    ``λ_max ≤ θ`` has ``m ≥ #{λ_i > θ}`` whatever the births' accuracy; a certified ``λ_max > θ`` is a
    stop the rule forbids. A tracker's Rayleigh quotient is only a lower bound on ``λ_max``: with
    ``λ̂_stop ≤ θ < λ̂_stop + F`` nothing says on which side of θ the operator was, and a short count is
    then the unconverged tracker's, outside what G4 promised.
    """
    cap = _check_capture("capture", capture)
    return side_of_theta_certified(cap.final_lam_max, cap.final_error, theta)


def births_decided(capture: CaptureResult, theta: float, L: Sequence[float]) -> bool:
    """Whether every birth's certified interval ``[λ̂_k − L_k, λ̂_k + L_k]`` around ``λ_k(A)``
    (:func:`capture_bounds`) lies above θ, at or below it, or inside the DECISION near-tie band: then a
    count above ``m_hi`` is evidence (a birth certified at or below θ is one the rule forbids; births all
    certified above θ cannot exceed ``#{λ_i > θ}``); so is a birth whose own statistic ``λ̂_k`` is not
    above θ (outside the band), whatever its ``L_k``: the rule decides on ``λ̂_k``.

    Why the births' ``λ̂_k > θ`` alone does not decide it: a Rayleigh quotient along an inaccurate
    direction leaves the rest of that eigenvector in ``Π⊥AΠ⊥``, where it can make further births
    (``A = diag(3, 0, 0)``, θ = 1: capturing ``(e₁ + e₂)/√2`` at ``λ̂ = 1.5`` leaves ``λ_max = 1.5 > θ``), so
    an unconverged tracker can count past ``m*``: outside what G4 promised, not a violation of it.
    """
    cap = _check_capture("capture", capture)
    # a birth whose own statistic is not above θ (outside the band) broke the rule, however inaccurate
    # the run's estimate of λ_k(A): the rule decides on λ̂_k itself, so no accuracy bound is needed
    if any(not lam > theta and not is_near_tie(lam, theta) for lam in cap.lam_births):
        return True
    return all(side_of_theta_certified(lam, err, theta) for lam, err in zip(cap.lam_births, L, strict=True))


@finite_result("A", "theta")
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

    The count is checked in its two halves, each failing only on what certifies the failure. At most
    ``m*`` (``m ≤ m_hi``): a count above it is evidence where every birth is decided
    (:func:`births_decided`). At least ``m*`` (``m ≥ m_lo``): a count below it is evidence where the stop
    is certified (:func:`stop_certified`, by interlacing, from ``capture.final_error``). Elsewhere (a
    tracker that had not converged when it decided) a count outside ``[m_lo, m_hi]`` is recorded with an
    infinite bound: uncertified, neither held nor violated. "Same count" fails likewise only where no
    eigenvalue is a near-tie with θ (``m_lo = m_hi``: otherwise either count is admissible, SPEC §6) and
    the run with fewer births is certified short or the one with more certified long.
    """
    A_ = check_symmetric("A", A)
    for i, cap in enumerate(captures):
        _check_capture(f"captures[{i}]", cap)
    th = check_theta("theta", theta)
    if len(captures) < 1:
        raise ValueError("captures: expected at least one capture run")
    m_lo, m_hi = admissible_counts(A_, th)
    bounds = [capture_bounds(A_, c) for c in captures]
    sins = [direction_sin_bounds(A_, c) for c in captures]
    stops = [stop_certified(c, th) for c in captures]
    decided = [births_decided(c, th, bounds[i][1]) for i, c in enumerate(captures)]
    # a count outside [m_lo, m_hi] is evidence only where what decided it is certified
    short = [c.m < m_lo and stops[i] for i, c in enumerate(captures)]
    long_ = [c.m > m_hi and decided[i] for i, c in enumerate(captures)]
    out: list[InvariantResult] = []
    for i, c in enumerate(captures):
        stop = f"stop λ̂={c.final_lam_max!r} ± {c.final_error:.3g} vs θ={th!r} " + (
            "certified" if stops[i] else "not certified (the stop could be the tracker's)"
        )
        over, under = c.m > m_hi, c.m < m_lo
        out.append(
            InvariantResult(
                "G4",
                f"run {i}: count at most m*",
                float(max(c.m - m_hi, 0)),
                math.inf if over and not long_[i] else 0.0,
                f"m={c.m}, m* ∈ [{m_lo}, {m_hi}]"
                + ("; a birth's certified interval straddles θ: nothing promised" if over and not long_[i] else ""),
            )
        )
        out.append(
            InvariantResult(
                "G4",
                f"run {i}: count at least m*",
                float(max(m_lo - c.m, 0)),
                math.inf if under and not short[i] else 0.0,
                f"m={c.m}, m* ∈ [{m_lo}, {m_hi}]; {stop}",
            )
        )
    for (i, a), (j, b) in itertools.combinations(enumerate(captures), 2):
        f, g = (i, j) if a.m <= b.m else (j, i)  # the run with fewer births, the one with more
        evidence = a.m == b.m or (m_lo == m_hi and (short[f] or long_[g]))
        out.append(
            InvariantResult(
                "G4",
                f"runs {i},{j}: same count",
                float(abs(a.m - b.m)),
                0.0 if evidence else math.inf,
                f"{a.m} vs {b.m}"
                + ("" if evidence else "; neither count certified outside m* (or m* a near-tie): nothing promised"),
            )
        )
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
                    vacuous_at=1.0,  # sin∠ ≤ 1 for any two directions
                )
            )
    return finish(out, raise_on_violation)


# --------------------------------------------------------------------------------------------------
# G6 Tracker agreement
# --------------------------------------------------------------------------------------------------


@finite_result("A", "tracker")
def check_g6(
    *,
    A: Float64[np.ndarray, "d d"],
    tracker: TrackerResult,
    theta: float | None = None,
    raise_on_violation: bool = False,
) -> tuple[InvariantResult, ...]:
    """G6: after ``t`` steps the tracker's direction and eigenvalue are within the derived bounds.

    Hypotheses first. G6 speaks only about a run whose tracked eigenvalue has a certified gap
    (:func:`reference.incrt.trackers.tracked_gap_certified`: computed gap ``ĝ > 3E``) and whose steps satisfy
    the certified step-size condition (:func:`reference.incrt.trackers.step_size_certified`). When either fails,
    or the run's certificate ``τ`` is still ``inf`` (start too close to ``v⊥``), the claim promised nothing
    for that run: both checks are emitted with an infinite bound (uncertified: what the tracker reached,
    never evidence), so a training record still shows the run and what it did. Each check below carries
    the value at which its
    bound stops certifying anything (``vacuous_at``): ``π/2`` for an angle in ``[0, π/2]``, the spectral
    spread ``Δ`` for a Rayleigh quotient, and for the top tracker given ``theta`` also ``|λ − θ|``
    (a wider eigenvalue bound cannot tell which side of θ, the growth threshold, the tracked λ is on).
    A bound at or past it is recorded as uncertified, never as held.

    Proof (static ``A``; docs/theory.md, "G6 Tracker agreement"): each step multiplies the
    eigen-coordinates by ``1 ± α(λ_i − ρ)`` (step G6.3), so ``tan∠(w_t, v) ≤ τ`` with
    ``τ = Π_k q(α_k) tan∠(w_0, v) (+ rounding)`` (:func:`reference.incrt.trackers.tracker_tan_bound`), ``q < 1``
    under both hypotheses.

    * Direction, measured against ``eigh``'s ``v̂``: ``∠(w_t, v̂) ≤ ∠(w_t, v) + ∠(v, v̂) ≤ atan τ + asin s``
      with ``s = E/(ĝ − 2E)`` (:func:`reference.incrt.trackers.eigenvector_sin_bound`, Davis–Kahan's residual
      form: ``‖(A − λ̂)v̂‖ ≤ E`` and the exact separation ``min_{i≠1}|λ_i − λ̂_1| ≥ ĝ − 2E``).
    * Eigenvalue: ``|ρ(w) − λ| = Σ_{i≠} c_i²|λ_i − λ|/Σ c_i² ≤ Δ sin²∠(w, v)``, with the exact spread
      ``Δ ≤ Δ̂ + 3E`` (:func:`reference.incrt.trackers.spectral_error`); the computed ``λ̂`` adds ``E`` and the
      Rayleigh quotient's rounding ``γ_{2d+4}‖A‖_F``.
    """
    A_ = check_symmetric("A", A)
    _check_tracker("tracker", tracker)
    check_dim("tracker.w", tracker.w, 0, A_.shape[0], "A's width d")
    top = tracker.kind is TrackerKind.OJA
    if A_.shape[0] == 1:  # every non-zero vector is the eigenvector: there is nothing that could fail
        return finish((), raise_on_violation)
    lam_asc, V = np.linalg.eigh(A_)
    lam = arr(lam_asc[::-1].copy())
    v = arr(V[:, -1] if top else V[:, 0])
    lam_ref = f64(lam[0] if top else lam[-1])
    if not tracked_gap_certified(A_, tracker.kind):
        return _g6_unbounded(tracker, v, lam_ref, "no certified gap at the tracked eigenvalue")
    if not step_size_certified(A_, tracker.alphas):
        return _g6_unbounded(tracker, v, lam_ref, "a step outside the certified step size")
    tau = tracker_tan_bound(A_, tracker)
    if not math.isfinite(tau):
        return _g6_unbounded(tracker, v, lam_ref, "the start is too close to orthogonal for a finite certificate")
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
    decides = abs(lam_ref - f64(theta)) if top and theta is not None else math.inf
    out = (
        InvariantResult(
            "G6",
            "direction: ∠(w_t, v̂) ≤ atan(Π q(α_k) tan∠_0 + rounding) + asin(E/(ĝ − 2E))",
            ang,
            dir_bound,
            detail,
            vacuous_at=0.5 * math.pi,
        ),
        InvariantResult(
            "G6",
            "eigenvalue: |ρ(w_t) − λ| ≤ Δ sin²∠",
            abs(tracker.estimate - lam_ref),
            eig_bound,
            f"ρ={tracker.estimate!r}, λ={lam_ref!r}"
            + (f", θ={theta!r}" if top and theta is not None else "")
            + f"; {detail}",
            vacuous_at=min(float(spread), decides),
        ),
    )
    return finish(out, raise_on_violation)


def _g6_unbounded(tracker: TrackerResult, v: F64Array, lam: float, why: str) -> tuple[InvariantResult, ...]:
    """G6's two checks for a run outside its hypotheses: the angle and eigenvalue error the tracker reached,
    each with an infinite bound (uncertified: nothing was promised, so nothing can fail)."""
    detail = f"kind={tracker.kind.value}, steps={tracker.n_steps}; nothing promised: {why}"
    return (
        InvariantResult(
            "G6", "direction: ∠(w_t, v̂), no bound outside G6's hypotheses", angle(v, tracker.w), math.inf, detail
        ),
        InvariantResult(
            "G6",
            "eigenvalue: |ρ(w_t) − λ|, no bound outside G6's hypotheses",
            abs(tracker.estimate - lam),
            math.inf,
            f"ρ={tracker.estimate!r}, λ={lam!r}; {detail}",
        ),
    )


__all__ = [
    "admissible_counts",
    "births_decided",
    "brute_force_min_residual",
    "capture_bounds",
    "check_g1",
    "check_g2",
    "check_g3",
    "check_g4",
    "check_g6",
    "direction_sin_bounds",
    "operator_symmetric",
    "orthonormality_bound",
    "residual_top",
    "round_operators",
    "side_of_theta_certified",
    "spectral_gap",
    "start_not_orthogonal",
    "step_size",
    "stop_certified",
    "theta_positive",
    "tracked_gap",
]
