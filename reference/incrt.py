"""The INCRT growth rule (SPEC §3) on arrays: residual operator, exact oracle, trackers, controller.

Notation is SPEC §1's. Tokens ``X`` (n×d; the layer input ``X̄`` flattened over batch and time),
second moment ``C = XᵀX/n``, per-head score operators ``M_h`` and their antisymmetric ("directional")
parts ``M_a^h = (M_h − M_hᵀ)/2``, ``M_a = Σ_h M_a^h``, captured basis ``Q_cap`` (d×m, orthonormal),
``Π⊥ = I − Q_cap Q_capᵀ`` and the residual directional operator

    ``A_res = Π⊥ · ½(C M_a + (C M_a)ᵀ) · Π⊥``.

Because ``C`` is symmetric and ``M_a`` antisymmetric, ``(C M_a)ᵀ = M_aᵀ C = −M_a C``, so the middle
factor is ``½(C M_a − M_a C) = ½[C, M_a]``: a *symmetric* matrix (``[C, M_a]ᵀ = [C, M_a]``) of trace
zero (the trace of a commutator), hence indefinite unless it vanishes (step G5.1).

Everything here works on arrays, never on a model object: the trainer glues this module to the
model. Decisions (grow, prune) are pure functions of a frozen :class:`GrowthConfig` and a frozen
:class:`GrowthState`; they return the new state and the :class:`GrowthEvent` records. Decisions whose
margin to the threshold is within ``tolerance(float64, DECISION)`` are *also* reported as near-ties
(SPEC §6); the reference still decides them by the exact comparison of SPEC §3.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_count, check_dim, check_positive, f64
from reference.tolerances import CheckKind, accumulation_bound, tolerance

# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def check_square(name: str, value: object) -> F64Array:
    """A finite float64 square matrix."""
    A = check_array(name, value, 2)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{name}: expected a square d×d matrix, got shape {A.shape}")
    return A


def symmetry_tolerance(A: F64Array) -> float:
    """Largest ``max_ij |a_ij − sign·a_ji|`` accepted from a matrix that is (anti)symmetric in exact
    arithmetic: ``max(accumulation_bound(d + 2, ‖A‖_F), smallest normal float64)``.

    Why this size: the two triangles of a product of d×d factors that is symmetric in exact arithmetic
    (``V diag(λ) Vᵀ`` with orthogonal ``V``) are two d-term inner products ``Σ_k b_ik c_kj`` whose
    roundings differ by at most ``2γ_{d+2} Σ_k |b_ik||c_kj|``, and ``Σ_k |b_ik||c_kj| ≤ max|λ| ≤ ‖A‖_F``
    there (Cauchy–Schwarz on unit rows); the table's INVARIANT multiplier (4) covers the 2. Everything
    the reference itself forms (``C``, ``M_a``, ``A_res``) is exactly (anti)symmetric; a caller that forms
    a longer product (``XᵀX`` over n tokens) symmetrises its own computed result, as
    :func:`second_moment` does. The tolerance is purely relative — scaled by ``‖A‖_F``, never an
    absolute floor that a matrix of tiny entries could hide under; the floor at the smallest *normal*
    number only lets an exactly (anti)symmetric matrix of subnormal entries through.
    """
    d = A.shape[0]
    return max(accumulation_bound(d + 2, frobenius(A)), float(np.finfo(np.float64).tiny))


def check_symmetric(name: str, value: object, *, sign: float = 1.0) -> F64Array:
    """A square matrix with ``A = sign·Aᵀ`` (sign +1: symmetric, −1: antisymmetric).

    ``a_ij`` and ``sign·a_ji`` must agree within :func:`symmetry_tolerance` (relative to ``‖A‖_F``).
    Nothing is corrected: a violation raises, and the accepted matrix is returned unchanged (``eigh``
    then reads one triangle, which differs from the other by no more than its own backward error).
    """
    A = check_square(name, value)
    err = f64(np.max(np.abs(A - sign * A.T)))
    tol = symmetry_tolerance(A)
    if err > tol:
        what = "symmetric (A = Aᵀ)" if sign > 0 else "antisymmetric (M = −Mᵀ)"
        raise ValueError(
            f"{name}: must be {what}; max |{name} − {'' if sign > 0 else '−'}{name}ᵀ| = {err:.3g} exceeds the "
            f"relative tolerance {tol:.3g} (‖{name}‖_F = {frobenius(A):.3g})"
        )
    return A


def check_basis(name: str, value: object, d: int) -> F64Array:
    """A d×m array (``0 ≤ m ≤ d``) of captured directions; orthonormality is claim G1's invariant."""
    Q = check_array(name, value, 2, allow_empty=True)
    check_dim(name, Q, 0, d, "the model width d")
    if Q.shape[1] > d:
        raise ValueError(f"{name}: at most d = {d} captured directions, got {Q.shape[1]}")
    return Q


def check_theta(name: str, value: object) -> float:
    """The growth threshold θ: finite and > 0 (hypothesis of claims G1–G4)."""
    return check_positive(name, value)


def frobenius(A: F64Array) -> float:
    """``‖A‖_F`` (also the 2-norm of a vector), scaled by ``max|a_ij|`` first so that squares of tiny
    entries do not underflow to 0 (which would make every bound built on it vanish)."""
    s = f64(np.max(np.abs(A))) if A.size else 0.0
    if s == 0.0:
        return 0.0
    B = A / s
    return s * f64(np.sqrt(np.sum(B * B)))


def eigh_error_bound(A: Float64[np.ndarray, "d d"]) -> float:
    """A-priori bound ``E`` on the backward error of ``numpy.linalg.eigh`` on a symmetric ``A``.

    Householder tridiagonalisation followed by implicit QL/QR or divide and conquer computes the exact
    eigenpairs of ``A + ΔA`` with ``‖ΔA‖_F ≤ γ_{c d²} ‖A‖_F`` (Higham 2002, Thm 19.4 for the
    Householder part; the QR sweeps are sequences of rotations with the same form of bound, Lemma 19.9).
    We take ``c·d² = d² + 6d`` (the ``6d`` covers forming ``A_res`` from ``Π⊥`` and the middle factor)
    through :func:`accumulation_bound`, whose INVARIANT multiplier covers the constant ``c``. By Weyl
    every computed eigenvalue is within ``E`` of an exact one, and each computed pair has residual
    ``‖(A − λ̂)û‖ ≤ E``.
    """
    A_ = check_square("A", A)
    d = A_.shape[0]
    return accumulation_bound(d * d + 6 * d, frobenius(A_))


def _fix_sign(u: F64Array) -> F64Array:
    """The representative of ``±u`` whose largest-magnitude entry (first on ties) is positive."""
    i = int(np.argmax(np.abs(u)))
    return arr(u if u[i] >= 0.0 else -u)


# --------------------------------------------------------------------------------------------------
# Operators (SPEC §1, §3.1)
# --------------------------------------------------------------------------------------------------


def second_moment(X: Float64[np.ndarray, "n d"]) -> Float64[np.ndarray, "d d"]:
    """``C = XᵀX / n`` (second moment, *not* centred) of the layer-input tokens on the probe batch.

    Our ``X`` is SPEC's ``X̄``: the B×T×d layer input flattened to n×d. The result is symmetrised
    (``½(G + Gᵀ)``) so that it is exactly symmetric in floating point, as the residual operator
    requires.
    """
    X_ = check_array("X", X, 2)
    G = X_.T @ X_ / X_.shape[0]
    # Symmetrising a computed quantity that is symmetric in exact arithmetic (not user input).
    return arr(0.5 * (G + G.T))


def antisymmetric_part(M: Float64[np.ndarray, "d d"]) -> Float64[np.ndarray, "d d"]:
    """``M_a = (M − Mᵀ)/2``; exactly antisymmetric in floats (``fl(b − a) = −fl(a − b)``)."""
    M_ = check_square("M", M)
    return arr(0.5 * (M_ - M_.T))


def directional_operator(Ms: Sequence[Float64[np.ndarray, "d d"]]) -> Float64[np.ndarray, "d d"]:
    """``M_a = Σ_{h∈𝓗} M_a^h``, ``M_a^h = (M_h − M_hᵀ)/2``, from the heads' score operators ``M_h``.

    ``M_h = W_Q^h W_K^hᵀ / (τ_h √d_k)`` is formed by the model; at least one head is required.
    """
    if len(Ms) == 0:
        raise ValueError("Ms: expected the score operators of at least one head, got an empty sequence")
    parts = [antisymmetric_part(check_square(f"Ms[{h}]", M)) for h, M in enumerate(Ms)]
    d = parts[0].shape[0]
    for h, P in enumerate(parts):
        check_dim(f"Ms[{h}]", P, 0, d, "Ms[0]'s width d")
    return arr(np.sum(np.stack(parts), axis=0))


def complement_projector(Q_cap: Float64[np.ndarray, "d m"]) -> Float64[np.ndarray, "d d"]:
    """``Π⊥ = I − Q_cap Q_capᵀ`` (a projector iff ``Q_cap`` is orthonormal, step G1.1); symmetrised."""
    Q = check_array("Q_cap", Q_cap, 2, allow_empty=True)
    P = np.eye(Q.shape[0]) - Q @ Q.T
    # Symmetrising a computed quantity that is symmetric in exact arithmetic (not user input).
    return arr(0.5 * (P + P.T))


def commutator_form(C: Float64[np.ndarray, "d d"], M_a: Float64[np.ndarray, "d d"]) -> Float64[np.ndarray, "d d"]:
    """``S = ½(C M_a + (C M_a)ᵀ)``, which equals ``½[C, M_a] = ½(C M_a − M_a C)`` (step G5.1).

    ``C`` must be symmetric and ``M_a`` antisymmetric (both checked). The result is exactly symmetric
    in floating point (it is computed as ``½(G + Gᵀ)``).
    """
    C_ = check_symmetric("C", C)
    M_ = check_symmetric("M_a", M_a, sign=-1.0)
    check_dim("M_a", M_, 0, C_.shape[0], "C's width d")
    G = C_ @ M_
    # ½(G + Gᵀ) *is* the definition of S (SPEC §1), formed from checked C and M_a: nothing is corrected.
    return arr(0.5 * (G + G.T))


def deflate(A: Float64[np.ndarray, "d d"], Q_cap: Float64[np.ndarray, "d m"]) -> Float64[np.ndarray, "d d"]:
    """``Π⊥ A Π⊥`` for a symmetric ``A`` (the static-operator form of the residual, claims G1–G4)."""
    A_ = check_symmetric("A", A)
    Q = check_basis("Q_cap", Q_cap, A_.shape[0])
    P = complement_projector(Q)
    R = P @ A_ @ P
    # Π⊥AΠ⊥ is symmetric in exact arithmetic for the checked symmetric A: a computed quantity.
    return arr(0.5 * (R + R.T))


def residual_operator(
    C: Float64[np.ndarray, "d d"], M_a: Float64[np.ndarray, "d d"], Q_cap: Float64[np.ndarray, "d m"]
) -> Float64[np.ndarray, "d d"]:
    """``A_res = Π⊥ ½(C M_a + (C M_a)ᵀ) Π⊥ = Π⊥ ½[C, M_a] Π⊥`` (SPEC §1, §3.1).

    Symmetric, and ``A_res Q_cap = 0`` because ``Π⊥ Q_cap = 0`` (step G1.2): the captured directions
    are eigenvectors for the eigenvalue 0, so an eigenvector for any *non-zero* eigenvalue is
    orthogonal to them (the SPEC's "``A_res = Π⊥ · Π⊥`` so ``u₊ ⟂ Q_cap``" needs ``λ_max ≠ 0``).
    """
    return deflate(commutator_form(C, M_a), Q_cap)


def head_strength(C: Float64[np.ndarray, "d d"], M_a_h: Float64[np.ndarray, "d d"]) -> float:
    """``G_h = ‖C M_a^h‖_F``: bounds ``‖Π⊥ ½[C, M_a^h] Π⊥‖_2`` (claim G5)."""
    C_ = check_symmetric("C", C)
    M_ = check_symmetric("M_a_h", M_a_h, sign=-1.0)
    check_dim("M_a_h", M_, 0, C_.shape[0], "C's width d")
    return frobenius(arr(C_ @ M_))


def spectral_operator(
    V: Float64[np.ndarray, "d d"], eigenvalues: Float64[np.ndarray, " d"]
) -> Float64[np.ndarray, "d d"]:
    """``A = V diag(λ) Vᵀ`` for an orthogonal ``V`` (column ``i`` ↔ ``λ_i``), symmetrised.

    ``A`` is symmetric in exact arithmetic; its computed form is symmetrised (a computed quantity, not
    user input). Its eigenvalues are ``λ`` up to the rounding of forming the product. ``V`` is not
    checked for orthogonality (the callers build it as a QR factor).
    """
    lam = check_array("eigenvalues", eigenvalues, 1)
    V_ = check_square("V", V)
    check_dim("V", V_, 0, lam.shape[0], "the number of eigenvalues")
    A = (V_ * lam[None, :]) @ V_.T
    return arr(0.5 * (A + A.T))


def planted_operator(
    eigenvalues: Sequence[float] | Float64[np.ndarray, " d"], *, rng: np.random.Generator
) -> Float64[np.ndarray, "d d"]:
    """A static operator with a planted spectrum (SPEC §5): :func:`spectral_operator` of ``λ`` with a
    Haar-random orthogonal ``V`` — the Q factor of a QR decomposition of a d×d standard Gaussian drawn
    from ``rng``, column signs fixed so that ``diag(R) > 0``.

    The one generator used by the tests, the falsifiers and the sympy steps' numeric checks.
    """
    if isinstance(eigenvalues, np.ndarray):
        lam = check_array("eigenvalues", eigenvalues, 1)
    else:
        if len(eigenvalues) == 0:
            raise ValueError("eigenvalues: expected at least one eigenvalue, got an empty sequence")
        if not all(
            isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool) for x in eigenvalues
        ):
            raise TypeError(f"eigenvalues: expected real numbers, got {list(eigenvalues)!r}")
        lam = check_array("eigenvalues", np.asarray(eigenvalues, dtype=np.float64), 1)
    d = lam.shape[0]
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return spectral_operator(arr(Q * np.sign(np.diag(R))[None, :]), lam)


# --------------------------------------------------------------------------------------------------
# Exact oracle
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EigenExtremes:
    """Top and bottom eigenpairs of a symmetric matrix (unit eigenvectors, sign by :func:`_fix_sign`)."""

    lam_max: float
    u_max: Float64[np.ndarray, " d"]
    lam_min: float
    u_min: Float64[np.ndarray, " d"]


def exact_extremes(A: Float64[np.ndarray, "d d"]) -> EigenExtremes:
    """``(λ_max, u₊, λ_min, u₋)`` of a symmetric ``A`` by ``eigh`` (the exact oracle of SPEC §3.1)."""
    A_ = check_symmetric("A", A)
    lam, V = np.linalg.eigh(A_)
    return EigenExtremes(f64(lam[-1]), _fix_sign(arr(V[:, -1])), f64(lam[0]), _fix_sign(arr(V[:, 0])))


def eigenvalues_desc(A: Float64[np.ndarray, "d d"]) -> Float64[np.ndarray, " d"]:
    """Eigenvalues of a symmetric ``A`` in non-increasing order ``λ_1 ≥ … ≥ λ_d``."""
    A_ = check_symmetric("A", A)
    return arr(np.linalg.eigvalsh(A_)[::-1].copy())


def count_above(A: Float64[np.ndarray, "d d"], theta: float) -> int:
    """``m* = #{i : λ_i(A) > θ}`` (claims G3, G4); θ > 0."""
    th = check_theta("theta", theta)
    return int(np.count_nonzero(eigenvalues_desc(A) > th))


def is_near_tie(statistic: float, threshold: float) -> bool:
    """Whether ``statistic`` vs ``threshold`` is within ``tolerance(float64, DECISION)`` (SPEC §6)."""
    return tolerance("float64", CheckKind.DECISION).allows(statistic, threshold)


# --------------------------------------------------------------------------------------------------
# Online trackers (claim G6)
# --------------------------------------------------------------------------------------------------


class TrackerKind(StrEnum):
    OJA = "oja"  # dominant eigenvector of A
    MCA_EXIN = "mca_exin"  # minor eigenvector of A


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
        check_array("w0", self.w0, 1)
        check_array("w", self.w, 1)
        check_dim("w", self.w, 0, self.w0.shape[0], "w0's width d")
        check_array("alphas", self.alphas, 1, allow_empty=True)
        check_positive("eta", self.eta)

    @property
    def n_steps(self) -> int:
        return int(self.alphas.shape[0])


def rayleigh(A: F64Array, w: F64Array) -> float:
    """``r(w) = wᵀAw / wᵀw``."""
    return f64(w @ (A @ w) / (w @ w))


def _check_tracker_inputs(A: object, w: object, eta: object) -> tuple[F64Array, F64Array, float]:
    A_ = check_symmetric("A", A)
    w_ = check_array("w", w, 1)
    check_dim("w", w_, 0, A_.shape[0], "A's width d")
    if f64(w_ @ w_) == 0.0:
        raise ValueError("w: the tracker state must be non-zero")
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


def oja_step(A: Float64[np.ndarray, "d d"], w: Float64[np.ndarray, " d"], eta: float) -> Float64[np.ndarray, " d"]:
    """One normalised Oja step for the dominant eigenvector: ``w⁺ = (w + η(Aw − ρw))/‖·‖``, ``ρ = r(w)``.

    To first order in ``η`` this is Oja's rule ``w + η(Aw − (wᵀAw)w)``; the explicit renormalisation
    makes the static-``A`` analysis exact (claim G6). Converges for ``η(λ_max − λ_min) < 2``.
    """
    A_, w_, step = _check_tracker_inputs(A, w, eta)
    return _oja_raw(A_, w_, step)


def mca_exin_step(A: Float64[np.ndarray, "d d"], w: Float64[np.ndarray, " d"], eta: float) -> Float64[np.ndarray, " d"]:
    """One MCA-EXIN step for the minor eigenvector: ``w⁺ = w − (η/‖w‖²)(Aw − r(w) w)``.

    This is the averaged (static-``A``) form of Cirrincione's MCA-EXIN rule
    ``w⁺ = w − (α/‖w‖²)[y x − (y²/‖w‖²) w]``, ``y = wᵀx``, with ``E[xxᵀ]`` replaced by ``A``. The update
    is orthogonal to ``w``, so ``‖w⁺‖ ≥ ‖w‖``; no renormalisation is applied (as in EXIN).
    """
    A_, w_, step = _check_tracker_inputs(A, w, eta)
    return _exin_raw(A_, w_, step)[0]


def oja_track(A: Float64[np.ndarray, "d d"], w0: Float64[np.ndarray, " d"], eta: float, n_steps: int) -> TrackerResult:
    """``n_steps`` normalised Oja steps from ``w0`` (see :func:`oja_step`)."""
    A_, w, step = _check_tracker_inputs(A, w0, eta)
    n = check_count("n_steps", n_steps, 0)
    w = arr(w / np.sqrt(w @ w))
    for _ in range(n):
        w = _oja_raw(A_, w, step)
    return TrackerResult(TrackerKind.OJA, arr(w0.copy()), w, step, arr(np.full(n, step)), rayleigh(A_, w))


def mca_exin_track(
    A: Float64[np.ndarray, "d d"], w0: Float64[np.ndarray, " d"], eta: float, n_steps: int
) -> TrackerResult:
    """``n_steps`` MCA-EXIN steps from ``w0``; records the effective steps ``α_t = η/‖w_t‖²``."""
    A_, w, step = _check_tracker_inputs(A, w0, eta)
    n = check_count("n_steps", n_steps, 0)
    alphas = np.empty(n)
    for t in range(n):
        w, alphas[t] = _exin_raw(A_, w, step)
    return TrackerResult(TrackerKind.MCA_EXIN, arr(w0.copy()), w, step, arr(alphas), rayleigh(A_, w))


def oja_step_limit(A: Float64[np.ndarray, "d d"]) -> float:
    """The derived bound ``2/(λ_max − λ_min)``: normalised Oja converges for ``0 < η`` below it (G6).

    ``inf`` when ``A = λI`` (every unit vector is then an eigenvector).
    """
    lam = eigenvalues_desc(A)
    spread = f64(lam[0] - lam[-1])
    return float("inf") if spread == 0.0 else 2.0 / spread


def mca_exin_step_limit(A: Float64[np.ndarray, "d d"], w0: Float64[np.ndarray, " d"]) -> float:
    """The derived bound ``2‖w_0‖²/(λ_max − λ_min)`` on MCA-EXIN's ``η`` (G6)."""
    w_ = check_array("w0", w0, 1)
    lam = eigenvalues_desc(A)
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
    return f64(_contraction(lam_, arr(np.array([a])), which)[0])


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
    return _tracked_gap(eigenvalues_desc(A_), which) > spectral_error(A_)


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
    if math.isinf(gap):
        return 0.0
    return E / (gap - 2.0 * E) if gap > 3.0 * E else 1.0


def tracker_gap(A: Float64[np.ndarray, "d d"], result: TrackerResult) -> tuple[float, float]:
    """``(|λ̂ − λ|, |cos∠(w, v)|)`` of a tracker result against the exact oracle (reported at every check)."""
    ext = exact_extremes(A)
    lam, v = (ext.lam_max, ext.u_max) if result.kind is TrackerKind.OJA else (ext.lam_min, ext.u_min)
    w = result.w / np.sqrt(result.w @ result.w)
    return abs(result.estimate - lam), abs(f64(v @ w))


def angle(v: Float64[np.ndarray, " d"], w: Float64[np.ndarray, " d"]) -> float:
    """The angle in ``[0, π/2]`` between the lines ``span(v)`` and ``span(w)`` (sign-free)."""
    v_ = check_array("v", v, 1)
    w_ = check_array("w", w, 1)
    check_dim("w", w_, 0, v_.shape[0], "v's width d")
    v_ = v_ / frobenius(v_)
    w_ = w_ / frobenius(w_)
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
    check_dim("result.w0", result.w0, 0, A_.shape[0], "A's width d")
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


# --------------------------------------------------------------------------------------------------
# Greedy capture on a static operator (claims G1–G4)
# --------------------------------------------------------------------------------------------------


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
    u_ = u_ / frobenius(u_)
    c = Q.T @ u_
    if f64(np.sqrt(c @ c)) > 0.5:
        raise ValueError(
            f"u: ‖Q_capᵀu‖ = {f64(np.sqrt(c @ c)):.3g} > 1/2; the direction is not orthogonal to the captured "
            "subspace (G1 needs λ_max > θ > 0)"
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
    """

    Q_cap: Float64[np.ndarray, "d m"]
    lam_births: tuple[float, ...]
    final_lam_max: float
    ranks: tuple[int, ...]
    method_errors: tuple[float, ...]
    near_ties: tuple[int, ...]
    method: str

    def __post_init__(self) -> None:
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
    th = check_theta("theta", theta)
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
        lam_max, u = f64(lam[-1]), _fix_sign(arr(V[:, -1]))
        if is_near_tie(lam_max, theta):
            ties.append(len(births))
        if not (lam_max > theta) or len(births) >= max_events:
            final = lam_max
            break
        # E_k: eigh's backward error, plus the residual change from re-orthogonalisation
        # (‖Q̂ᵀû‖ ≤ E/λ̂ because the captured directions are eigenvectors of R for 0, and moving û by
        # that much changes ‖(R − λ̂)û‖ by at most 2‖R‖_F times it).
        E = eigh_error_bound(R)
        errs.append(E * (1.0 + 2.0 * frobenius(R) / lam_max) if lam_max > 0.0 else float("inf"))
        births.append(lam_max)
        Q = append_direction(arr(Q), u) if reorthogonalize else np.column_stack([Q, u])
        ranks.append(numerical_rank(arr(Q)))
    return CaptureResult(arr(Q), tuple(births), final, tuple(ranks), tuple(errs), tuple(ties), "eigh")


def greedy_capture_tracked(
    A: Float64[np.ndarray, "d d"], theta: float, *, rng: np.random.Generator, n_steps: int, eta: float | None = None
) -> CaptureResult:
    """Greedy capture where each round's top eigenpair comes from an Oja tracker from a random start.

    ``η`` defaults to :func:`certified_step` (``1/‖A‖_F``, which also certifies every ``Π⊥AΠ⊥``:
    projections do not increase the Frobenius norm). The decision uses the tracker's Rayleigh quotient.
    ``method_errors[k]`` is the G6 bound turned into an eigenpair bound: with ``s ≤ tan∠(w, v₊) ≤ τ``,
    ``|ρ − λ_max| ≤ Δ s²`` and ``‖(Â − ρ)w‖ ≤ 2Δ s``; re-orthogonalisation moves ``w`` by at most
    ``s`` more, changing the residual by ``≤ 2‖Â‖_F s``. So ``E_k = (2Δ + 2‖Â‖_F) τ``.
    """
    A_ = check_symmetric("A", A)
    th = check_theta("theta", theta)
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
        w0 = rng.standard_normal(d)
        res = oja_track(R, arr(w0), step, n)
        lam_hat = res.estimate
        if is_near_tie(lam_hat, th):
            ties.append(len(births))
        if not (lam_hat > th) or Q.shape[1] >= d:
            final = lam_hat
            break
        lam = eigenvalues_desc(R)
        tau = tracker_tan_bound(R, res)
        spread = f64(lam[0] - lam[-1])
        errs.append((2.0 * spread + 2.0 * frobenius(R)) * tau)
        births.append(lam_hat)
        Q = append_direction(arr(Q), res.w)
        ranks.append(numerical_rank(arr(Q)))
    return CaptureResult(arr(Q), tuple(births), final, tuple(ranks), tuple(errs), tuple(ties), "oja")


# --------------------------------------------------------------------------------------------------
# Threshold calibration (SPEC §3.4)
# --------------------------------------------------------------------------------------------------


def calibrate_thresholds(operators: Sequence[Float64[np.ndarray, "d d"]], c_theta: float = 0.1) -> tuple[float, float]:
    """``(θ, φ_g) = (c_θ · median_i ‖A_res^{(i)}‖_F, 0.01 θ)`` over calibration probes' residual operators."""
    if len(operators) == 0:
        raise ValueError("operators: expected at least one calibration operator A_res, got none")
    c = check_positive("c_theta", c_theta)
    norms = [frobenius(check_symmetric(f"operators[{i}]", A)) for i, A in enumerate(operators)]
    theta = c * f64(np.median(np.asarray(norms)))
    if not theta > 0.0:
        raise ValueError("operators: the median ‖A_res‖_F is 0, so θ would be 0 (G1 needs θ > 0); give θ explicitly")
    return theta, 0.01 * theta


# --------------------------------------------------------------------------------------------------
# The growth controller (SPEC §3.2–§3.5): frozen config and state, pure decisions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrowthConfig:
    """Thresholds of the growth rule. ``θ > 0`` (G1), ``φ_g ≥ 0``, dwell ``T_d ≥ 0`` steps, pruning
    patience ``T_prune ≥ 1`` checks, prototype mass floor ``ε_K ∈ [0, 1)``.

    ``hysteresis=False`` drops the prune condition ``λ_max(A_res) + G_h ≤ θ``; it exists only so that
    the G5 falsifier can show what goes wrong without it.
    """

    theta: float
    phi_g: float
    T_d: int
    T_prune: int
    eps_K: float
    min_heads: int = 1
    min_prototypes: int = 1
    hysteresis: bool = True

    def __post_init__(self) -> None:
        check_theta("theta", self.theta)
        if not (np.isfinite(self.phi_g) and self.phi_g >= 0.0):
            raise ValueError(f"phi_g: must be finite and >= 0, got {self.phi_g!r}")
        check_count("T_d", self.T_d, 0)
        check_count("T_prune", self.T_prune, 1)
        if not (np.isfinite(self.eps_K) and 0.0 <= self.eps_K < 1.0):
            raise ValueError(f"eps_K: must lie in [0, 1), got {self.eps_K!r}")
        check_count("min_heads", self.min_heads, 0)
        check_count("min_prototypes", self.min_prototypes, 1)

    @classmethod
    def calibrated(
        cls, operators: Sequence[F64Array], *, T_d: int, T_prune: int, eps_K: float, c_theta: float = 0.1
    ) -> GrowthConfig:
        """The default of SPEC §3.4: ``θ = c_θ · median ‖A_res‖_F``, ``φ_g = 0.01θ``."""
        theta, phi_g = calibrate_thresholds(operators, c_theta)
        return cls(theta=theta, phi_g=phi_g, T_d=T_d, T_prune=T_prune, eps_K=eps_K)


@dataclass(frozen=True)
class HeadRecord:
    """An active head: id, the step it was born at, consecutive checks with ``G_h < φ_g``."""

    head_id: int
    birth_step: int
    below_count: int = 0


@dataclass(frozen=True)
class PrototypeRecord:
    """An active prototype: id and consecutive checks with mass ``n_j/n < ε_K``."""

    prototype_id: int
    low_mass_count: int = 0


@dataclass(frozen=True, eq=False)
class GrowthState:
    """Everything the controller remembers between checks. ``Q_cap`` is d×m, orthonormal (G1)."""

    Q_cap: Float64[np.ndarray, "d m"]
    last_growth_step: int
    heads: tuple[HeadRecord, ...]
    prototypes: tuple[PrototypeRecord, ...]

    def __post_init__(self) -> None:
        Q = check_array("Q_cap", self.Q_cap, 2, allow_empty=True)
        if Q.shape[1] > Q.shape[0]:
            raise ValueError(f"Q_cap: at most d = {Q.shape[0]} directions, got {Q.shape[1]}")
        ids = [h.head_id for h in self.heads]
        if len(set(ids)) != len(ids):
            raise ValueError(f"heads: ids must be distinct, got {ids}")
        pids = [p.prototype_id for p in self.prototypes]
        if len(set(pids)) != len(pids):
            raise ValueError(f"prototypes: ids must be distinct, got {pids}")

    @property
    def d(self) -> int:
        return int(self.Q_cap.shape[0])

    @property
    def m(self) -> int:
        return int(self.Q_cap.shape[1])

    @property
    def head_ids(self) -> tuple[int, ...]:
        return tuple(h.head_id for h in self.heads)

    @property
    def prototype_ids(self) -> tuple[int, ...]:
        return tuple(p.prototype_id for p in self.prototypes)


def initial_state(d: int, K_max: int, step: int = 0) -> GrowthState:
    """One head (id 0, born at ``step``), nothing captured, prototypes ``0..K_max−1``.

    The initial head counts as a growth for the dwell timer (``last_growth_step = step``).
    """
    d_ = check_count("d", d, 1)
    K = check_count("K_max", K_max, 1)
    s = check_count("step", step, 0)
    return GrowthState(
        Q_cap=arr(np.zeros((d_, 0))),
        last_growth_step=s,
        heads=(HeadRecord(0, s),),
        prototypes=tuple(PrototypeRecord(j) for j in range(K)),
    )


class EventKind(StrEnum):
    BIRTH = "birth"
    HEAD_PRUNE = "head_prune"
    PROTOTYPE_PRUNE = "prototype_prune"
    NEAR_TIE = "near_tie"


@dataclass(frozen=True, eq=False)
class GrowthEvent:
    """One record of the architecture's history.

    ``statistic`` vs ``threshold`` is the comparison that decided (``λ_max`` vs ``θ`` for births,
    ``G_h`` vs ``φ_g`` for head prunes, ``n_j/n`` vs ``ε_K`` for prototype prunes); ``margin`` is
    signed so that positive means "decided with room" (``λ_max − θ``, ``φ_g − G_h``, ``ε_K − n_j/n``).
    ``decision`` names the comparison (for near-ties: ``grow``, ``head_prune``, ``hysteresis``,
    ``prototype_prune``). Births carry ``u_plus`` and ``lam_birth``; head prunes carry ``lam_max``
    (the hysteresis statistic ``λ_max(A_res)`` before removal).
    """

    step: int
    kind: EventKind
    statistic: float
    threshold: float
    margin: float
    decision: str
    head_id: int | None = None
    prototype_id: int | None = None
    u_plus: Float64[np.ndarray, " d"] | None = None
    lam_birth: float | None = None
    lam_max: float | None = None


def _near_tie_event(
    step: int,
    decision: str,
    statistic: float,
    threshold: float,
    margin: float,
    *,
    head_id: int | None = None,
    prototype_id: int | None = None,
) -> GrowthEvent:
    return GrowthEvent(
        step, EventKind.NEAR_TIE, statistic, threshold, margin, decision, head_id=head_id, prototype_id=prototype_id
    )


def _check_top(top: object, d: int) -> tuple[float, F64Array]:
    """Validate a tracker-supplied top eigenpair ``top = (λ̂, û)`` for :func:`grow_check`."""
    if not isinstance(top, tuple) or len(top) != 2:
        raise TypeError(f"top: expected a pair (λ̂, û), got {type(top).__name__}")
    lam_hat, u_hat = top
    if isinstance(lam_hat, bool) or not isinstance(lam_hat, (int, float, np.floating, np.integer)):
        raise TypeError(f"top: λ̂ = top[0] must be a real number, got {type(lam_hat).__name__}")
    lam = float(lam_hat)
    if not math.isfinite(lam):
        raise ValueError(
            f"top: λ̂ = top[0] must be finite, got {lam!r} (a NaN/inf eigenvalue estimate is a "
            "tracker failure, not a decision)"
        )
    try:
        u = check_array("top[1]", u_hat, 1)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"top: û = top[1] is invalid: {exc}") from None
    check_dim("top[1]", u, 0, d, "the model width d (state.Q_cap)")
    if frobenius(u) == 0.0:
        raise ValueError("top: û = top[1] must be non-zero")
    return lam, u


def grow_check(
    state: GrowthState,
    config: GrowthConfig,
    A_res: Float64[np.ndarray, "d d"],
    step: int,
    *,
    new_head_id: int,
    top: tuple[float, Float64[np.ndarray, " d"]] | None = None,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.2: grow when ``λ_max(A_res) > θ`` and ``step − last_growth_step ≥ T_d``.

    ``new_head_id`` is the id the model will give the new head (the model is the one allocator of head
    ids, e.g. ``ModelParams.next_head_id``); it must not name an active head.
    ``top = (λ̂, û)`` lets a tracker supply the top eigenpair (``λ̂`` a finite real, ``û`` a finite,
    non-zero float64 vector of length d; anything else raises, since a NaN ``λ̂`` would silently mean
    "no growth"); by default the exact oracle is used.
    On growth ``u₊`` is appended to ``Q_cap`` (:func:`append_direction`) and a birth event naming
    ``new_head_id`` is returned. At most one birth per check.
    """
    A = check_symmetric("A_res", A_res)
    check_dim("A_res", A, 0, state.d, "state.Q_cap's width d")
    s = check_count("step", step, 0)
    hid = check_count("new_head_id", new_head_id, 0)
    if hid in state.head_ids:
        raise ValueError(f"new_head_id: {hid} names an active head {state.head_ids}")
    if s < state.last_growth_step:
        raise ValueError(f"step: {s} is before the last growth at {state.last_growth_step}")
    if top is None:
        ext = exact_extremes(A)
        lam, u = ext.lam_max, ext.u_max
    else:
        lam, u = _check_top(top, state.d)
    events: list[GrowthEvent] = []
    margin = lam - config.theta
    if is_near_tie(lam, config.theta):
        events.append(_near_tie_event(s, "grow", lam, config.theta, margin))
    if lam > config.theta and s - state.last_growth_step >= config.T_d and state.m < state.d:
        Q = append_direction(state.Q_cap, u)
        u_new = arr(Q[:, -1].copy())
        events.append(
            GrowthEvent(s, EventKind.BIRTH, lam, config.theta, margin, "grow", head_id=hid, u_plus=u_new, lam_birth=lam)
        )
        state = replace(
            state,
            Q_cap=Q,
            last_growth_step=s,
            heads=(*state.heads, HeadRecord(hid, s)),
        )
    return state, tuple(events)


def prune_check(
    state: GrowthState,
    config: GrowthConfig,
    C: Float64[np.ndarray, "d d"],
    head_operators: Mapping[int, Float64[np.ndarray, "d d"]],
    step: int,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.3: prune head ``h`` after ``T_prune`` consecutive checks with ``G_h = ‖C M_a^h‖_F < φ_g``.

    ``head_operators`` maps every active head id to its ``M_a^h``. A head is eligible once it is at
    least ``T_d`` steps old; eligible heads are tried smallest ``G_h`` first, and each is removed only
    if ``λ_max(A_res) + G_h ≤ θ`` with ``A_res`` formed from the heads still present (hysteresis; so
    by G5 the next check on the same probe cannot grow). ``Q_cap`` is unchanged. At least
    ``config.min_heads`` heads remain.
    """
    C_ = check_symmetric("C", C)
    check_dim("C", C_, 0, state.d, "state.Q_cap's width d")
    s = check_count("step", step, 0)
    if set(head_operators) != set(state.head_ids):
        raise ValueError(
            f"head_operators: keys must be the active head ids {sorted(state.head_ids)}, got {sorted(head_operators)}"
        )
    Ms = {h: check_symmetric(f"head_operators[{h}]", M, sign=-1.0) for h, M in head_operators.items()}
    for h, M in Ms.items():
        check_dim(f"head_operators[{h}]", M, 0, state.d, "the model width d")
    G = {h: head_strength(C_, M) for h, M in Ms.items()}
    events: list[GrowthEvent] = []
    heads: list[HeadRecord] = []
    for rec in state.heads:
        g = G[rec.head_id]
        if is_near_tie(g, config.phi_g):
            events.append(_near_tie_event(s, "head_prune", g, config.phi_g, config.phi_g - g, head_id=rec.head_id))
        heads.append(replace(rec, below_count=rec.below_count + 1 if g < config.phi_g else 0))
    eligible = sorted(
        (r for r in heads if r.below_count >= config.T_prune and s - r.birth_step >= config.T_d),
        key=lambda r: (G[r.head_id], r.head_id),
    )
    for rec in eligible:
        if len(heads) <= config.min_heads:
            break
        g = G[rec.head_id]
        M_a = arr(np.sum(np.stack([Ms[r.head_id] for r in heads]), axis=0))
        lam = exact_extremes(residual_operator(C_, M_a, state.Q_cap)).lam_max
        if config.hysteresis:
            if is_near_tie(lam + g, config.theta):
                events.append(
                    _near_tie_event(s, "hysteresis", lam + g, config.theta, config.theta - lam - g, head_id=rec.head_id)
                )
            if not lam + g <= config.theta:
                continue
        heads = [r for r in heads if r.head_id != rec.head_id]
        events.append(
            GrowthEvent(
                s,
                EventKind.HEAD_PRUNE,
                g,
                config.phi_g,
                config.phi_g - g,
                "head_prune",
                head_id=rec.head_id,
                lam_max=lam,
            )
        )
    return replace(state, heads=tuple(heads)), tuple(events)


def prototype_prune_check(
    state: GrowthState, config: GrowthConfig, mass: Float64[np.ndarray, " K"], step: int
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """SPEC §3.5: remove a prototype whose mass ``n_j/n`` stayed below ``ε_K`` for ``T_prune`` checks.

    ``mass[i]`` belongs to ``state.prototypes[i]``. Smallest mass first; at least
    ``config.min_prototypes`` remain (claim D5 bounds the effect of each removal on ``F``).
    """
    m_ = check_array("mass", mass, 1)
    K = len(state.prototypes)
    check_dim("mass", m_, 0, K, "the number of active prototypes")
    # n_j/n is a mean of softmax entries, each in [0, 1] up to the softmax's own rounding; the
    # STOCHASTIC tolerance (per unit of K) bounds that excursion. Within it a mass is used as given
    # (never clipped); beyond it the input is wrong and raises.
    slack = tolerance("float64", CheckKind.STOCHASTIC).atol * K
    lo, hi = f64(m_.min()), f64(m_.max())
    if lo < -slack or hi > 1.0 + slack:
        raise ValueError(
            f"mass: entries n_j/n must lie in [0, 1] (within {slack:.1e}, the STOCHASTIC tolerance for "
            f"K = {K}), got min {lo!r}, max {hi!r}"
        )
    s = check_count("step", step, 0)
    events: list[GrowthEvent] = []
    protos: list[PrototypeRecord] = []
    masses: dict[int, float] = {}
    for rec, mj in zip(state.prototypes, m_.tolist(), strict=True):
        masses[rec.prototype_id] = mj
        if is_near_tie(mj, config.eps_K):
            events.append(
                _near_tie_event(
                    s, "prototype_prune", mj, config.eps_K, config.eps_K - mj, prototype_id=rec.prototype_id
                )
            )
        protos.append(replace(rec, low_mass_count=rec.low_mass_count + 1 if mj < config.eps_K else 0))
    eligible = sorted(
        (r for r in protos if r.low_mass_count >= config.T_prune),
        key=lambda r: (masses[r.prototype_id], r.prototype_id),
    )
    for rec in eligible:
        if len(protos) <= config.min_prototypes:
            break
        mj = masses[rec.prototype_id]
        protos = [r for r in protos if r.prototype_id != rec.prototype_id]
        events.append(
            GrowthEvent(
                s,
                EventKind.PROTOTYPE_PRUNE,
                mj,
                config.eps_K,
                config.eps_K - mj,
                "prototype_prune",
                prototype_id=rec.prototype_id,
            )
        )
    return replace(state, prototypes=tuple(protos)), tuple(events)


# --------------------------------------------------------------------------------------------------
# Pruning's effect on the layer output and the task loss (claim G5)
# --------------------------------------------------------------------------------------------------


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


def head_output(
    A_h: Float64[np.ndarray, "B T T"],
    X: Float64[np.ndarray, "B T d"],
    W_V: Float64[np.ndarray, "d d_v"],
    W_O: Float64[np.ndarray, "d_v d"],
) -> Float64[np.ndarray, "B T d"]:
    """``U_h = A_h X W_V^h W_O^h`` per sequence: exactly what removing head ``h`` subtracts from ``Y``."""
    X_ = check_array("X", X, 3)
    A_ = check_attention("A_h", A_h, X_.shape[0], X_.shape[1])
    W_V_ = check_array("W_V", W_V, 2)
    W_O_ = check_array("W_O", W_O, 2)
    check_dim("W_V", W_V_, 0, X_.shape[2], "X's width d")
    check_dim("W_O", W_O_, 0, W_V_.shape[1], "W_V's value width d_v")
    check_dim("W_O", W_O_, 1, X_.shape[2], "X's width d")
    return arr(np.einsum("bts,bsd->btd", A_, X_ @ W_V_ @ W_O_))


def head_output_bound(
    X: Float64[np.ndarray, "B T d"], W_V: Float64[np.ndarray, "d d_v"], W_O: Float64[np.ndarray, "d_v d"]
) -> Float64[np.ndarray, " B"]:
    """Per sequence ``b``: ``β_b = max_s ‖x_{b,s} W_V W_O‖``, which bounds every row of ``U_h`` (G5).

    Row ``t`` of ``A_h X W_V W_O`` is ``Σ_s a_ts (x_s W_V W_O)`` with ``a_t`` on the simplex, a convex
    combination, so its norm is at most ``β_b`` (step G5.5); hence ``‖U_{h,b}‖_F ≤ √T β_b`` and
    ``β_b ≤ max_s ‖x_{b,s}‖ · ‖W_V W_O‖_2``. The bound holds for *every* attention pattern, so it needs
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


def prototype_lipschitz(P: Float64[np.ndarray, "d K"], T_P: float) -> float:
    """``L_Z = 1 + diam(P)²/(2 T_P)``: Lipschitz constant of ``y ↦ z = y + P q(y)`` (per token, G5).

    ``∂(P q)/∂y = (2/T_P) Cov_q(P)`` with ``Cov_q(P) = Σ_j q_j (p_j − p̄)(p_j − p̄)ᵀ`` (step G5.7), PSD
    with ``λ_max ≤ max_{‖v‖=1} Var_q(vᵀp) ≤ diam(P)²/4`` (Popoviciu). So ``‖∂z/∂y‖_2 ≤ L_Z`` everywhere
    and, by the mean-value inequality along the segment, ``‖Δz_t‖ ≤ L_Z ‖Δy_t‖``.
    """
    P_ = check_array("P", P, 2)
    T = check_positive("T_P", T_P)
    diff = P_[:, :, None] - P_[:, None, :]
    diam2 = f64(np.max(np.sum(diff * diff, axis=0)))
    return 1.0 + diam2 / (2.0 * T)


def readout_lipschitz(W_c: Float64[np.ndarray, "d c"]) -> float:
    """``√2 ‖W_c‖_2``: Lipschitz constant of ``z̄ ↦ CE(z̄ W_c + b_c, y)`` for every label ``y`` (G5).

    ``∇_o CE = softmax(o) − e_y`` has ``‖·‖² = (1 − p_y)² + Σ_{j≠y} p_j² ≤ 2(1 − p_y)² ≤ 2``
    (step G5.6), and ``‖Δz̄ W_c‖ ≤ ‖W_c‖_2 ‖Δz̄‖``.
    """
    W = check_array("W_c", W_c, 2)
    return float(np.sqrt(2.0)) * f64(np.linalg.norm(W, 2))


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
