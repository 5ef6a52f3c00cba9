"""Symbolic steps for the INCRT claims G1–G6 (SPEC §4), checked with sympy and against ``reference``.

Pattern (nerva-sympy, STYLE.md): tiny symbolic sizes (d ≤ 3, m ≤ 2), symbols with declared
assumptions, equality as ``is_zero(lhs − rhs)``. Unit vectors and rotations use the *rational*
(stereographic / Cayley) parametrisations, e.g. ``((1 − t²)/(1 + t²), 2t/(1 + t²))``, so every
identity is one of rational functions and ``cancel`` decides it without trigonometric simplification.
Identities that need a hypothesis (``QᵀQ = I``) are proved in the form "``expr = Q(QᵀQ − I)Qᵀ``" for a
*general* ``Q``, which vanishes under the hypothesis. Each step then evaluates the same statement at
a seeded float64 point through the ``reference`` functions, within the float64 VALUE tolerance of
:mod:`reference.tolerances` scaled by the magnitude of the compared quantities.

``reference`` functions are looked up through their module at run time (``rops.residual_operator``), so
a test can plant a violation by monkeypatching one and watch the step fail.
"""

from __future__ import annotations

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
)
from reference import ddcl as rd
from reference import model as ref_model
from reference.incrt import capture as rcap
from reference.incrt import operators as rops
from reference.incrt import trackers as rtrk
from reference.invariants import incrt as rinv
from reference.invariants import pruning as rprune
from reference.tolerances import CheckKind, tolerance

F64: TypeAlias = NDArray[np.float64]
Sym: TypeAlias = Any  # sympy ships no type information

# --------------------------------------------------------------------------------------------------
# Sympy and random-point helpers (bookkeeping, seeded generators, symbol matrices: proofs_check.core)
# --------------------------------------------------------------------------------------------------


def _symmetric(name: str, d: int) -> Sym:
    return sp.Matrix(d, d, lambda r, c: sp.Symbol(f"{name}_{min(r, c)}{max(r, c)}", real=True))


def _antisymmetric(name: str, d: int) -> Sym:
    def entry(r: int, c: int) -> Sym:
        if r == c:
            return sp.Integer(0)
        s = sp.Symbol(f"{name}_{min(r, c)}{max(r, c)}", real=True)
        return s if r < c else -s

    return sp.Matrix(d, d, entry)


def _unit2(t: Sym) -> Sym:
    """A unit vector of R² (every one but ``(−1, 0)``) as a rational function of ``t``."""
    return sp.Matrix([(1 - t**2) / (1 + t**2), 2 * t / (1 + t**2)])


def _rotation2(t: Sym) -> Sym:
    """The rotation of R² with first column :func:`_unit2` (Cayley parametrisation)."""
    c, s = _unit2(t)
    return sp.Matrix([[c, -s], [s, c]])


def _rot3_z(t: Sym) -> Sym:
    """Rotation about the third axis, rational in ``t``."""
    R2 = _rotation2(t)
    return sp.Matrix([[R2[0, 0], R2[0, 1], 0], [R2[1, 0], R2[1, 1], 0], [0, 0, 1]])


def _orthonormal(rng: np.random.Generator, d: int, m: int) -> F64:
    Q, Rr = np.linalg.qr(rng.standard_normal((d, m)))
    return as_f64(Q * np.sign(np.diag(Rr))[None, :])


def _psd(rng: np.random.Generator, d: int) -> F64:
    return rops.second_moment(as_f64(rng.standard_normal((3 * d, d))))


def _anti(rng: np.random.Generator, d: int) -> F64:
    return rops.antisymmetric_part(as_f64(rng.standard_normal((d, d))))


@step("G1.1", checks=("reference.incrt.operators.complement_projector",))
def step_g1_1() -> StepOutcome:
    """Π⊥ = I − QQᵀ is symmetric, and Π⊥² − Π⊥ = Q(QᵀQ − I)Qᵀ: a projector when Q is orthonormal."""
    ch = StepChecks()
    Q = symbol_matrix("q", 3, 2)
    Pi = sp.eye(3) - Q * Q.T
    ch.zero("Π⊥ symmetric", Pi.T - Pi)
    ch.zero("Π⊥² − Π⊥ = Q(QᵀQ − I)Qᵀ (zero when QᵀQ = I)", Pi * Pi - Pi - Q * (Q.T * Q - sp.eye(2)) * Q.T)
    rng = step_rng("G1.1")
    Qn = _orthonormal(rng, 5, 2)
    P = rops.complement_projector(Qn)
    ch.close("Π⊥ = Π⊥ᵀ (reference)", P, P.T)
    ch.close("Π⊥² = Π⊥ (reference)", P @ P, P, scale=1.0)
    return ch.outcome()


@step("G1.2", checks=("reference.incrt.operators.residual_operator",))
def step_g1_2() -> StepOutcome:
    """A_res = Π⊥SΠ⊥ is symmetric for symmetric S, and A_res Q = 0, Qᵀ A_res = 0 when QᵀQ = I."""
    ch = StepChecks()
    Q = symbol_matrix("q", 3, 2)
    S = _symmetric("s", 3)
    Pi = sp.eye(3) - Q * Q.T
    A_res = Pi * S * Pi
    ch.zero("A_res symmetric for symmetric S", A_res.T - A_res)
    ch.zero("A_res Q = Π⊥ S Q (I − QᵀQ) (zero when QᵀQ = I)", A_res * Q - Pi * S * Q * (sp.eye(2) - Q.T * Q))
    ch.zero("Qᵀ A_res = (I − QᵀQ) Qᵀ S Π⊥", Q.T * A_res - (sp.eye(2) - Q.T * Q) * Q.T * S * Pi)
    rng = step_rng("G1.2")
    C, M, Qn = _psd(rng, 5), _anti(rng, 5), _orthonormal(rng, 5, 2)
    A = rops.residual_operator(C, M, Qn)
    scale = float(np.linalg.norm(C) * np.linalg.norm(M))
    ch.close("A_res Q_cap = 0 (reference)", A @ Qn, np.zeros((5, 2)), scale=scale)
    ch.close("A_res = A_resᵀ (reference)", A, A.T)
    return ch.outcome()


@step(
    "G1.3",
    checks=(
        "reference.incrt.capture.greedy_capture",
        "reference.incrt.operators.deflate",
        "reference.incrt.operators.exact_extremes",
    ),
)
def step_g1_3() -> StepOutcome:
    """A_res u = λu with λ ≠ 0 forces Qᵀu = 0 (u₊ ⟂ Q_cap); then [Q u] is orthonormal: rank +1."""
    ch = StepChecks()
    # u with A_res u = λu, λ ≠ 0: λ Qᵀu = Qᵀ A_res u = 0 (G1.2), so Qᵀu = 0; then [Q u] is orthonormal.
    Q = symbol_matrix("q", 3, 2)
    u = symbol_matrix("u", 3, 1)
    QU = Q.row_join(u)
    gram = QU.T * QU
    block = sp.Matrix(sp.BlockMatrix([[Q.T * Q, Q.T * u], [u.T * Q, u.T * u]]))
    ch.zero("Gram([Q u]) = [[QᵀQ, Qᵀu], [uᵀQ, uᵀu]]", gram - block)
    lam = sp.Symbol("lambda", nonzero=True)
    Qtu = sp.Matrix(2, 1, lambda r, _: sp.Symbol(f"c_{r}", real=True))
    # Qᵀ A_res u = 0 and A_res u = λu give λ·Qᵀu = 0, whose only solution for λ ≠ 0 is Qᵀu = 0.
    sol = sp.solve(list(lam * Qtu), list(Qtu), dict=True)
    ch.symbolic.append(("λ·Qᵀu = 0 with λ ≠ 0 forces Qᵀu = 0", sol == [{Qtu[0]: 0, Qtu[1]: 0}]))
    rng = step_rng("G1.3")
    A = rops.planted_operator([3.0, 2.0, 0.5, -1.0, -2.0], rng=rng)
    cap = rcap.greedy_capture(A, 1.0)
    ext = rops.exact_extremes(rops.deflate(A, cap.Q_cap[:, :1]))
    ch.close("Q_capᵀu₊ = 0 after one growth (reference)", cap.Q_cap[:, :1].T @ ext.u_max, np.zeros(1), scale=1.0)
    ch.close("Q_capᵀQ_cap = I (reference)", cap.Q_cap.T @ cap.Q_cap, np.eye(cap.m))
    return ch.outcome()


# --------------------------------------------------------------------------------------------------
# G2 Spectral ordering
# --------------------------------------------------------------------------------------------------

_t = sp.Symbol("t", real=True)
_l1, _l2, _l3 = sp.symbols("lambda_1 lambda_2 lambda_3", real=True)


def _deflated() -> tuple[Sym, Sym, Sym]:
    V = _rot3_z(_t)
    A = V * sp.diag(_l1, _l2, _l3) * V.T
    v1 = V[:, 0]
    Pi = sp.eye(3) - v1 * v1.T
    return V, A, Pi * A * Pi


@step("G2.1", checks=("reference.incrt.operators.planted_operator", "reference.incrt.operators.deflate"))
def step_g2_1() -> StepOutcome:
    """Deflating an eigenvector leaves the other eigenpairs of A unchanged; the deflated direction gets eigenvalue 0."""
    ch = StepChecks()
    V, A, D = _deflated()
    ch.zero("A v_i = λ_i v_i (planted)", A * V[:, 1] - _l2 * V[:, 1])
    ch.zero("Π⊥AΠ⊥ v_1 = 0", D * V[:, 0])
    ch.zero("Π⊥AΠ⊥ v_2 = λ_2 v_2", D * V[:, 1] - _l2 * V[:, 1])
    ch.zero("Π⊥AΠ⊥ v_3 = λ_3 v_3", D * V[:, 2] - _l3 * V[:, 2])
    rng = step_rng("G2.1")
    lam = [3.0, 1.5, 0.5, -1.0]
    A_n = rops.planted_operator(lam, rng=rng)
    _, Vn = np.linalg.eigh(A_n)
    v1 = as_f64(Vn[:, -1:])
    Dn = rops.deflate(A_n, v1)
    ch.close(
        "deflated spectrum {0, λ_2, …} (reference)",
        np.sort(np.linalg.eigvalsh(Dn)),
        np.sort([0.0, *lam[1:]]),
        scale=3.0,
    )
    return ch.outcome()


@step("G2.2", checks=("reference.incrt.operators.planted_operator", "reference.incrt.capture.greedy_capture"))
def step_g2_2() -> StepOutcome:
    """det(xI − Π⊥AΠ⊥) = x(x − λ_2)(x − λ_3): the next birth is at λ_2 (when > θ > 0)."""
    ch = StepChecks()
    _, _, D = _deflated()
    x = sp.Symbol("x")
    ch.zero("det(xI − Π⊥AΠ⊥) = x(x − λ_2)(x − λ_3)", (x * sp.eye(3) - D).det() - x * (x - _l2) * (x - _l3))
    rng = step_rng("G2.2")
    lam = [3.0, 2.0, 1.2, -0.5, -2.0]
    cap = rcap.greedy_capture(rops.planted_operator(lam, rng=rng), 1.0)
    ch.close("births = λ_1, λ_2, λ_3 in order (reference)", np.asarray(cap.lam_births), np.asarray(lam[:3]))
    return ch.outcome()


# --------------------------------------------------------------------------------------------------
# G3 Minimality
# --------------------------------------------------------------------------------------------------


@step(
    "G3.1", checks=("reference.incrt.operators.planted_operator", "reference.invariants.incrt.brute_force_min_residual")
)
def step_g3_1() -> StepOutcome:
    """Interlacing (d = 3, m = 1): every q⊥ contains w ∈ span(v_1, v_2) with wᵀAw − λ_2‖w‖² = (λ_1 − λ_2)q_2² ≥ 0, so
    λ_max(Π⊥AΠ⊥) ≥ λ_2.
    """
    ch = StepChecks()
    # Cauchy interlacing, d = 3, m = 1, eigenbasis coordinates: for any q, w = (q_2, −q_1, 0) ⟂ q lies
    # in span(v_1, v_2) and wᵀAw − λ_2 wᵀw = (λ_1 − λ_2) q_2² ≥ 0, so λ_max(compression to q⊥) ≥ λ_2.
    q = sp.Matrix(sp.symbols("q_1 q_2 q_3", real=True))
    w = sp.Matrix([q[1], -q[0], 0])
    A = sp.diag(_l1, _l2, _l3)
    ch.zero("qᵀw = 0", (q.T * w)[0])
    ch.zero("wᵀAw − λ_2 wᵀw = (λ_1 − λ_2) q_2²", (w.T * A * w)[0] - _l2 * (w.T * w)[0] - (_l1 - _l2) * q[1] ** 2)
    rng = step_rng("G3.1")
    lam = [2.5, 1.5, 0.2, -1.0]
    A_n = rops.planted_operator(lam, rng=rng)
    for m in (1, 2):
        best, _ = rinv.brute_force_min_residual(A_n, m, rng=rng, n_random=16)
        ch.at_most(f"λ_{m + 1}(A) ≤ min λ_max(Π⊥AΠ⊥) over {m}-sets (reference)", lam[m], best, scale=2.5)
    return ch.outcome()


@step("G3.2", checks=("reference.incrt.operators.planted_operator", "reference.invariants.incrt.residual_top"))
def step_g3_2() -> StepOutcome:
    """For w ⟂ v_1..v_m, wᵀAw ≤ λ_{m+1}‖w‖²: the top m* eigenvectors are sufficient."""
    ch = StepChecks()
    # Sufficiency of the top m* eigenvectors (m* = 1, d = 3): for w ⟂ v_1, wᵀAw ≤ λ_2 wᵀw.
    w2, w3 = sp.symbols("w_2 w_3", real=True)
    w = sp.Matrix([0, w2, w3])
    A = sp.diag(_l1, _l2, _l3)
    ch.zero(
        "λ_2 wᵀw − wᵀAw = (λ_2 − λ_3) w_3² for w ⟂ v_1", _l2 * (w.T * w)[0] - (w.T * A * w)[0] - (_l2 - _l3) * w3**2
    )
    rng = step_rng("G3.2")
    lam = [2.5, 1.5, 0.2, -1.0]
    A_n = rops.planted_operator(lam, rng=rng)
    _, V = np.linalg.eigh(A_n)
    ch.close(
        "λ_max after capturing the top 2 eigenvectors = max(λ_3, 0) (reference)",
        rinv.residual_top(A_n, as_f64(V[:, ::-1][:, :2].copy())),
        lam[2],
        scale=2.5,
    )
    return ch.outcome()


# --------------------------------------------------------------------------------------------------
# G4 Uniqueness
# --------------------------------------------------------------------------------------------------


@step("G4.1", checks=("reference.incrt.operators.planted_operator", "reference.incrt.capture.greedy_capture_tracked"))
def step_g4_1() -> StepOutcome:
    """In a repeated eigenspace every unit vector is an eigenvector, and after capturing one the next birth is its
    complement in the same eigenspace.
    """
    ch = StepChecks()
    lam, mu = sp.symbols("lambda mu", real=True)
    A = sp.diag(lam, lam, mu)
    c, s = _unit2(_t)
    u = sp.Matrix([c, s, 0])
    u_perp = sp.Matrix([-s, c, 0])
    ch.zero("every unit u in the repeated eigenspace is an eigenvector", A * u - lam * u)
    Pi = sp.eye(3) - u * u.T
    ch.zero("after capturing u, the next birth is u⊥ in the same eigenspace", Pi * A * Pi * u_perp - lam * u_perp)
    rng = step_rng("G4.1")
    A_n = rops.planted_operator([2.0, 2.0, 0.5, -1.0], rng=rng)
    runs = [rcap.greedy_capture_tracked(A_n, 1.0, rng=np.random.default_rng(s), n_steps=300) for s in (1, 2)]
    for k, run in enumerate(runs):
        u_n = run.Q_cap[:, 0]
        ch.close(f"run {k}: Aû = 2û (reference)", A_n @ u_n, 2.0 * u_n, scale=2.0)
    ch.close(
        "both runs span the same eigenspace (reference)",
        runs[0].Q_cap @ runs[0].Q_cap.T,
        runs[1].Q_cap @ runs[1].Q_cap.T,
        scale=1.0,
    )
    return ch.outcome()


@step("G4.2", checks=("reference.invariants.incrt.residual_top",))
def step_g4_2() -> StepOutcome:
    """A non-eigenvector q can be sufficient: compression of diag(a, b, c) to q⊥ is diag(b, a sin² + c cos²)."""
    ch = StepChecks()
    a, b, c_ = sp.symbols("a b c", real=True)
    A = sp.diag(a, b, c_)
    co, si = _unit2(_t)
    W = sp.Matrix([[0, -si], [1, 0], [0, co]])  # orthonormal basis of q⊥, q = (co, 0, si)
    ch.zero("Wᵀ W = I", W.T * W - sp.eye(2))
    ch.zero("compression to q⊥ = diag(b, a·si² + c·co²)", W.T * A * W - sp.diag(b, a * si**2 + c_ * co**2))
    # Numeric: A = diag(3, 0.5, −10), θ = 1: q at angle 0.3 from e_1 also makes λ_max ≤ θ.
    A_n = as_f64(np.diag([3.0, 0.5, -10.0]))
    phi = 0.3
    q = as_f64(np.array([[np.cos(phi)], [0.0], [np.sin(phi)]]))
    expected = max(0.5, 3.0 * np.sin(phi) ** 2 - 10.0 * np.cos(phi) ** 2, 0.0)
    ch.close("λ_max(Π⊥AΠ⊥) for a non-eigenvector q (reference)", rinv.residual_top(A_n, q), expected, scale=10.0)
    ch.at_most("…and it is sufficient for θ = 1 (reference)", rinv.residual_top(A_n, q), 1.0, scale=10.0)
    return ch.outcome()


# --------------------------------------------------------------------------------------------------
# G5 Pruning safety
# --------------------------------------------------------------------------------------------------


@step("G5.1", checks=("reference.incrt.operators.commutator_form",))
def step_g5_1() -> StepOutcome:
    """For symmetric C and antisymmetric M_a: ½(C M_a + (C M_a)ᵀ) = ½(C M_a + M_aᵀC) = ½[C, M_a], symmetric with trace
    0.
    """
    ch = StepChecks()
    C = _symmetric("c", 3)
    M = _antisymmetric("m", 3)
    S = (C * M + (C * M).T) / 2
    ch.zero("½(C M_a + (C M_a)ᵀ) = ½(C M_a + M_aᵀ C)", S - (C * M + M.T * C) / 2)
    ch.zero("… = ½[C, M_a]", S - (C * M - M * C) / 2)
    ch.zero("[C, M_a] symmetric", (C * M - M * C).T - (C * M - M * C))
    ch.zero("tr [C, M_a] = 0", (C * M - M * C).trace())
    rng = step_rng("G5.1")
    Cn, Mn = _psd(rng, 4), _anti(rng, 4)
    ch.close(
        "commutator_form = ½(CM − MC) (reference)",
        rops.commutator_form(Cn, Mn),
        0.5 * (Cn @ Mn - Mn @ Cn),
        scale=float(np.linalg.norm(Cn) * np.linalg.norm(Mn)),
    )
    return ch.outcome()


@step("G5.2", checks=("reference.incrt.operators.residual_operator",))
def step_g5_2() -> StepOutcome:
    """A_res is linear in M_a: removing head h changes it by −Π⊥½[C, M_a^h]Π⊥."""
    ch = StepChecks()
    C = _symmetric("c", 3)
    M, Mh = _antisymmetric("m", 3), _antisymmetric("h", 3)
    Q = symbol_matrix("q", 3, 1)
    Pi = sp.eye(3) - Q * Q.T

    def a_res(Ma: Sym) -> Sym:
        return Pi * (C * Ma - Ma * C) / 2 * Pi

    ch.zero("A_res(M_a − M_a^h) − A_res(M_a) = −Π⊥½[C, M_a^h]Π⊥", a_res(M - Mh) - a_res(M) + a_res(Mh))
    rng = step_rng("G5.2")
    Cn, Mn, Mh_n, Qn = _psd(rng, 4), _anti(rng, 4), _anti(rng, 4), _orthonormal(rng, 4, 1)
    before = rops.residual_operator(Cn, as_f64(Mn + Mh_n), Qn)
    after = rops.residual_operator(Cn, Mn, Qn)
    ch.close(
        "removal delta (reference)",
        after - before,
        -rops.residual_operator(Cn, Mh_n, Qn),
        scale=float(np.linalg.norm(Cn) * (np.linalg.norm(Mn) + np.linalg.norm(Mh_n))),
    )
    return ch.outcome()


@step("G5.3", checks=("reference.incrt.operators.head_strength",))
def step_g5_3() -> StepOutcome:
    """M_a C = −(C M_a)ᵀ, so ‖½[C, M_a^h]‖_2 ≤ ‖C M_a^h‖_2 ≤ G_h."""
    ch = StepChecks()
    C = _symmetric("c", 3)
    M = _antisymmetric("m", 3)
    ch.zero("M_a C = −(C M_a)ᵀ, so ‖M_a C‖_2 = ‖C M_a‖_2", M * C + (C * M).T)
    rng = step_rng("G5.3")
    Cn, Mn, Qn = _psd(rng, 4), _anti(rng, 4), _orthonormal(rng, 4, 2)
    G = rops.head_strength(Cn, Mn)
    ch.close("G_h = ‖C M_a^h‖_F (reference)", G, float(np.sqrt(np.sum((Cn @ Mn) ** 2))))
    ch.close("‖M C‖_2 = ‖C M‖_2 (reference)", np.linalg.norm(Mn @ Cn, 2), np.linalg.norm(Cn @ Mn, 2))
    ch.at_most(
        "‖Π⊥½[C, M]Π⊥‖_2 ≤ G_h (reference)", float(np.linalg.norm(rops.residual_operator(Cn, Mn, Qn), 2)), G, scale=G
    )
    return ch.outcome()


@step("G5.4", checks=("reference.incrt.operators.frobenius",))
def step_g5_4() -> StepOutcome:
    """‖X‖_2 ≤ ‖X‖_F: the eigenvalues of XᵀX sum to ‖X‖_F² and multiply to det(X)² ≥ 0 (2×2)."""
    ch = StepChecks()
    X = symbol_matrix("x", 2, 2)
    G = X.T * X
    tr, det = G.trace(), G.det()
    disc = sp.sqrt(tr**2 - 4 * det)
    lp, lm = (tr + disc) / 2, (tr - disc) / 2
    ch.zero("λ₊ + λ₋ = tr(XᵀX) = ‖X‖_F²", lp + lm - (X.T * X).trace())
    ch.zero("λ₊ λ₋ = det(X)² ≥ 0, so λ₋ ≥ 0 and ‖X‖_2² = λ₊ ≤ ‖X‖_F²", sp.expand(lp * lm) - X.det() ** 2)
    rng = step_rng("G5.4")
    Xn = as_f64(rng.standard_normal((4, 4)))
    ch.at_most("‖X‖_2 ≤ ‖X‖_F (reference)", float(np.linalg.norm(Xn, 2)), rops.frobenius(Xn), scale=rops.frobenius(Xn))
    # Tight: for a rank-one X = u vᵀ both norms are ‖u‖‖v‖ (a halved or inflated ‖·‖_F cannot pass).
    u, v = as_f64(rng.standard_normal(4)), as_f64(rng.standard_normal(3))
    R1 = as_f64(np.outer(u, v))
    ch.close(
        "rank one: ‖u vᵀ‖_F = ‖u‖‖v‖ (reference)", rops.frobenius(R1), float(np.linalg.norm(u) * np.linalg.norm(v))
    )
    return ch.outcome()


@step("G5.5", checks=("reference.invariants.pruning.head_output_bound", "reference.model.head_output"))
def step_g5_5() -> StepOutcome:
    """A convex combination is no longer than its longest term: a‖y_1‖² + (1−a)‖y_2‖² − ‖mix‖² = a(1−a)‖y_1 − y_2‖²."""
    ch = StepChecks()
    a = sp.Symbol("a", real=True)
    y1, y2 = symbol_matrix("y", 2, 1), symbol_matrix("z", 2, 1)
    mix = a * y1 + (1 - a) * y2

    def sq(v: Sym) -> Sym:
        return (v.T * v)[0]

    ch.zero(
        "a‖y_1‖² + (1−a)‖y_2‖² − ‖a y_1 + (1−a) y_2‖² = a(1−a)‖y_1 − y_2‖²",
        a * sq(y1) + (1 - a) * sq(y2) - sq(mix) - a * (1 - a) * sq(y1 - y2),
    )
    rng = step_rng("G5.5")
    B, T, d, dv = 2, 4, 3, 2
    X = as_f64(rng.standard_normal((B, T, d)))
    logits = rng.standard_normal((B, T, T))
    A_h = np.exp(logits - logits.max(axis=2, keepdims=True))
    A_h = as_f64(A_h / A_h.sum(axis=2, keepdims=True))
    W_V, W_O = as_f64(rng.standard_normal((d, dv))), as_f64(rng.standard_normal((dv, d)))
    U = ref_model.head_output(A_h, X, W_V, W_O)
    beta = rprune.head_output_bound(X, W_V, W_O)
    rows = np.sqrt(np.sum(U * U, axis=2)).max(axis=1)
    for b in range(B):
        ch.at_most(f"max_t ‖u_{{b,t}}‖ ≤ β_b, b={b} (reference)", float(rows[b]), float(beta[b]), scale=float(beta[b]))
    # Tight: attention one-hot on the longest value row s* attains the bound, ‖u_{b,t}‖ = β_b.
    values = np.einsum("btd,de,ef->btf", X, W_V, W_O)
    star = np.argmax(np.sum(values * values, axis=2), axis=1)
    one_hot = np.zeros((B, T, T))
    for b in range(B):
        one_hot[b, :, star[b]] = 1.0
    U1 = ref_model.head_output(as_f64(one_hot), X, W_V, W_O)
    ch.close(
        "one-hot attention on argmax_s‖X_s W_V W_O‖: max_t ‖u_{b,t}‖ = β_b (reference)",
        np.sqrt(np.sum(U1 * U1, axis=2)).max(axis=1),
        beta,
    )
    return ch.outcome()


@step("G5.6", checks=("reference.invariants.pruning.readout_lipschitz",))
def step_g5_6() -> StepOutcome:
    """‖softmax(o) − e_y‖² ≤ 2(1 − p_y)² ≤ 2: cross-entropy is √2-Lipschitz in the logits."""
    ch = StepChecks()
    p2, p3 = sp.symbols("p_2 p_3", nonnegative=True)
    p1 = 1 - p2 - p3
    grad_sq = (1 - p1) ** 2 + p2**2 + p3**2  # ‖softmax(o) − e_1‖²
    ch.zero("2(1 − p_1)² − ‖p − e_1‖² = 2 p_2 p_3 ≥ 0", 2 * (1 - p1) ** 2 - grad_sq - 2 * p2 * p3)
    rng = step_rng("G5.6")
    d, c = 3, 4
    W_c = as_f64(rng.standard_normal((d, c)))
    L = rprune.readout_lipschitz(W_c)
    worst = 0.0
    for _ in range(20):
        z1, z2 = rng.standard_normal(d), rng.standard_normal(d)
        y = int(rng.integers(c))

        def ce(z: F64, y: int = y) -> float:
            o = z @ W_c
            m = float(o.max())
            return float(m + np.log(np.sum(np.exp(o - m))) - o[y])

        worst = max(worst, abs(ce(as_f64(z1)) - ce(as_f64(z2))) / float(np.linalg.norm(z1 - z2)))
    ch.at_most("|ΔCE| / ‖Δz̄‖ ≤ √2‖W_c‖_2 on random pairs (reference)", worst, L, scale=L)
    # Tight: W_c = σ u (e_0 − e_1)ᵀ/√2 and z̄ far along u put p ≈ e_0 with label 1, so the gradient
    # ∇_z̄ CE = W_c (p − e_1) has norm √2 σ = √2‖W_c‖_2 (up to e^{−42}, far below rounding).
    sigma, u = 1.7, np.array([0.6, 0.0, 0.8])
    W1 = as_f64(sigma * np.outer(u, np.array([1.0, -1.0, 0.0, 0.0]) / np.sqrt(2.0)))
    o = (60.0 / sigma) * u @ W1
    p = np.exp(o - o.max())
    p = p / p.sum()
    grad = W1 @ (p - np.array([0.0, 1.0, 0.0, 0.0]))
    ch.close(
        "attained: ‖∇_z̄ CE‖ = √2‖W_c‖_2 for p → e_0, y = 1 (reference)",
        rprune.readout_lipschitz(W1),
        float(np.linalg.norm(grad)),
    )
    return ch.outcome()


@step("G5.7", checks=("reference.ddcl.assignments", "reference.invariants.pruning.prototype_lipschitz"))
def step_g5_7() -> StepOutcome:
    """∂(P q(y))/∂y = (2/T_P) Cov_q(P) ⪯ (diam(P)²/(2T_P)) I (Popoviciu)."""
    ch = StepChecks()
    y, p1, p2 = sp.symbols("y p_1 p_2", real=True)
    T = sp.Symbol("T_P", positive=True)
    e1, e2 = sp.exp(-((y - p1) ** 2) / T), sp.exp(-((y - p2) ** 2) / T)
    q1, q2 = e1 / (e1 + e2), e2 / (e1 + e2)
    z = p1 * q1 + p2 * q2
    cov = q1 * p1**2 + q2 * p2**2 - z**2
    ch.zero("∂(P q)/∂y = (2/T_P) Cov_q(P)", sp.diff(z, y) - 2 / T * cov)
    q = sp.Symbol("q", real=True)
    ch.zero(
        "Popoviciu (K = 2): (p_1 − p_2)²/4 − q(1 − q)(p_1 − p_2)² = (p_1 − p_2)²(q − ½)²",
        (p1 - p2) ** 2 / 4 - q * (1 - q) * (p1 - p2) ** 2 - (p1 - p2) ** 2 * (q - sp.Rational(1, 2)) ** 2,
    )
    rng = step_rng("G5.7")
    d, K, T_n = 3, 4, 0.7
    P = as_f64(rng.standard_normal((d, K)))
    y0 = as_f64(rng.standard_normal((1, d)))

    def zmap(yv: F64) -> F64:
        return as_f64(yv + rd.assignments(yv, P, T_n) @ P.T)

    h = float(np.finfo(np.float64).eps) ** (1.0 / 3.0)
    J = np.column_stack([(zmap(as_f64(y0 + h * e)) - zmap(as_f64(y0 - h * e)))[0] / (2 * h) for e in np.eye(d)])
    qv = rd.assignments(y0, P, T_n)[0]
    pbar = P @ qv
    cov_n = (P - pbar[:, None]) @ np.diag(qv) @ (P - pbar[:, None]).T
    gtol = tolerance("float64", CheckKind.GRADIENT)
    err = max_abs(as_f64(J - (np.eye(d) + 2.0 / T_n * cov_n)))
    ch.numeric.append(
        (
            "∂z/∂y = I + (2/T_P)Cov_q(P) by central differences (reference)",
            err,
            gtol.atol + gtol.rtol * max_abs(as_f64(J)),
        )
    )
    ch.at_most(
        "‖∂z/∂y‖_2 ≤ L_Z (reference)",
        float(np.linalg.norm(J, 2)),
        rprune.prototype_lipschitz(P, T_n),
        scale=rprune.prototype_lipschitz(P, T_n),
    )
    # Tight: K = 2 and y at the midpoint give q = (½, ½) and ∂z/∂y = I + (2/T_P)·¼ΔΔᵀ, Δ = p_1 − p_2,
    # whose norm is exactly L_Z = 1 + ‖Δ‖²/(2T_P).
    P2 = as_f64(P[:, :2].copy())
    mid = as_f64(0.5 * (P2[:, 0] + P2[:, 1])[None, :])
    q_mid = rd.assignments(mid, P2, T_n)[0]
    c_mid = P2 - (P2 @ q_mid)[:, None]
    J_mid = np.eye(d) + 2.0 / T_n * (c_mid @ np.diag(q_mid) @ c_mid.T)
    ch.close(
        "attained at the midpoint (K = 2): ‖∂z/∂y‖_2 = L_Z (reference)",
        rprune.prototype_lipschitz(P2, T_n),
        float(np.linalg.norm(J_mid, 2)),
    )
    return ch.outcome()


# --------------------------------------------------------------------------------------------------
# G6 Tracker agreement
# --------------------------------------------------------------------------------------------------


def _A2() -> tuple[Sym, Sym]:
    V = _rotation2(_t)
    return V, V * sp.diag(_l1, _l2) * V.T


@step("G6.1", checks=("reference.incrt.operators.exact_extremes", "reference.incrt.trackers.oja_step"))
def step_g6_1() -> StepOutcome:
    """Oja: eigenvectors are fixed points, and the update is orthogonal to a unit w."""
    ch = StepChecks()
    V, A = _A2()
    v1 = V[:, 0]
    ch.zero("Oja fixed point: A v_1 − (v_1ᵀAv_1) v_1 = 0", A * v1 - (v1.T * A * v1)[0] * v1)
    s = sp.Symbol("s", real=True)
    w = _unit2(s)
    ch.zero("the Oja update is ⟂ w for unit w: wᵀ(Aw − ρw) = 0", (w.T * (A * w - (w.T * A * w)[0] * w))[0])
    rng = step_rng("G6.1")
    A_n = rops.planted_operator([2.0, 0.5, -1.0], rng=rng)
    ext = rops.exact_extremes(A_n)
    ch.close("oja_step(v₊) = ±v₊ (reference)", np.abs(rtrk.oja_step(A_n, ext.u_max, 0.3)), np.abs(ext.u_max))
    return ch.outcome()


@step("G6.2", checks=("reference.incrt.operators.exact_extremes", "reference.incrt.trackers.mca_exin_step"))
def step_g6_2() -> StepOutcome:
    """MCA-EXIN: the update is orthogonal to w, so ‖w⁺‖² = ‖w‖² + α²‖g‖²; the minor eigenvector is a fixed point."""
    ch = StepChecks()
    _, A = _A2()
    w = symbol_matrix("w", 2, 1)
    al = sp.Symbol("alpha", positive=True)
    nw = (w.T * w)[0]
    r = (w.T * A * w)[0] / nw
    g = A * w - r * w
    ch.zero("EXIN update ⟂ w: wᵀ(Aw − r w) = 0", (w.T * g)[0])
    w_new = w - al * g
    ch.zero("‖w⁺‖² = ‖w‖² + α²‖g‖² (norm never decreases)", (w_new.T * w_new)[0] - nw - al**2 * (g.T * g)[0])
    rng = step_rng("G6.2")
    A_n = rops.planted_operator([2.0, 0.5, -1.0], rng=rng)
    w_n = as_f64(rng.standard_normal(3))
    eta = 0.2
    w1 = rtrk.mca_exin_step(A_n, w_n, eta)
    g_n = A_n @ w_n - rtrk.rayleigh(A_n, w_n) * w_n
    a_n = eta / float(w_n @ w_n)
    ch.close("‖w⁺‖² (reference)", float(w1 @ w1), float(w_n @ w_n) + a_n**2 * float(g_n @ g_n))
    ext = rops.exact_extremes(A_n)
    ch.close("minor eigenvector is an EXIN fixed point (reference)", rtrk.mca_exin_step(A_n, ext.u_min, eta), ext.u_min)
    return ch.outcome()


@step(
    "G6.3",
    checks=(
        "reference.incrt.operators.eigenvalues_desc",
        "reference.incrt.trackers.contraction_factor",
        "reference.incrt.trackers.oja_step",
    ),
)
def step_g6_3() -> StepOutcome:
    """A step multiplies eigen-coordinates by 1 + α(λ_i − ρ); the ratio to the top one is 1 − α(λ_1 − λ_i)/(1 + α(λ_1 −
    ρ)).
    """
    ch = StepChecks()
    al, rho = sp.symbols("alpha rho", real=True)
    w = sp.Matrix(sp.symbols("c_1 c_2 c_3", real=True))
    Lam = sp.diag(_l1, _l2, _l3)
    ch.zero(
        "eigen-coordinates: w + α(Λw − ρw) = diag(1 + α(λ_i − ρ)) w",
        w + al * (Lam * w - rho * w) - sp.diag(*[1 + al * (x - rho) for x in (_l1, _l2, _l3)]) * w,
    )
    ratio = (1 + al * (_l2 - rho)) / (1 + al * (_l1 - rho))
    ch.zero("ratio = 1 − α(λ_1 − λ_2)/(1 + α(λ_1 − ρ))", ratio - (1 - al * (_l1 - _l2) / (1 + al * (_l1 - rho))))
    rng = step_rng("G6.3")
    A_n = rops.planted_operator([2.0, 0.5, -1.0], rng=rng)
    lam = rops.eigenvalues_desc(A_n)
    v = rops.exact_extremes(A_n).u_max
    eta = 0.5 * rtrk.oja_step_limit(A_n)
    q = rtrk.contraction_factor(lam, eta, rtrk.TrackerKind.OJA)
    w_n = as_f64(rng.standard_normal(3))
    worst = 0.0
    for _ in range(10):
        w_next = rtrk.oja_step(A_n, w_n, eta)
        worst = max(worst, float(np.tan(rtrk.angle(v, w_next)) / np.tan(rtrk.angle(v, w_n))))
        w_n = w_next
    ch.at_most("per-step tan∠ ratio ≤ q(η) (reference)", worst, q, scale=1.0)
    # The identity itself: one step scales the eigen-coordinates by 1 + η(λ_i − ρ) before renormalising.
    V = np.linalg.eigh(A_n)[1][:, ::-1]
    w0 = as_f64(rng.standard_normal(3))
    w0 = as_f64(w0 / np.linalg.norm(w0))
    rho = float(w0 @ A_n @ w0)
    c0, c1 = V.T @ w0, V.T @ rtrk.oja_step(A_n, w0, eta)
    factors = 1.0 + eta * (lam - rho)
    ch.close(
        "eigen-coordinate ratios after one step: c_i⁺/c_1⁺ = (c_i/c_1)·(1 + η(λ_i − ρ))/(1 + η(λ_1 − ρ)) (reference)",
        c1[1:] / c1[0],
        (c0[1:] / c0[0]) * factors[1:] / factors[0],
        scale=1.0,
    )
    # Closed form in d = 2 (Δ = g): q(α) = max(1 − αg/(1 + αg), αg − 1), evaluated independently.
    g2, a2 = 1.5, 0.4
    ch.close(
        "d = 2: q(α) = max(1/(1 + αg), αg − 1) (reference)",
        rtrk.contraction_factor(as_f64(np.array([1.0, 1.0 - g2])), a2, rtrk.TrackerKind.OJA),
        max(1.0 / (1.0 + a2 * g2), a2 * g2 - 1.0),
    )
    return ch.outcome()


@step("G6.4", checks=("reference.incrt.trackers.mca_exin_step", "reference.incrt.trackers.rayleigh"))
def step_g6_4() -> StepOutcome:
    """One EXIN step changes the Rayleigh quotient by −α‖g‖²(2 − α(ρ_g − r))/(1 + α²‖g‖²) < 0 when αΔ < 2."""
    ch = StepChecks()
    s = sp.Symbol("s", real=True)
    al = sp.Symbol("alpha", positive=True)
    A = sp.diag(_l1, _l2)
    w = _unit2(s)
    r = (w.T * A * w)[0]
    g = A * w - r * w
    gg = (g.T * g)[0]
    w_new = w - al * g
    r_new = (w_new.T * A * w_new)[0] / (w_new.T * w_new)[0]
    rho_g = (g.T * A * g)[0] / gg
    ch.zero(
        "r(w − αg) − r(w) = −α‖g‖²(2 − α(ρ_g − r))/(1 + α²‖g‖²)",
        r_new - r + al * gg * (2 - al * (rho_g - r)) / (1 + al**2 * gg),
    )
    rng = step_rng("G6.4")
    A_n = rops.planted_operator([2.0, 0.5, -1.0], rng=rng)
    w_n = as_f64(rng.standard_normal(3))
    w_n = as_f64(w_n / np.linalg.norm(w_n))
    eta = 0.3
    r0 = rtrk.rayleigh(A_n, w_n)
    g_n = as_f64(A_n @ w_n - r0 * w_n)
    gg_n = float(g_n @ g_n)
    rho_n = float(g_n @ A_n @ g_n) / gg_n
    predicted = -eta * gg_n * (2 - eta * (rho_n - r0)) / (1 + eta**2 * gg_n)
    ch.close(
        "Rayleigh decrease of one EXIN step (reference)",
        rtrk.rayleigh(A_n, rtrk.mca_exin_step(A_n, w_n, eta)) - r0,
        predicted,
        scale=2.0,
    )
    return ch.outcome()


STEPS: tuple[Step, ...] = collect_steps(globals())


__all__ = [
    "F64",
    "STEPS",
    "Sym",
    "step_g1_1",
    "step_g1_2",
    "step_g1_3",
    "step_g2_1",
    "step_g2_2",
    "step_g3_1",
    "step_g3_2",
    "step_g4_1",
    "step_g4_2",
    "step_g5_1",
    "step_g5_2",
    "step_g5_3",
    "step_g5_4",
    "step_g5_5",
    "step_g5_6",
    "step_g5_7",
    "step_g6_1",
    "step_g6_2",
    "step_g6_3",
    "step_g6_4",
]
