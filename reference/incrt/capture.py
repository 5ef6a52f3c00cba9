"""Greedy capture on a static operator (claims G1–G4): while ``λ_max(Π⊥AΠ⊥) > θ``, append the top
eigenvector to ``Q_cap`` (SPEC §3.2 with the dwell time irrelevant), with the exact oracle or a tracker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_count, check_dim, check_positive, f64, finite_result
from reference.incrt.operators import (
    check_symmetric,
    check_theta_resolvable,
    deflate,
    eigenvalues_desc,
    eigh_error_bound,
    fix_sign,
    frobenius,
    is_near_tie,
    unit,
)
from reference.incrt.trackers import (
    TrackerKind,
    TrackerResult,
    certified_step,
    oja_track,
    spectral_error,
    tracker_tan_bound,
)
from reference.tolerances import accumulation_bound


@finite_result("Q_cap", "u")
def append_direction(Q_cap: Float64[np.ndarray, "d m"], u: Float64[np.ndarray, " d"]) -> Float64[np.ndarray, "d m1"]:
    """``[Q_cap, u']`` with ``u' = Π⊥u/‖Π⊥u‖``: one re-orthogonalisation pass before appending.

    In exact arithmetic ``u = u₊`` is already orthogonal to ``Q_cap`` (G1) and this is the identity;
    in floats ``eigh``'s ``u₊`` carries a component ``≲ E/λ_max`` along ``Q_cap`` and a tracker's more,
    and the second pass brings it to working precision ("twice is enough", Parlett 1980 §6.9). A
    ``u`` with ``‖Q_capᵀu‖ > 1/2`` contradicts G1's conclusion and is refused.
    """
    Q = check_array("Q_cap", Q_cap, 2, allow_empty=True)
    u_ = check_array("u", u, 1)
    check_dim("u", u_, 0, Q.shape[0], "Q_cap's width d")
    if Q.shape[1] >= Q.shape[0]:
        raise ValueError(f"Q_cap: already holds d = {Q.shape[0]} directions; nothing can be appended")
    u_ = unit("u", u_)
    c = Q.T @ u_
    if f64(np.sqrt(c @ c)) > 0.5:
        raise ValueError(
            f"u: ‖Q_capᵀu‖ = {f64(np.sqrt(c @ c)):.3g} > 1/2; the direction is not orthogonal to the captured "
            "subspace (G1 needs λ_max > θ > 0, and θ above the eigen-solver's error bound: a captured direction "
            "has eigenvalue 0 up to that error; see operators.check_theta_resolvable)"
        )
    v = u_ - Q @ c
    v = v / frobenius(arr(v))
    return arr(np.column_stack([Q, v]))


def numerical_rank(Q: Float64[np.ndarray, "d m"]) -> int:
    """The numerical rank of ``Q`` (``numpy.linalg.matrix_rank``: singular values above
    ``σ_max · max(d, m) · eps``); 0 for ``m = 0``.

    Claim G1's "every growth raises the rank by one" is checked on this, never on the column count
    ``m`` (which rises by one per append by construction, so a check on it could not fail).
    """
    Q_ = check_array("Q", Q, 2, allow_empty=True)
    return 0 if Q_.size == 0 else int(np.linalg.matrix_rank(Q_))


@dataclass(frozen=True, eq=False)
class CaptureResult:
    """Outcome of greedy capture on a static ``A``.

    ``Q_cap`` holds the captured directions in birth order, ``lam_births[k]`` the statistic at birth
    ``k`` (the top eigenvalue, or the tracker's Rayleigh quotient, of ``Π⊥_k A Π⊥_k``), ``final_lam_max``
    the statistic at the stopping check (``≤ θ``), ``ranks`` the numerical rank of ``Q_cap``
    (:func:`numerical_rank`) after each event (starting from the initial one), ``method_errors[k]`` a
    certified ``E_k`` with ``|λ̂_k − λ_max(Â_k)| ≤ E_k`` and ``‖(Â_k − λ̂_k)û_k‖ ≤ E_k`` for the operator
    ``Â_k`` the round saw, and ``near_ties`` the rounds whose decision was within the DECISION tolerance.

    ``final_error``: a certified ``F`` with ``|final_lam_max − λ_max(Π̂AΠ̂)| ≤ F`` for the stopping check's
    operator (``Π̂ = I − Q_cap Q_capᵀ``, exact arithmetic on the computed ``Q_cap``): what decides whether
    the stop itself is certified (claim G4's lower count, :func:`reference.invariants.incrt.check_g4`).
    ``inf`` (the default, for a capture built without one) certifies nothing.
    """

    Q_cap: Float64[np.ndarray, "d m"]
    lam_births: tuple[float, ...]
    final_lam_max: float
    ranks: tuple[int, ...]
    method_errors: tuple[float, ...]
    near_ties: tuple[int, ...]
    method: str
    final_error: float = math.inf

    def __post_init__(self) -> None:
        if not float(self.final_error) >= 0.0:  # also refuses NaN
            raise ValueError(f"CaptureResult: final_error must be ≥ 0 (inf: uncertified), got {self.final_error!r}")
        object.__setattr__(self, "final_error", float(self.final_error))
        Q = check_array("Q_cap", self.Q_cap, 2, allow_empty=True)
        m = Q.shape[1]
        if len(self.lam_births) != m or len(self.method_errors) != m:
            raise ValueError(
                f"CaptureResult: {m} directions but {len(self.lam_births)} births and "
                f"{len(self.method_errors)} error bounds"
            )
        if len(self.ranks) != m + 1:
            raise ValueError(f"CaptureResult: ranks must have m + 1 = {m + 1} entries, got {len(self.ranks)}")

    @property
    def m(self) -> int:
        return int(self.Q_cap.shape[1])


def greedy_capture(A: Float64[np.ndarray, "d d"], theta: float) -> CaptureResult:
    """Greedy capture with the exact oracle: while ``λ_max(Π⊥AΠ⊥) > θ``, append the top eigenvector.

    This is SPEC §3.2 on a static symmetric operator ``A`` (dwell time irrelevant), the object that
    claims G1–G4 speak about. Stops after at most ``d`` births (G1) with exactly
    ``m* = #{λ_i(A) > θ}`` of them (G3), births at ``λ_1 ≥ λ_2 ≥ …`` (G2).
    """
    A_ = check_symmetric("A", A)
    th = check_theta_resolvable("theta", theta, A_)
    return _capture_loop(A_, th, max_events=A_.shape[0], reorthogonalize=True)


def _capture_loop(A: F64Array, theta: float, *, max_events: int, reorthogonalize: bool) -> CaptureResult:
    """The greedy rule without input checks (the G1 falsifier runs it with ``θ ≤ 0``).

    With ``reorthogonalize=False`` it appends ``eigh``'s top eigenvector verbatim, exactly as SPEC
    §3.2 states the rule (and ``Π⊥ = I − Q_cap Q_capᵀ`` is formed even when ``Q_cap`` has stopped
    being orthonormal); with ``True`` it uses :func:`append_direction`.
    """
    d = A.shape[0]
    Q = np.zeros((d, 0))
    births: list[float] = []
    errs: list[float] = []
    ranks = [0]
    ties: list[int] = []
    while True:
        Pi = np.eye(d) - Q @ Q.T
        R = Pi @ A @ Pi
        R = arr(0.5 * (R + R.T))  # computed, symmetric in exact arithmetic (A is checked by the callers)
        lam, V = np.linalg.eigh(R)
        lam_max, u = f64(lam[-1]), fix_sign(arr(V[:, -1]))
        if is_near_tie(lam_max, theta):
            ties.append(len(births))
        if not (lam_max > theta) or len(births) >= max_events:
            # eigh's computed top eigenvalue is within E(R) of R's, and E(R) covers forming R (see
            # eigh_error_bound): the stopping statistic is certified to E(R).
            final, final_err = lam_max, eigh_error_bound(R)
            break
        # E_k: eigh's backward error, plus the residual change from re-orthogonalisation
        # (‖Q̂ᵀû‖ ≤ E/λ̂ because the captured directions are eigenvectors of R for 0, and moving û by
        # that much changes ‖(R − λ̂)û‖ by at most 2‖R‖_F times it).
        E = eigh_error_bound(R)
        errs.append(E * (1.0 + 2.0 * frobenius(R) / lam_max) if lam_max > 0.0 else float("inf"))
        births.append(lam_max)
        Q = append_direction(arr(Q), u) if reorthogonalize else np.column_stack([Q, u])
        ranks.append(numerical_rank(arr(Q)))
    return CaptureResult(arr(Q), tuple(births), final, tuple(ranks), tuple(errs), tuple(ties), "eigh", final_err)


def stop_error(R: Float64[np.ndarray, "d d"], res: TrackerResult) -> float:
    """Certified ``F ≥ |ρ̂ − λ_max(R)|`` for a top tracker's computed Rayleigh quotient ``ρ̂`` on ``R``.

    Writing ``w = Σ c_i v_i`` (``v_1`` the top eigenvector of ``R``): ``λ_max − ρ(w) = Σ_{i≥2} c_i²(λ_1 − λ_i)/‖w‖²
    ∈ [0, Δ sin²∠(w, v_1)]``, with the exact spread ``Δ ≤ Δ̂ + 3E(R)`` (:func:`spectral_error`) and
    ``sin²∠ = τ²/(1 + τ²)`` for ``τ ≥ tan∠`` (:func:`reference.incrt.trackers.tracker_tan_bound`; with no
    certificate, ``τ = ∞`` and ``sin² ≤ 1``: a Rayleigh quotient always lies within the spread). Computing
    ``ρ̂`` adds ``γ_{2d+4}‖R‖_F``, and ``E(R)`` covers ``R`` itself being computed from ``A`` and ``Q_cap``
    (:func:`reference.incrt.operators.eigh_error_bound`). The bound of claim G6's eigenvalue check
    (:func:`reference.invariants.incrt.check_g6`).
    """
    R_ = check_symmetric("R", R)
    if res.kind is not TrackerKind.OJA:
        raise ValueError(f"res: expected a top (Oja) tracker's result, got {res.kind.value}")
    lam = eigenvalues_desc(R_)
    sin2 = math.sin(math.atan(tracker_tan_bound(R_, res))) ** 2  # atan(∞) = π/2: sin² = 1
    spread = f64(lam[0] - lam[-1]) + spectral_error(R_)
    return spread * sin2 + accumulation_bound(2 * R_.shape[0] + 4, frobenius(R_)) + eigh_error_bound(R_)


def greedy_capture_tracked(
    A: Float64[np.ndarray, "d d"], theta: float, *, rng: np.random.Generator, n_steps: int, eta: float | None = None
) -> CaptureResult:
    """Greedy capture where each round's top eigenpair comes from an Oja tracker from a random start,
    projected onto the complement of the directions captured so far.

    ``η`` defaults to :func:`certified_step` (``1/‖A‖_F``, which also certifies every ``Π⊥AΠ⊥``:
    projections do not increase the Frobenius norm). The decision uses the tracker's Rayleigh quotient.
    ``method_errors[k]`` is the G6 bound turned into an eigenpair bound: with ``s ≤ tan∠(w, v₊) ≤ τ``,
    ``|ρ − λ_max| ≤ Δ s²`` and ``‖(Â − ρ)w‖ ≤ 2Δ s``; re-orthogonalisation moves ``w`` by at most
    ``s`` more, changing the residual by ``≤ 2‖Â‖_F s``. So ``E_k = (2Δ + 2‖Â‖_F) τ``. The stopping
    round's ``final_error`` is :func:`stop_error` (only the eigenvalue matters there: nothing is appended).
    """
    A_ = check_symmetric("A", A)
    th = check_theta_resolvable("theta", theta, A_)
    n = check_count("n_steps", n_steps, 0)
    step = certified_step(A_) if eta is None else check_positive("eta", eta)
    d = A_.shape[0]
    Q = np.zeros((d, 0))
    births: list[float] = []
    errs: list[float] = []
    ranks = [0]
    ties: list[int] = []
    while True:
        R = deflate(A_, arr(Q))
        # Start in the complement of the captured subspace, as training's warm start does: Oja on
        # R = Π⊥AΠ⊥ keeps it there, while a raw random start keeps its captured components until the
        # tracker converges, and with few steps could pass λ̂ > θ still mostly inside span(Q_cap).
        w0 = arr(rng.standard_normal(d))
        if Q.shape[1] < d:  # with every direction captured R = 0 and any start gives λ̂ = 0
            w0 = arr(w0 - Q @ (Q.T @ w0))
        res = oja_track(R, arr(w0), step, n)
        lam_hat = res.estimate
        if is_near_tie(lam_hat, th):
            ties.append(len(births))
        if not (lam_hat > th) or Q.shape[1] >= d:
            final, final_err = lam_hat, stop_error(R, res)
            break
        lam = eigenvalues_desc(R)
        tau = tracker_tan_bound(R, res)
        spread = f64(lam[0] - lam[-1])
        errs.append((2.0 * spread + 2.0 * frobenius(R)) * tau)
        births.append(lam_hat)
        Q = append_direction(arr(Q), res.w)
        ranks.append(numerical_rank(arr(Q)))
    return CaptureResult(arr(Q), tuple(births), final, tuple(ranks), tuple(errs), tuple(ties), "oja", final_err)


__all__ = [
    "CaptureResult",
    "append_direction",
    "greedy_capture",
    "greedy_capture_tracked",
    "numerical_rank",
    "stop_error",
]
