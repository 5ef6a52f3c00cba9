"""The operators of the INCRT growth rule (SPEC §1, §3.1) and the exact eigen-oracle.

Notation is SPEC §1's. Tokens ``X`` (n×d; the layer input ``X̄`` flattened over batch and time),
second moment ``C = XᵀX/n``, per-head score operators ``M_h`` and their antisymmetric ("directional")
parts ``M_a^h = (M_h − M_hᵀ)/2``, ``M_a = Σ_h M_a^h``, captured basis ``Q_cap`` (d×m, orthonormal),
``Π⊥ = I − Q_cap Q_capᵀ`` and the residual directional operator

    ``A_res = Π⊥ · ½(C M_a + (C M_a)ᵀ) · Π⊥``.

Because ``C`` is symmetric and ``M_a`` antisymmetric, ``(C M_a)ᵀ = M_aᵀ C = −M_a C``, so the middle
factor is ``½(C M_a − M_a C) = ½[C, M_a]``: a *symmetric* matrix (``[C, M_a]ᵀ = [C, M_a]``) of trace
zero (the trace of a commutator), hence indefinite unless it vanishes (step G5.1).


Validation of the operators (square, (anti)symmetric within a relative rounding tolerance, captured
bases, θ) lives here too, because every other INCRT module takes these operators as input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float64

from reference._arrays import (
    F64Array,
    arr,
    check_array,
    check_dim,
    check_overflow,
    check_positive,
    check_rng,
    f64,
    finite_result,
)
from reference.tolerances import CheckKind, accumulation_bound, tolerance


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


def is_symmetric(A: object, sign: float = 1.0) -> bool:
    """Whether :func:`check_symmetric` accepts ``A`` (a hypothesis predicate; never raises)."""
    try:
        check_symmetric("A", A, sign=sign)
    except (TypeError, ValueError):
        return False
    return True


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


def check_theta_resolvable(name: str, theta: float, A: F64Array) -> float:
    """Refuse a threshold θ that the exact oracle cannot resolve on ``A``: ``θ ≤ E`` with ``E =``
    :func:`eigh_error_bound` ``(A)``.

    Every computed eigenvalue of ``A`` is within ``E`` of an exact one, so a captured direction (exact
    eigenvalue 0 of ``Π⊥AΠ⊥``) can come out as ``λ̂ ∈ [−E, E]``; with ``θ ≤ E`` such a direction could
    pass ``λ̂ > θ`` and be captured a second time (the orthogonality check of :func:`append_direction`
    then fails). Above ``E`` the decision ``λ̂ > θ`` can be wrong only for eigenvalues within ``E`` of θ.
    """
    th = check_theta(name, theta)
    bound = eigh_error_bound(A)
    if not th > bound:
        raise ValueError(
            f"{name}: θ = {th!r} is not above the exact eigen-oracle's a-priori error bound E = {bound:.3g} for "
            f"this operator (‖A‖_F = {frobenius(A):.3g}): eigenvalues within E of 0 cannot be told from θ; "
            f"choose θ > {bound:.3g} (e.g. by calibrate_thresholds)"
        )
    return th


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


def unit(name: str, v: F64Array) -> F64Array:
    """``v/‖v‖``. A zero vector has no direction and is refused naming ``name`` (dividing would give
    NaN that then passes for a direction)."""
    n = frobenius(v)
    if n == 0.0:
        raise ValueError(f"{name}: is the zero vector, which has no direction")
    return arr(v / n)


def fix_sign(u: F64Array) -> F64Array:
    """The representative of ``±u`` whose largest-magnitude entry (first on ties) is positive."""
    i = int(np.argmax(np.abs(u)))
    return arr(u if u[i] >= 0.0 else -u)


@finite_result("X")
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


@finite_result("Ms")
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


@finite_result("Q_cap")
def complement_projector(Q_cap: Float64[np.ndarray, "d m"]) -> Float64[np.ndarray, "d d"]:
    """``Π⊥ = I − Q_cap Q_capᵀ`` (a projector iff ``Q_cap`` is orthonormal, step G1.1); symmetrised."""
    Q = check_array("Q_cap", Q_cap, 2, allow_empty=True)
    P = np.eye(Q.shape[0]) - Q @ Q.T
    # Symmetrising a computed quantity that is symmetric in exact arithmetic (not user input).
    return arr(0.5 * (P + P.T))


@finite_result("C", "M_a")
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


@finite_result("A", "Q_cap")
def deflate(A: Float64[np.ndarray, "d d"], Q_cap: Float64[np.ndarray, "d m"]) -> Float64[np.ndarray, "d d"]:
    """``Π⊥ A Π⊥`` for a symmetric ``A`` (the static-operator form of the residual, claims G1–G4)."""
    A_ = check_symmetric("A", A)
    Q = check_basis("Q_cap", Q_cap, A_.shape[0])
    P = complement_projector(Q)
    R = P @ A_ @ P
    # Π⊥AΠ⊥ is symmetric in exact arithmetic for the checked symmetric A: a computed quantity.
    return arr(0.5 * (R + R.T))


@finite_result("C", "M_a", "Q_cap")
def residual_operator(
    C: Float64[np.ndarray, "d d"], M_a: Float64[np.ndarray, "d d"], Q_cap: Float64[np.ndarray, "d m"]
) -> Float64[np.ndarray, "d d"]:
    """``A_res = Π⊥ ½(C M_a + (C M_a)ᵀ) Π⊥ = Π⊥ ½[C, M_a] Π⊥`` (SPEC §1, §3.1).

    Symmetric, and ``A_res Q_cap = 0`` because ``Π⊥ Q_cap = 0`` (step G1.2): the captured directions
    are eigenvectors for the eigenvalue 0, so an eigenvector for any *non-zero* eigenvalue is
    orthogonal to them (the SPEC's "``A_res = Π⊥ · Π⊥`` so ``u₊ ⟂ Q_cap``" needs ``λ_max ≠ 0``).
    """
    return deflate(commutator_form(C, M_a), Q_cap)


@finite_result("C", "M_a_h")
def head_strength(C: Float64[np.ndarray, "d d"], M_a_h: Float64[np.ndarray, "d d"]) -> float:
    """``G_h = ‖C M_a^h‖_F``: bounds ``‖Π⊥ ½[C, M_a^h] Π⊥‖_2`` (claim G5)."""
    C_ = check_symmetric("C", C)
    M_ = check_symmetric("M_a_h", M_a_h, sign=-1.0)
    check_dim("M_a_h", M_, 0, C_.shape[0], "C's width d")
    return frobenius(check_overflow("head_strength", arr(C_ @ M_), "C, M_a_h"))


@finite_result("V", "eigenvalues")
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


@dataclass(frozen=True, eq=False)
class EigenExtremes:
    """Top and bottom eigenpairs of a symmetric matrix (unit eigenvectors, sign by :func:`fix_sign`)."""

    lam_max: float
    u_max: Float64[np.ndarray, " d"]
    lam_min: float
    u_min: Float64[np.ndarray, " d"]


def exact_extremes(A: Float64[np.ndarray, "d d"]) -> EigenExtremes:
    """``(λ_max, u₊, λ_min, u₋)`` of a symmetric ``A`` by ``eigh`` (the exact oracle of SPEC §3.1)."""
    A_ = check_symmetric("A", A)
    lam, V = np.linalg.eigh(A_)
    return EigenExtremes(f64(lam[-1]), fix_sign(arr(V[:, -1])), f64(lam[0]), fix_sign(arr(V[:, 0])))


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
    elif isinstance(eigenvalues, str) or not isinstance(eigenvalues, Sequence):  # type: ignore[unreachable]
        raise TypeError(f"eigenvalues: expected a sequence or 1-d array of reals, got {type(eigenvalues).__name__}")
    else:
        if len(eigenvalues) == 0:
            raise ValueError("eigenvalues: expected at least one eigenvalue, got an empty sequence")
        if not all(
            isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool) for x in eigenvalues
        ):
            raise TypeError(f"eigenvalues: expected real numbers, got {list(eigenvalues)!r}")
        lam = check_array("eigenvalues", np.asarray(eigenvalues, dtype=np.float64), 1)
    d = lam.shape[0]
    Q, R = np.linalg.qr(check_rng(rng).standard_normal((d, d)))
    return spectral_operator(arr(Q * np.sign(np.diag(R))[None, :]), lam)


__all__ = [
    "EigenExtremes",
    "antisymmetric_part",
    "check_basis",
    "check_square",
    "check_symmetric",
    "check_theta",
    "check_theta_resolvable",
    "commutator_form",
    "complement_projector",
    "count_above",
    "deflate",
    "directional_operator",
    "eigenvalues_desc",
    "eigh_error_bound",
    "exact_extremes",
    "fix_sign",
    "frobenius",
    "head_strength",
    "is_near_tie",
    "is_symmetric",
    "planted_operator",
    "residual_operator",
    "second_moment",
    "spectral_operator",
    "symmetry_tolerance",
    "unit",
]
