"""Online eigen-trackers (claim G6): normalised Oja (dominant) and MCA-EXIN (minor), their derived
step-size conditions and the certificates that bound their distance to the exact oracle.

Tracker step-size conditions (claim G6; derivation in docs/theory.md, section "INCRT claims G1–G6 in
detail", subsection "G6 Tracker agreement"):

* normalised Oja, ``w⁺ = (w + η(Aw − ρ(w) w)) / ‖·‖``, ``ρ(w) = wᵀAw``: if
  ``0 < η (λ_max(A) − λ_min(A)) < 2``, the gap ``g = λ_1 − λ_2 > 0`` and ``v_1ᵀw_0 ≠ 0``, then
  ``tan∠(w_t, v_1) ≤ q^t tan∠(w_0, v_1)`` with ``q = max(1 − ηg/(1 + ηΔ), ηΔ − 1) < 1``,
  ``Δ = λ_max − λ_min``. Certified without an eigendecomposition: ``η ≤ 1/‖A‖_F`` suffices.
* MCA-EXIN, ``w⁺ = w − (η/‖w‖²)(Aw − r(w) w)``, ``r(w) = wᵀAw/wᵀw``: it is Oja on ``−A`` with the
  effective step ``α_t = η/‖w_t‖²``, which is non-increasing because ``‖w‖`` can only grow (the update
  is orthogonal to ``w``). So ``η Δ < 2‖w_0‖²`` gives ``α_t Δ < 2`` for every ``t``, the Rayleigh
  quotient decreases monotonically, ``‖w_t‖`` stays bounded and ``tan∠(w_t, v_d)`` contracts by
  ``q(α_t) < 1`` per step. Certified: ``η ≤ ‖w_0‖²/‖A‖_F``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from jaxtyping import Float64

from reference._arrays import (
    F64Array,
    arr,
    check_array,
    check_count,
    check_dim,
    check_overflow,
    check_positive,
    check_real,
    f64,
    finite_result,
)
from reference.incrt.operators import (
    check_square,
    check_symmetric,
    eigenvalues_desc,
    eigh_error_bound,
    exact_extremes,
    frobenius,
    unit,
)
from reference.tolerances import accumulation_bound

_NORMAL_MIN = float(np.finfo(np.float64).tiny)


class TrackerKind(StrEnum):
    OJA = "oja"  # dominant eigenvector of A
    MCA_EXIN = "mca_exin"  # minor eigenvector of A


def check_tracker_kind(name: str, value: object) -> TrackerKind:
    """Raise unless ``value`` is a :class:`TrackerKind`.

    Why: the kind selects the tracked end of the spectrum by identity (``is TrackerKind.OJA``), so a plain
    string such as ``"oja"`` would silently select the other end; it is refused, with the fix named."""
    if isinstance(value, TrackerKind):
        return value
    known = isinstance(value, str) and value in {k.value for k in TrackerKind}
    raise TypeError(
        f"{name}: expected a TrackerKind, got {type(value).__name__} {value!r}"
        + (f" (use TrackerKind({value!r}))" if known else "")
    )


@dataclass(frozen=True, eq=False)
class TrackerResult:
    """A tracker run on a static ``A``: start ``w0``, end ``w``, the effective step of every iteration.

    ``alphas[t]`` is the step used at iteration ``t``: ``η`` for Oja, ``η/‖w_t‖²`` for MCA-EXIN.
    ``estimate`` is the Rayleigh quotient ``wᵀAw / wᵀw`` at the end (the eigenvalue estimate).
    """

    kind: TrackerKind
    w0: Float64[np.ndarray, " d"]
    w: Float64[np.ndarray, " d"]
    eta: float
    alphas: Float64[np.ndarray, " s"]
    estimate: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", check_tracker_kind("kind", self.kind))
        check_array("w0", self.w0, 1)
        check_array("w", self.w, 1)
        check_dim("w", self.w, 0, self.w0.shape[0], "w0's width d")
        check_array("alphas", self.alphas, 1, allow_empty=True)
        check_positive("eta", self.eta)
        check_real("estimate", self.estimate)

    @property
    def n_steps(self) -> int:
        return int(self.alphas.shape[0])


def rayleigh(A: F64Array, w: F64Array) -> float:
    """``r(w) = wᵀAw / wᵀw`` for a square ``A`` (any, not only symmetric: the falsifiers use it on a
    non-symmetric one); ``w`` must be non-zero with ``wᵀw`` a normal float64 number."""
    A_ = check_square("A", A)
    w_ = check_array("w", w, 1)
    check_dim("w", w_, 0, A_.shape[0], "A's width d")
    _check_norm2("w", w_)
    with np.errstate(over="ignore", invalid="ignore"):
        return check_overflow("rayleigh", _rayleigh(A_, w_), "A, w")


def _rayleigh(A: F64Array, w: F64Array) -> float:
    return f64(w @ (A @ w) / (w @ w))


def _check_norm2(name: str, w: F64Array) -> None:
    """Refuse a vector whose ``wᵀw`` is zero, subnormal or infinite in float64: the steps divide by it
    (a tiny non-zero ``w`` is a direction, but MCA-EXIN's effective step ``η/‖w‖²`` is not scale-free,
    so it cannot be rescaled silently)."""
    with np.errstate(over="ignore", under="ignore"):
        nrm2 = f64(w @ w)
    if not _NORMAL_MIN <= nrm2 < math.inf:
        raise ValueError(
            f"{name}: ‖{name}‖² = {nrm2!r} is not a normal float64 number (it under- or overflows); rescale "
            f"{name} (and the step size with ‖{name}‖², see certified_step)"
        )


def _check_tracker_inputs(A: object, w: object, eta: object, w_name: str = "w") -> tuple[F64Array, F64Array, float]:
    A_ = check_symmetric("A", A)
    w_ = check_array(w_name, w, 1)
    check_dim(w_name, w_, 0, A_.shape[0], "A's width d")
    if frobenius(w_) == 0.0:  # scaled: a tiny non-zero w (whose w @ w underflows) is a direction
        raise ValueError(f"{w_name}: the tracker state must be non-zero")
    return A_, w_, check_positive("eta", eta)


def _oja_raw(A: F64Array, w: F64Array, eta: float) -> F64Array:
    w = w / np.sqrt(w @ w)
    Aw = A @ w
    v = w + eta * (Aw - (w @ Aw) * w)
    return arr(v / np.sqrt(v @ v))


def _exin_raw(A: F64Array, w: F64Array, eta: float) -> tuple[F64Array, float]:
    """One EXIN step and the effective step ``α = η/‖w‖²`` it used."""
    nrm2 = float(w @ w)
    Aw = A @ w
    alpha = eta / nrm2
    return arr(w - alpha * (Aw - (float(w @ Aw) / nrm2) * w)), alpha


@finite_result("A", "w", "eta")
def oja_step(A: Float64[np.ndarray, "d d"], w: Float64[np.ndarray, " d"], eta: float) -> Float64[np.ndarray, " d"]:
    """One normalised Oja step for the dominant eigenvector: ``w⁺ = (w + η(Aw − ρw))/‖·‖``, ``ρ = r(w)``.

    To first order in ``η`` this is Oja's rule ``w + η(Aw − (wᵀAw)w)``; the explicit renormalisation
    makes the static-``A`` analysis exact (claim G6). Converges for ``η(λ_max − λ_min) < 2``.
    """
    A_, w_, step = _check_tracker_inputs(A, w, eta)
    return _oja_raw(A_, w_, step)


@finite_result("A", "w", "eta")
def mca_exin_step(A: Float64[np.ndarray, "d d"], w: Float64[np.ndarray, " d"], eta: float) -> Float64[np.ndarray, " d"]:
    """One MCA-EXIN step for the minor eigenvector: ``w⁺ = w − (η/‖w‖²)(Aw − r(w) w)``.

    This is the averaged (static-``A``) form of Cirrincione's MCA-EXIN rule
    ``w⁺ = w − (α/‖w‖²)[y x − (y²/‖w‖²) w]``, ``y = wᵀx``, with ``E[xxᵀ]`` replaced by ``A``. The update
    is orthogonal to ``w``, so ``‖w⁺‖ ≥ ‖w‖``; no renormalisation is applied (as in EXIN).
    """
    A_, w_, step = _check_tracker_inputs(A, w, eta)
    _check_norm2("w", w_)
    return _exin_raw(A_, w_, step)[0]


@finite_result("A", "w0", "eta")
def oja_track(A: Float64[np.ndarray, "d d"], w0: Float64[np.ndarray, " d"], eta: float, n_steps: int) -> TrackerResult:
    """``n_steps`` normalised Oja steps from ``w0`` (see :func:`oja_step`)."""
    A_, w, step = _check_tracker_inputs(A, w0, eta, "w0")
    n = check_count("n_steps", n_steps, 0)
    w = unit("w0", w)  # scaled norm: a huge w0 is a direction too (w @ w would overflow)
    for _ in range(n):
        w = _oja_raw(A_, w, step)
    check_overflow("oja_track", w, "A, w0, eta")
    return TrackerResult(TrackerKind.OJA, arr(w0.copy()), w, step, arr(np.full(n, step)), _rayleigh(A_, w))


@finite_result("A", "w0", "eta")
def mca_exin_track(
    A: Float64[np.ndarray, "d d"], w0: Float64[np.ndarray, " d"], eta: float, n_steps: int
) -> TrackerResult:
    """``n_steps`` MCA-EXIN steps from ``w0``; records the effective steps ``α_t = η/‖w_t‖²``."""
    A_, w, step = _check_tracker_inputs(A, w0, eta, "w0")
    _check_norm2("w0", w)
    n = check_count("n_steps", n_steps, 0)
    alphas = np.empty(n)
    for t in range(n):
        w, alphas[t] = _exin_raw(A_, w, step)
    check_overflow("mca_exin_track", (w, arr(alphas)), "A, w0, eta")
    return TrackerResult(TrackerKind.MCA_EXIN, arr(w0.copy()), w, step, arr(alphas), _rayleigh(A_, w))


def oja_step_limit(A: Float64[np.ndarray, "d d"]) -> float:
    """The derived bound ``2/(λ_max − λ_min)``: normalised Oja converges for ``0 < η`` below it (G6).

    ``inf`` when ``A = λI`` (every unit vector is then an eigenvector).
    """
    lam = eigenvalues_desc(A)
    spread = f64(lam[0] - lam[-1])
    return float("inf") if spread == 0.0 else 2.0 / spread


def mca_exin_step_limit(A: Float64[np.ndarray, "d d"], w0: Float64[np.ndarray, " d"]) -> float:
    """The derived bound ``2‖w_0‖²/(λ_max − λ_min)`` on MCA-EXIN's ``η`` (G6)."""
    A_ = check_symmetric("A", A)
    w_ = check_array("w0", w0, 1)
    check_dim("w0", w_, 0, A_.shape[0], "A's width d")
    _check_norm2("w0", w_)
    lam = eigenvalues_desc(A_)
    spread = f64(lam[0] - lam[-1])
    return float("inf") if spread == 0.0 else 2.0 * f64(w_ @ w_) / spread


def certified_step(A: Float64[np.ndarray, "d d"], w0_norm2: float = 1.0) -> float:
    """``‖w_0‖²/‖A‖_F``: satisfies both conditions without an eigendecomposition.

    ``λ_max − λ_min ≤ 2‖A‖_2 ≤ 2‖A‖_F``, with equality in both only for ``A = 0``, so
    ``η(λ_max − λ_min) < 2‖w_0‖²`` whenever ``A ≠ 0`` (for ``A = 0`` any step is fine; we return 1).
    """
    A_ = check_symmetric("A", A)
    s = check_positive("w0_norm2", w0_norm2)
    nrm = frobenius(A_)
    return s if nrm == 0.0 else s / nrm


def contraction_factor(lam: Float64[np.ndarray, " d"], alpha: float, which: TrackerKind) -> float:
    """Per-step bound ``q(α) = max(1 − αg/(1 + αΔ), αΔ − 1)`` on ``tan∠`` for a tracker step ``α``.

    ``lam`` are the eigenvalues in non-increasing order; ``g`` is the gap at the tracked end
    (``λ_1 − λ_2`` for Oja, ``λ_{d−1} − λ_d`` for MCA-EXIN) and ``Δ = λ_1 − λ_d``. ``q < 1`` iff
    ``g > 0`` and ``αΔ < 2``. For ``d = 1`` the only direction is exact: ``q = 0``.
    """
    lam_ = check_array("lam", lam, 1)
    a = check_positive("alpha", alpha)
    return f64(_contraction(lam_, arr(np.array([a])), check_tracker_kind("which", which))[0])


def _contraction(lam: F64Array, alphas: F64Array, which: TrackerKind, err: float = 0.0) -> F64Array:
    """``q(α_k)`` with the gap lowered and the spread raised by ``err`` (``q`` is increasing in ``Δ`` and
    decreasing in ``g``, so with ``err`` bounding the error of the computed ``g`` and ``Δ`` the result
    bounds the exact ``q``)."""
    if lam.shape[0] == 1:
        return arr(np.zeros_like(alphas))
    spread = float(lam[0] - lam[-1]) + err
    gap = (float(lam[0] - lam[1]) if which is TrackerKind.OJA else float(lam[-2] - lam[-1])) - err
    return arr(np.maximum(1.0 - alphas * gap / (1.0 + alphas * spread), alphas * spread - 1.0))


def _tracked_gap(lam: F64Array, which: TrackerKind) -> float:
    if lam.shape[0] == 1:
        return math.inf
    return f64(lam[0] - lam[1]) if which is TrackerKind.OJA else f64(lam[-2] - lam[-1])


def spectral_error(A: Float64[np.ndarray, "d d"]) -> float:
    """``3E(A)``: bounds the error of every *computed* eigenvalue difference of ``A`` (claim G6).

    Each computed eigenvalue is within ``E = eigh_error_bound(A)`` of the exact one of the same rank
    (Weyl), so a difference of two is within ``2E``; the subtraction itself rounds by at most
    ``u·|λ̂_i − λ̂_j| ≤ 2u‖A‖_2 ≤ E``.
    """
    return 3.0 * eigh_error_bound(A)


def tracked_gap_certified(A: Float64[np.ndarray, "d d"], which: TrackerKind) -> bool:
    """G6's gap hypothesis, certified in floats: the computed gap at the tracked end exceeds ``3E(A)``.

    Then the exact gap is ``≥ ĝ − 3E > 0`` (:func:`spectral_error`), so the tracked eigenvalue is simple,
    and :func:`eigenvector_sin_bound` is below 1. Always true for ``d = 1``.
    """
    A_ = check_symmetric("A", A)
    return _tracked_gap(eigenvalues_desc(A_), check_tracker_kind("which", which)) > spectral_error(A_)


def step_size_certified(A: Float64[np.ndarray, "d d"], alphas: Float64[np.ndarray, " s"]) -> bool:
    """G6's step-size hypothesis, certified in floats: ``max_k α_k · (Δ̂ + 3E) < 2`` (true with no steps).

    ``Δ̂ + 3E`` bounds the exact ``λ_max − λ_min`` (:func:`spectral_error`).
    """
    A_ = check_symmetric("A", A)
    a = check_array("alphas", alphas, 1, allow_empty=True)
    if a.shape[0] == 0:
        return True
    lam = eigenvalues_desc(A_)
    return f64(a.max()) * (f64(lam[0] - lam[-1]) + spectral_error(A_)) < 2.0


def eigenvector_sin_bound(gap: float, E: float) -> float:
    """Certified ``sin∠(v̂, v)`` between ``eigh``'s eigenvector ``v̂`` at an end of the spectrum and the
    exact eigenvector ``v`` there, from the computed gap ``ĝ`` at that end and ``E = eigh_error_bound``.

    Derivation (Davis–Kahan, residual form, for the top end; the bottom end is the same for ``−A``).
    ``eigh``'s pair satisfies ``‖(A − λ̂_1)v̂‖ ≤ E‖v̂‖`` and every computed eigenvalue is within ``E``
    of the exact one of the same rank (:func:`eigh_error_bound`). Writing ``v̂ = Σ c_i v_i``:
    ``‖(A − λ̂_1)v̂‖² = Σ c_i²(λ_i − λ̂_1)² ≥ δ² Σ_{i≥2} c_i² = δ² ‖v̂‖² sin²∠(v̂, v_1)`` with
    ``δ = min_{i≥2} |λ_i − λ̂_1| ≥ λ̂_1 − λ_2 ≥ λ̂_1 − λ̂_2 − E ≥ ĝ − 2E`` (the last ``E`` covers the
    rounding of the subtraction ``ĝ = fl(λ̂_1 − λ̂_2)``, see :func:`spectral_error`). Hence
    ``sin∠(v̂, v_1) ≤ E/(ĝ − 2E)``, which is a certificate (``< 1``) iff ``ĝ > 3E``; otherwise 1 is
    returned (no certificate). ``ĝ = inf`` (``d = 1``) gives 0.

    (The earlier form ``asin(2E/ĝ)`` is not a valid bound when ``ĝ`` is within a few ``E`` of 0: the
    denominator must be a lower bound on the *exact* separation, not the computed gap.)
    """
    for name, value in (("gap", gap), ("E", E)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
            raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    if math.isnan(gap):
        raise ValueError("gap: expected a real number (+inf for d = 1), got nan")
    if not E >= 0.0:
        raise ValueError(f"E: expected an error bound >= 0 (+inf when uncertified), got {E!r}")
    if math.isinf(gap):
        return 0.0
    return E / (gap - 2.0 * E) if gap > 3.0 * E else 1.0


def _check_result(result: object, A: object) -> TrackerResult:
    if not isinstance(result, TrackerResult):
        raise TypeError(f"result: expected a TrackerResult (oja_track, mca_exin_track), got {type(result).__name__}")
    A_ = check_symmetric("A", A)
    check_dim("result.w0", result.w0, 0, A_.shape[0], "A's width d")
    return result


def tracker_gap(A: Float64[np.ndarray, "d d"], result: TrackerResult) -> tuple[float, float]:
    """``(|λ̂ − λ|, |cos∠(w, v)|)`` of a tracker result against the exact oracle (reported at every check)."""
    _check_result(result, A)
    ext = exact_extremes(A)
    lam, v = (ext.lam_max, ext.u_max) if result.kind is TrackerKind.OJA else (ext.lam_min, ext.u_min)
    w = result.w / np.sqrt(result.w @ result.w)
    return abs(result.estimate - lam), abs(f64(v @ w))


def angle(v: Float64[np.ndarray, " d"], w: Float64[np.ndarray, " d"]) -> float:
    """The angle in ``[0, π/2]`` between the lines ``span(v)`` and ``span(w)`` (sign-free)."""
    v_ = check_array("v", v, 1)
    w_ = check_array("w", w, 1)
    check_dim("w", w_, 0, v_.shape[0], "v's width d")
    v_ = unit("v", v_)
    w_ = unit("w", w_)
    c = abs(f64(v_ @ w_))
    r = w_ - (v_ @ w_) * v_  # the sine from the orthogonal part, free of 1 − c² cancellation
    return float(np.arctan2(f64(np.sqrt(r @ r)), c))


def tracker_tan_bound(A: Float64[np.ndarray, "d d"], result: TrackerResult) -> float:
    """Certified bound on ``tan∠(w_t, v)`` after a tracker run on a static ``A`` (claim G6).

    ``v`` is the *exact* tracked eigenvector (top for Oja, bottom for MCA-EXIN). In exact arithmetic,
    writing ``w = Σ c_i v_i``, a step multiplies ``c_i`` by ``1 + α(λ_i − ρ)`` (Oja; ``1 − α(λ_i − r)`` for
    EXIN, i.e. Oja on ``−A``) before normalisation, so every ratio ``|c_i/c_1|`` — hence ``tan∠`` —
    shrinks by at least ``q(α_k)`` (:func:`contraction_factor`): ``tan_t ≤ Π_k q(α_k) · tan_0``.

    What is computed stands in for exact quantities in two places, each bounded: ``q(α_k)`` is
    evaluated with the computed gap lowered and the computed spread raised by :func:`spectral_error`
    (``q`` is monotone in both), and ``T_0 = tan(∠(w_0, v̂) + asin s)`` with ``s`` from
    :func:`eigenvector_sin_bound` (``∠(w_0, v) ≤ ∠(w_0, v̂) + ∠(v̂, v)``).

    Rounding: one step perturbs the unit iterate by ``ε ≤ γ_{3d+8}(1 + 2α‖A‖_F)(1 + T̄)`` (the
    matrix–vector product, the Rayleigh quotient, the axpy and the normalisation; the ``1 + T̄`` is
    ``1/cos∠`` of the un-normalised iterate), and a perturbation ``ε`` of a unit vector at
    ``tan ≤ T̄`` raises ``tan`` by at most ``δ = ε(1 + T̄)²/(1 − ε(1 + T̄))``. With ``T̄ = 2T_0 + 1``
    (consistent when ``δ/(1 − q_max) ≤ T_0 + 1``) induction gives
    ``tan_t ≤ Π q(α_k) · T_0 + δ/(1 − q_max)``. Returns ``inf`` when no certificate exists: no
    certified gap (:func:`tracked_gap_certified`), some ``q(α_k) ≥ 1`` (the step-size condition fails),
    a start too close to ``v⊥``, or ``T_0`` too large for ``ε``.
    """
    A_ = check_symmetric("A", A)
    _check_result(result, A_)
    lam_asc, V = np.linalg.eigh(A_)
    lam = arr(lam_asc[::-1].copy())
    v = arr(V[:, -1] if result.kind is TrackerKind.OJA else V[:, 0])
    E = eigh_error_bound(A_)
    s_ref = eigenvector_sin_bound(_tracked_gap(lam, result.kind), E)
    if s_ref >= 1.0:
        return float("inf")
    a0 = angle(v, result.w0) + math.asin(s_ref)
    if a0 >= 0.5 * math.pi:
        return float("inf")
    T0 = math.tan(a0)
    if result.n_steps == 0:
        return T0
    qs = _contraction(lam, result.alphas, result.kind, spectral_error(A_))
    q_max = f64(qs.max())
    if q_max >= 1.0 or not math.isfinite(T0):
        return float("inf")
    d = A_.shape[0]
    T_bar = 2.0 * T0 + 1.0
    eps = accumulation_bound(3 * d + 8, (1.0 + 2.0 * f64(result.alphas.max()) * frobenius(A_)) * (1.0 + T_bar))
    if eps * (1.0 + T_bar) >= 1.0:
        return float("inf")
    delta = eps * (1.0 + T_bar) ** 2 / (1.0 - eps * (1.0 + T_bar))
    drift = delta / (1.0 - q_max)
    if drift > T0 + 1.0:
        return float("inf")
    return f64(np.prod(qs)) * T0 + drift


__all__ = [
    "TrackerKind",
    "TrackerResult",
    "angle",
    "certified_step",
    "check_tracker_kind",
    "contraction_factor",
    "eigenvector_sin_bound",
    "mca_exin_step",
    "mca_exin_step_limit",
    "mca_exin_track",
    "oja_step",
    "oja_step_limit",
    "oja_track",
    "rayleigh",
    "spectral_error",
    "step_size_certified",
    "tracked_gap_certified",
    "tracker_gap",
    "tracker_tan_bound",
]
