"""The fast path's distances, assignments and quantisation loss (``accelerated.step``: the centred
expanded form in float64, rounded once to the training dtype) against exact values (rational
distances, 40-digit exponentials), within the bounds the tolerance module derives for them
(``reference.tolerances.centred_distance_error`` / ``assignment_relative_error``; docs/tolerances.md,
"Distances"). The checker is shown to fire on a planted error just past the bound and on the naive
uncentred float32 form, which is what the bound is there to exclude."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import ddcl as ref
from reference.tolerances import (
    UNIT_ROUNDOFF,
    CheckKind,
    assignment_relative_error,
    centred_distance_error,
    gamma,
    tolerance,
)

torch = pytest.importorskip("torch")
from accelerated.step import distances_and_assignments, reported_terms  # noqa: E402

F32_TINY = float(np.finfo(np.float32).smallest_subnormal)  # a Q entry that underflows when rounded


def exact(Y: np.ndarray, P: np.ndarray, T_P: float) -> tuple[list[list[Fraction]], list[list[mpmath.mpf]], mpmath.mpf]:
    """``(D, Q, L_q)`` of the float inputs exactly (D rational) or to 40 digits (Q, L_q)."""
    n, d = Y.shape
    K = P.shape[1]
    D = [
        [sum((Fraction(float(Y[t, i])) - Fraction(float(P[i, j]))) ** 2 for i in range(d)) for j in range(K)]
        for t in range(n)
    ]
    with mpmath.workdps(40):
        T = mpmath.mpf(Fraction(T_P).numerator) / Fraction(T_P).denominator
        Q = []
        for row in D:
            m = min(row)
            w = [
                mpmath.exp(-(mpmath.mpf(x.numerator) / x.denominator - mpmath.mpf(m.numerator) / m.denominator) / T)
                for x in row
            ]
            s = mpmath.fsum(w)
            Q.append([wi / s for wi in w])
        L_q = (
            mpmath.fsum(
                q * mpmath.mpf(x.numerator) / x.denominator
                for qr, dr in zip(Q, D, strict=True)
                for q, x in zip(qr, dr, strict=True)
            )
            / n
        )
    return D, Q, L_q


def violations(
    Y: np.ndarray, P: np.ndarray, T_P: float, D_hat: np.ndarray, Q_hat: np.ndarray, L_hat: float
) -> list[str]:
    """Every entry of ``(D̂, Q̂, L̂_q)`` (float32) outside its derived bound around the exact values."""
    n, d = Y.shape
    K = P.shape[1]
    u = UNIT_ROUNDOFF["float32"]
    D, Q, L_q = exact(Y, P, T_P)
    out = []
    for t in range(n):
        max_D = float(max(D[t]))
        eps_D = centred_distance_error(d, max_D)
        rel_Q = assignment_relative_error(d, K, max_D, T_P, "float32")
        for j in range(K):
            if abs(float(D_hat[t, j]) - float(D[t][j])) > eps_D + u * float(D[t][j]):
                out.append(f"D[{t},{j}] = {D_hat[t, j]!r}, exact {float(D[t][j])!r}")
            if abs(mpmath.mpf(float(Q_hat[t, j])) - Q[t][j]) > rel_Q * Q[t][j] + F32_TINY:
                out.append(f"Q[{t},{j}] = {Q_hat[t, j]!r}, exact {float(Q[t][j])!r}")
    # L_q: each term's Q within rel_Q, each D within eps_D, the float64 sum (γ⁶⁴_{nK}), one rounding (u).
    worst_rel = max(assignment_relative_error(d, K, float(max(r)), T_P, "float32") for r in D)
    worst_abs = sum(centred_distance_error(d, float(max(r))) for r in D) / n
    bound = (worst_rel + gamma(n * K, "float64") + u) * float(L_q) * (1 + worst_rel) + worst_abs * (1 + worst_rel)
    if abs(L_hat - float(L_q)) > bound:
        out.append(f"L_q = {L_hat!r}, exact {float(L_q)!r} (bound {bound:.3g})")
    return out


def fast_path(Y: np.ndarray, P: np.ndarray, T_P: float) -> tuple[np.ndarray, np.ndarray, float]:
    D, Q, L_q = distances_and_assignments(torch.tensor(Y), torch.tensor(P), T_P)
    assert D.dtype == Q.dtype == L_q.dtype == torch.float32
    return D.numpy(), Q.numpy(), float(L_q)


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    """float32 tokens and prototypes around a common offset (up to 1e3: where the uncentred expanded
    form cancels), spread at scale 10^-2..10^1, temperatures 10^-2..10^2."""
    n, d, K = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    offset = draw(st.sampled_from([0.0, 1.0, 1e2, 1e3])) * rng.standard_normal(d)
    spread = 10.0 ** draw(st.integers(-2, 1))
    Y = (offset[None] + spread * rng.standard_normal((n, d))).astype(np.float32)
    P = (offset[:, None] + spread * rng.standard_normal((d, K))).astype(np.float32)
    return Y, P, float(10.0 ** draw(st.integers(-2, 2)))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_the_fast_paths_distances_assignments_and_loss_are_within_their_derived_bounds(
    problem: tuple[np.ndarray, np.ndarray, float],
) -> None:
    Y, P, T_P = problem
    assert violations(Y, P, T_P, *fast_path(Y, P, T_P)) == []


def test_the_bound_is_inside_the_float32_value_row_where_the_uncentred_float32_form_is_not() -> None:
    """At the size and scale of a mid-size run (d = 64, K = 32, O(1) coordinates, T_P = 1) the
    assignments' bound is far inside the float32 VALUE row; the float32 difference form's a-priori
    bound (γ³²_{d+2}·max D/T_P, doubled through the softmax) is not."""
    d, K, max_D, T_P = 64, 32, 256.0, 1.0
    row = tolerance("float32", CheckKind.VALUE).rtol
    ours = assignment_relative_error(d, K, max_D, T_P, "float32")
    assert ours < row / 100
    assert float(np.expm1(2 * gamma(d + 2, "float32") * max_D / T_P)) > row


def test_the_checker_fires_just_past_the_bound() -> None:
    """A planted error of 1.01× the bound on one assignment (and on one distance) is reported; the
    unperturbed values are not."""
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((3, 4)).astype(np.float32)
    P = rng.standard_normal((4, 3)).astype(np.float32)
    T_P = 0.5
    D_hat, Q_hat, L_hat = fast_path(Y, P, T_P)
    assert violations(Y, P, T_P, D_hat, Q_hat, L_hat) == []
    D, Q, _ = exact(Y, P, T_P)
    max_D = float(max(D[1]))
    planted_Q = Q_hat.astype(np.float64)
    rel = assignment_relative_error(4, 3, max_D, T_P, "float32")
    planted_Q[1, 2] = float(Q[1][2]) * (1 + 1.01 * rel) + 1.01 * F32_TINY
    assert [v for v in violations(Y, P, T_P, D_hat, planted_Q, L_hat) if v.startswith("Q[1,2]")]
    planted_D = D_hat.astype(np.float64)
    planted_D[1, 0] = float(D[1][0]) + 1.01 * (
        centred_distance_error(4, max_D) + UNIT_ROUNDOFF["float32"] * float(D[1][0])
    )
    assert [v for v in violations(Y, P, T_P, planted_D, Q_hat, L_hat) if v.startswith("D[1,0]")]


def test_the_naive_uncentred_float32_form_breaks_the_bound() -> None:
    """What the centring and the float64 exclude: ``‖y‖² + ‖p‖² − 2yᵀp`` in float32 for tokens near
    prototypes far from the origin (coordinates ~1e3, distances ~1e-2) loses every digit of ``D``."""
    rng = np.random.default_rng(0)
    base = (1e3 * rng.standard_normal(4)).astype(np.float32)
    Y = (base[None] + 0.1 * rng.standard_normal((3, 4))).astype(np.float32)
    P = (base[:, None] + 0.1 * rng.standard_normal((4, 3))).astype(np.float32)
    Yt, Pt = torch.tensor(Y), torch.tensor(P)
    D = (Yt * Yt).sum(1, keepdim=True) + (Pt * Pt).sum(0)[None] - 2.0 * (Yt @ Pt)
    Q = torch.softmax(-D / 0.01, dim=1)
    found = violations(Y, P, 0.01, D.numpy(), Q.numpy(), float((Q * D).sum() / 3))
    assert any(v.startswith("D[") for v in found)
    assert any(v.startswith("Q[") for v in found)
    assert violations(Y, P, 0.01, *fast_path(Y, P, 0.01)) == []


@settings(max_examples=40, deadline=None)
@given(problems())
def test_the_fast_paths_reported_terms_agree_with_the_reference_in_the_float32_row(
    problem: tuple[np.ndarray, np.ndarray, float],
) -> None:
    """``L_OLS``, ``V``, ``F``, ``H̄`` of float32 tokens (float64 without the n×d×K tensor, rounded once)
    against the float64 reference on the same rounded inputs, at the float32 VALUE row (relative to
    ``max(|reference|, 1)``, as every engine comparison)."""
    Y, P, T_P = problem
    Y64, P64 = Y.astype(np.float64), P.astype(np.float64)
    Q = ref.assignments(Y64, P64, T_P)
    expected = {
        "L_OLS": ref.ols_loss(Y64, P64, Q),
        "V": ref.prototype_variance(P64, Q),
        "F": ref.free_energy(Y64, P64, T_P),
        "H_bar": ref.mean_entropy(Q),
    }
    got = reported_terms(torch.tensor(Y), torch.tensor(P), torch.tensor(Q.astype(np.float32)), T_P)
    row = tolerance("float32", CheckKind.VALUE).rtol
    for name, value in expected.items():
        assert got[name].dtype == torch.float32
        assert abs(float(got[name]) - value) <= row * max(abs(value), 1.0), name


def test_the_growth_checks_assignments_use_the_centred_form_only_where_decisions_cannot_differ() -> None:
    """float64 probe tokens: below a tenth of the DECISION row the centred form (within its bound of the
    difference form); a probe whose largest distance puts the bound above it (planted: coordinates
    ~1e3) gets exactly the difference form's assignments."""
    from accelerated.step import probe_assignments, squared_distances

    rng = np.random.default_rng(1)
    d, K, T_P = 6, 4, 1.0
    Y = torch.tensor(rng.standard_normal((20, d)))
    P = torch.tensor(rng.standard_normal((d, K)))
    D_exact = squared_distances(Y, P)
    difference_form = torch.softmax(-D_exact / T_P, dim=1)
    bound = assignment_relative_error(d, K, float(D_exact.max()), T_P, "float64")
    assert bound <= tolerance("float64", CheckKind.DECISION).rtol / 10
    Q = probe_assignments(Y, P, T_P)
    assert torch.allclose(Q, difference_form, rtol=2 * bound, atol=0.0)
    far = Y * 1e3
    D_far = squared_distances(far, P)
    assert assignment_relative_error(d, K, float(D_far.max()), T_P, "float64") > 1e-10
    assert torch.equal(probe_assignments(far, P, T_P), torch.softmax(-D_far / T_P, dim=1))
