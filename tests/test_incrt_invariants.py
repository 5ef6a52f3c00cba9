"""INCRT claims G1–G6 on static operators: properties, planted violations that must fire, falsifiers."""

from __future__ import annotations

import dataclasses
from typing import Any

import mpmath
import numpy as np
import pytest
from _incrt_cases import A5, THETA5, _assert_hold, _fires
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddcl_incrt.strategies._caps import MAX_BATCH, MAX_HEADS, MAX_SEQ, MAX_WIDTH
from ddcl_incrt.strategies.incrt import (
    GRID,
    PlantedOperator,
    PruneProblem,
    antisymmetric_matrices,
    orthonormal_sets,
    planted_operators,
    prune_problems,
    second_moments,
)
from proofs_check import incrt_steps
from reference import ddcl
from reference import model as ref_model
from reference.claims.incrt import INCRT_CLAIMS
from reference.falsify import incrt as fz
from reference.incrt import capture as rcap
from reference.incrt import controller as rctl
from reference.incrt import operators as rops
from reference.incrt import trackers as rtrk
from reference.invariants import incrt as inv
from reference.invariants import pruning as rprune
from reference.invariants.result import ClaimViolation, InvariantResult
from reference.tolerances import CheckKind, accumulation_bound, tolerance


@given(op=planted_operators())
def test_planted_operators_are_valid(op: PlantedOperator) -> None:
    assert op.A.dtype == np.float64
    assert op.A.shape == (op.d, op.d)
    assert op.d <= MAX_WIDTH
    assert np.array_equal(op.A, op.A.T)
    assert np.max(np.abs(op.V.T @ op.V - np.eye(op.d))) <= inv.orthonormality_bound(op.d, op.d)
    assert np.all(np.diff(op.eigenvalues) <= 0.0)
    # forming V diag(λ) Vᵀ rounds each entry by γ_{d+2}·Σ|v||λ||v| ≤ γ_{d+2}·d·max|λ|; eigh adds E(A)
    formed = accumulation_bound(op.d + 2, op.d * 2.0 * op.scale) * op.d
    assert np.max(np.abs(rops.eigenvalues_desc(op.A) - op.eigenvalues)) <= rops.eigh_error_bound(op.A) + formed
    assert op.theta > 0.0
    gap_to_theta = np.min(np.abs(op.eigenvalues - op.theta))
    # half a grid step: no planted near-tie. λ = fl(level·scale)/GRID and θ = fl((k + ½)·scale)/GRID (GRID is
    # a power of 2, so the division is exact) round once each, and their difference once more.
    rounding = accumulation_bound(3, 2.0 * (float(np.max(np.abs(op.eigenvalues))) + op.theta))
    assert gap_to_theta >= 0.5 * op.scale / GRID - rounding
    assert rops.count_above(op.A, op.theta) == op.m_star


@given(op=planted_operators(simple=True, min_m_star=2))
def test_planted_simple_operators_have_gaps(op: PlantedOperator) -> None:
    assert op.m_star >= 2
    assert np.all(np.diff(op.eigenvalues) < 0.0)
    assert op.simple_above_theta


@given(d=st.integers(1, MAX_WIDTH), data=st.data())
def test_matrix_strategies_are_valid(d: int, data: st.DataObject) -> None:
    M = data.draw(antisymmetric_matrices(d))
    assert np.array_equal(M, -M.T)
    C = data.draw(second_moments(d))
    assert np.array_equal(C, C.T)
    assert np.min(np.linalg.eigvalsh(C)) >= -rops.eigh_error_bound(C)
    m = data.draw(st.integers(0, d))
    Q = data.draw(orthonormal_sets(d, m))
    assert Q.shape == (d, m)
    assert np.max(np.abs(Q.T @ Q - np.eye(m)), initial=0.0) <= inv.orthonormality_bound(d, m)


@given(p=prune_problems())
def test_prune_problems_satisfy_g5_structural_hypotheses(p: PruneProblem) -> None:
    claim = next(c for c in INCRT_CLAIMS if c.id == "G5")
    holds = claim.hypotheses_hold(C=p.C, head_operators=p.head_operators, h=p.h, Q_cap=p.Q_cap, theta=p.theta)
    assert holds["second_moment_symmetric"]
    assert holds["heads_antisymmetric"]
    assert holds["captured_orthonormal"]
    assert len(p.head_operators) <= MAX_HEADS


def test_commutator_form_equals_half_commutator_and_residual_annihilates_q_cap() -> None:
    rng = np.random.default_rng(0)
    C = rops.second_moment(rng.standard_normal((20, 4)))
    M_a = rops.directional_operator([rng.standard_normal((4, 4)) for _ in range(2)])
    S = rops.commutator_form(C, M_a)
    scale = np.linalg.norm(C) * np.linalg.norm(M_a)
    tol = tolerance("float64", CheckKind.VALUE)
    assert np.max(np.abs(S - 0.5 * (C @ M_a - M_a @ C))) <= tol.atol + tol.rtol * scale
    assert abs(np.trace(S)) <= tol.atol + tol.rtol * scale
    Q = np.linalg.qr(rng.standard_normal((4, 2)))[0]
    A_res = rops.residual_operator(C, M_a, Q)
    assert np.array_equal(A_res, A_res.T)
    assert np.max(np.abs(A_res @ Q)) <= tol.atol + tol.rtol * scale


@pytest.mark.claim("G1", "property")
@given(op=planted_operators())
def test_g1_property(op: PlantedOperator) -> None:
    cap = rcap.greedy_capture(op.A, op.theta)
    _assert_hold(inv.check_g1(Q_cap=cap.Q_cap, ranks=cap.ranks, theta=op.theta))


@pytest.mark.claim("G2", "property")
@given(op=planted_operators())
def test_g2_property(op: PlantedOperator) -> None:
    _assert_hold(inv.check_g2(A=op.A, theta=op.theta, capture=rcap.greedy_capture(op.A, op.theta)))


@pytest.mark.claim("G3", "property")
@given(op=planted_operators(), seed=st.integers(0, 2**32 - 1))
def test_g3_property(op: PlantedOperator, seed: int) -> None:
    cap = rcap.greedy_capture(op.A, op.theta)
    assert cap.m == op.m_star
    results = inv.check_g3(A=op.A, theta=op.theta, capture=cap, rng=np.random.default_rng(seed), n_random=8)
    _assert_hold(results)


@pytest.mark.claim("G4", "property")
@settings(max_examples=15)
@given(op=planted_operators(simple=True, min_m_star=1), seeds=st.tuples(st.integers(0, 999), st.integers(0, 999)))
def test_g4_property(op: PlantedOperator, seeds: tuple[int, int]) -> None:
    runs = [rcap.greedy_capture(op.A, op.theta)] + [
        rcap.greedy_capture_tracked(op.A, op.theta, rng=np.random.default_rng(s), n_steps=1500) for s in seeds
    ]
    results = inv.check_g4(A=op.A, theta=op.theta, captures=runs)
    _assert_hold(results)
    _assert_hold(inv.check_g2(A=op.A, theta=op.theta, capture=runs[1]))
    # The direction checks are not vacuous on the exact runs: their certified sine is below 1.
    assert all(s < 1.0 for s in inv.direction_sin_bounds(op.A, runs[0]))


@pytest.mark.claim("G4", "property")
@settings(max_examples=10)
@given(op=planted_operators(min_m_star=1), seeds=st.tuples(st.integers(0, 999), st.integers(0, 999)))
def test_g4_count_and_births_are_spectral_invariants_even_with_repeats(
    op: PlantedOperator, seeds: tuple[int, int]
) -> None:
    runs = [rcap.greedy_capture_tracked(op.A, op.theta, rng=np.random.default_rng(s), n_steps=1500) for s in seeds]
    assert [r.m for r in runs] == [op.m_star, op.m_star]
    _assert_hold(tuple(r for r in inv.check_g4(A=op.A, theta=op.theta, captures=runs) if "direction" not in r.check))


@st.composite
def _operator_sequences(draw: st.DrawFn) -> tuple[int, list[tuple[np.ndarray, list[np.ndarray]]], float]:
    d = draw(st.integers(1, MAX_WIDTH))
    seq = []
    for _ in range(draw(st.integers(1, 8))):
        C = draw(second_moments(d))
        heads = [draw(antisymmetric_matrices(d)) for _ in range(draw(st.integers(1, MAX_HEADS)))]
        seq.append((C, heads))
    return d, seq, float(10.0 ** draw(st.integers(-4, -1)))


@pytest.mark.claim("G1", "property")
@given(problem=_operator_sequences())
def test_g1_controller_any_operator_sequence(
    problem: tuple[int, list[tuple[np.ndarray, list[np.ndarray]]], float],
) -> None:
    d, seq, theta = problem
    cfg = rctl.GrowthConfig(theta=theta, phi_g=0.01 * theta, T_d=0, T_prune=1, eps_K=0.0)
    state = rctl.initial_state(d, K_max=2)
    ranks = [rcap.numerical_rank(state.Q_cap)]  # measured, not the column count (which cannot fail G1)
    for step, (C, heads) in enumerate(seq):
        A_res = rops.residual_operator(C, rops.directional_operator(heads), state.Q_cap)
        state, events = rctl.grow_check(state, cfg, A_res, step, new_head_id=1 + max(state.head_ids))
        births = [e for e in events if e.kind is rctl.EventKind.BIRTH]
        assert len(births) <= 1
        if births:
            ranks.append(rcap.numerical_rank(state.Q_cap))
            u = births[0].u_plus
            assert u is not None
            assert births[0].lam_birth is not None
            assert births[0].margin > 0.0
    _assert_hold(inv.check_g1(Q_cap=state.Q_cap, ranks=ranks, theta=theta))
    assert len(state.heads) == 1 + state.m


@pytest.mark.claim("G5", "property")
@given(p=prune_problems())
def test_g5_property(p: PruneProblem) -> None:
    _assert_hold(rprune.check_g5(C=p.C, head_operators=p.head_operators, h=p.h, Q_cap=p.Q_cap, theta=p.theta))


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def _task_loss(Y: np.ndarray, P: np.ndarray, T_P: float, W_c: np.ndarray, b_c: np.ndarray, y: np.ndarray) -> float:
    """Mean-pool + linear + cross-entropy readout after the DDCL block ``Z = Y + Q Pᵀ`` (SPEC §1)."""
    B, T, d = Y.shape
    Yf = Y.reshape(B * T, d)
    Z = (Yf + ddcl.assignments(Yf, P, T_P) @ P.T).reshape(B, T, d)
    logits = Z.mean(axis=1) @ W_c + b_c
    m = logits.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(lse - logits[np.arange(B), y]))


@st.composite
def _output_problems(draw: st.DrawFn) -> dict[str, Any]:
    B, T, d = draw(st.integers(1, MAX_BATCH)), draw(st.integers(1, MAX_SEQ)), draw(st.integers(1, MAX_WIDTH))
    dv, K, c = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(2, 4))
    el = st.floats(-2.0, 2.0, allow_nan=False)

    def arr(*shape: int) -> np.ndarray:
        out: np.ndarray = draw(hnp.arrays(np.float64, shape, elements=el))
        return out

    return {
        "X": arr(B, T, d),
        "logits": [arr(B, T, T) * 3 for _ in range(2)],
        "W_V": [arr(d, dv) for _ in range(2)],
        "W_O": [arr(dv, d) for _ in range(2)],
        "P": arr(d, K),
        "T_P": float(10.0 ** draw(st.floats(-1.0, 1.0))),
        "W_c": arr(d, c),
        "b_c": arr(c),
        "y": draw(hnp.arrays(np.int64, (B,), elements=st.integers(0, c - 1))),
    }


@pytest.mark.claim("G5", "property")
@given(pb=_output_problems())
def test_g5_output_bounds(pb: dict[str, Any]) -> None:
    X = pb["X"]
    A = [_softmax_rows(L) for L in pb["logits"]]
    U = [ref_model.head_output(A[h], X, pb["W_V"][h], pb["W_O"][h]) for h in range(2)]
    Y_before, Y_after = X + U[0] + U[1], X + U[0]
    before = _task_loss(Y_before, pb["P"], pb["T_P"], pb["W_c"], pb["b_c"], pb["y"])
    after = _task_loss(Y_after, pb["P"], pb["T_P"], pb["W_c"], pb["b_c"], pb["y"])
    out = rprune.PruneOutput(
        A_h=A[1],
        X=X,
        W_V=pb["W_V"][1],
        W_O=pb["W_O"][1],
        U_h=U[1],
        dY=Y_before - Y_after,
        P=pb["P"],
        T_P=pb["T_P"],
        W_c=pb["W_c"],
        loss_before=before,
        loss_after=after,
    )
    d = X.shape[2]
    C = rops.second_moment(X.reshape(-1, d))
    heads = [rops.antisymmetric_part(W @ W.T[::-1]) for W in pb["W_V"]]  # any antisymmetric pair will do here
    _assert_hold(rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=np.zeros((d, 0)), theta=1.0, output=out))


@pytest.mark.claim("G5", "property")
def test_g5_loss_bound_is_attained_up_to_a_small_factor_on_a_one_dimensional_case() -> None:
    """Sanity of the certified bound: not vacuous. A case built to be nearly tight, with closed forms:
    B = 1, T = 2, d = 1, uniform attention, one prototype (``Z = Y``, ``L_Z = 1``), ``W_c = (1, −1)``, label 1.
    ``z̄`` goes from 1 to 2, logits ``(a, −a)``, ``CE(a) = log(1 + e^{2a})``, so
    ``ΔL = log(1 + e⁴) − log(1 + e²) ≈ 1.8912``; the bound is ``√2·‖W_c‖_2·L_Z·mean‖Δy‖ = √2·√2·1·1 = 2``
    (ratio 1.058: ``|CE'(a)| = 2σ(2a) → 2``)."""
    X = np.array([[[1.0], [1.0]]])  # B = 1, T = 2, d = 1
    A_h = np.full((1, 2, 2), 0.5)
    W_V, W_O = np.array([[1.0]]), np.array([[1.0]])
    P, T_P = np.array([[0.0]]), 1.0  # one prototype: Z = Y + p = Y, L_Z = 1
    W_c, b_c, y = np.array([[1.0, -1.0]]), np.zeros(2), np.array([1])
    U = ref_model.head_output(A_h, X, W_V, W_O)
    dL = abs(_task_loss(X + U, P, T_P, W_c, b_c, y) - _task_loss(X, P, T_P, W_c, b_c, y))
    bound = rprune.task_loss_change_bound(U, P, T_P, W_c)
    exact_dL = float(np.log1p(np.exp(4.0)) - np.log1p(np.exp(2.0)))
    # the two losses are O(4) quantities after ~10 roundings each; the bound is √2·(√2 from a 2-norm)
    assert abs(dL - exact_dL) <= accumulation_bound(20, 2.0 * 4.0 + exact_dL)
    assert abs(bound - 2.0) <= accumulation_bound(8, 2.0)
    assert dL <= bound


@pytest.mark.claim("G6", "property")
@settings(max_examples=25)
@given(
    op=planted_operators(min_d=2, simple=True),
    frac=st.floats(0.05, 0.95),
    seed=st.integers(0, 999),
    steps=st.integers(0, 400),
)
def test_g6_property(op: PlantedOperator, frac: float, seed: int, steps: int) -> None:
    w0 = np.random.default_rng(seed).standard_normal(op.d)
    oja = rtrk.oja_track(op.A, w0, frac * rtrk.oja_step_limit(op.A), steps)
    exin = rtrk.mca_exin_track(op.A, w0, frac * rtrk.mca_exin_step_limit(op.A, w0), steps)
    lam = rops.eigenvalues_desc(op.A)
    for tr in (oja, exin):
        claim = next(c for c in INCRT_CLAIMS if c.id == "G6")
        assert all(claim.hypotheses_hold(A=op.A, tracker=tr).values())
        results = inv.check_g6(A=op.A, tracker=tr)
        _assert_hold(results)
        # the direction check is certified exactly when its bound is informative (below π/2: it could fail)
        tau = rtrk.tracker_tan_bound(op.A, tr)
        gap = float(lam[0] - lam[1]) if tr.kind is rtrk.TrackerKind.OJA else float(lam[-2] - lam[-1])
        informative = np.isfinite(tau) and (
            np.arctan(tau) + np.arcsin(rtrk.eigenvector_sin_bound(gap, rops.eigh_error_bound(op.A))) < np.pi / 2
        )
        direction = [r for r in results if r.check.startswith("direction")]
        if np.isfinite(tau):
            assert len(direction) == 1, (tau, direction)
            assert direction[0].certified == informative, (tau, direction)


@pytest.mark.claim("G6", "property")
def test_g6_certifies_nothing_outside_its_hypotheses() -> None:
    """No certified gap, or a step too large: no bound could fail, so both checks carry an infinite bound
    (uncertified, what the tracker reached; never a "holds" that a training summary would count as a pass)."""

    def unbounded(results: tuple[InvariantResult, ...]) -> None:
        assert [r.check.split(":")[0] for r in results] == ["direction", "eigenvalue"]
        assert all(r.holds and not r.certified and r.bound == np.inf for r in results), results
        assert all("nothing promised" in r.details for r in results)

    w0 = np.random.default_rng(0).standard_normal(4)
    repeated = rops.planted_operator([2.0, 2.0, 0.5, -1.0], rng=np.random.default_rng(5))  # top eigenvalue repeated
    tr = rtrk.oja_track(repeated, w0, rtrk.certified_step(repeated), 200)
    assert not rtrk.tracked_gap_certified(repeated, tr.kind)
    unbounded(inv.check_g6(A=repeated, tracker=tr))
    unbounded(inv.check_g6(A=repeated, tracker=tr, raise_on_violation=True))
    # the G6 falsifier's run (ηΔ = 3): outside the step-size hypothesis
    ce = fz.falsify_g6_step_too_large()
    assert not rtrk.step_size_certified(ce.inputs["A"], ce.inputs["tracker"].alphas)
    unbounded(inv.check_g6(A=ce.inputs["A"], tracker=ce.inputs["tracker"]))
    # A = 0 (every direction captured): no gap
    zero_tr = rtrk.oja_track(np.zeros((4, 4)), w0, 1.0, 5)
    unbounded(inv.check_g6(A=np.zeros((4, 4)), tracker=zero_tr))
    # the same run on a gapped operator is checked (both sub-checks present, and bounded)
    gapped = rtrk.oja_track(A5, np.random.default_rng(0).standard_normal(5), rtrk.certified_step(A5), 200)
    checked = inv.check_g6(A=A5, tracker=gapped)
    assert [r.check.split(":")[0] for r in checked] == ["direction", "eigenvalue"]
    assert all(np.isfinite(r.bound) for r in checked)


@pytest.mark.claim("G6", "planted")
def test_eigenvector_sin_bound_needs_a_gap_of_more_than_three_e() -> None:
    E = rops.eigh_error_bound(A5)
    assert rtrk.eigenvector_sin_bound(3.0 * E, E) == 1.0  # no certificate at ĝ ≤ 3E
    assert rtrk.eigenvector_sin_bound(0.0, E) == 1.0
    assert rtrk.eigenvector_sin_bound(float("inf"), E) == 0.0  # d = 1
    assert rtrk.eigenvector_sin_bound(1.0, E) == E / (1.0 - 2.0 * E)
    # Valid where the exact eigenvector is known: small planted gaps, the exact top eigenvector of the very
    # float64 matrix computed with mpmath (installed with sympy, which requires it) at 60 digits, against
    # eigh's v̂.
    for delta in (1e-6, 1e-10, 30.0 * E):
        small = rops.planted_operator([1.0, 1.0 - delta, 0.0, -1.0], rng=np.random.default_rng(2))
        lam = rops.eigenvalues_desc(small)
        s = rtrk.eigenvector_sin_bound(float(lam[0] - lam[1]), rops.eigh_error_bound(small))
        assert s < 1.0
        with mpmath.workdps(60):
            ev, Vmp = mpmath.eigsy(mpmath.matrix(small.tolist()))
        top = int(np.argmax([float(x) for x in ev]))
        v_exact = np.array([float(Vmp[i, top]) for i in range(4)])
        assert np.sin(rtrk.angle(v_exact, rops.exact_extremes(small).u_max)) <= s, delta


@pytest.mark.claim("G6", "property")
def test_g6_trackers_converge_to_the_exact_oracle() -> None:
    """After n steps at the certified step the trackers sit where the derived contraction puts them.

    Expectations come from reference.incrt, not from picked numbers: the exact-arithmetic bound after n
    steps is ``Π_k q(α_k) · tan∠_0`` (:func:`contraction_factor`), the certified one (with rounding and
    eigh's error) is ``τ = tracker_tan_bound``; the measured angle to eigh's eigenvector must be within
    ``atan τ + asin(E/(ĝ − 2E))`` and the eigenvalue within ``(Δ + 3E) sin²(atan τ) + E + γ_{2d+4}‖A‖_F``.
    """
    w0 = np.random.default_rng(0).standard_normal(5)
    lam = rops.eigenvalues_desc(A5)
    ext = rops.exact_extremes(A5)
    E = rops.eigh_error_bound(A5)
    spread = float(lam[0] - lam[-1])
    n = 600
    for tr in (
        rtrk.oja_track(A5, w0, rtrk.certified_step(A5), n),
        rtrk.mca_exin_track(A5, w0, rtrk.certified_step(A5, float(w0 @ w0)), n),
    ):
        top = tr.kind is rtrk.TrackerKind.OJA
        v = ext.u_max if top else ext.u_min
        gap = float(lam[0] - lam[1]) if top else float(lam[-2] - lam[-1])
        T0 = float(np.tan(rtrk.angle(v, w0)))
        qs = [rtrk.contraction_factor(lam, float(a), tr.kind) for a in tr.alphas]
        assert max(qs) < 1.0, (tr.kind, max(qs))  # the certified step satisfies the step-size condition
        exact_part = float(np.prod(qs)) * T0
        tau = rtrk.tracker_tan_bound(A5, tr)
        assert exact_part <= tau < T0, (tr.kind, exact_part, tau, T0)  # contracted, and covers the exact part
        direction = np.arctan(tau) + np.arcsin(rtrk.eigenvector_sin_bound(gap, E))
        assert rtrk.angle(v, tr.w) <= direction, (tr.kind, rtrk.angle(v, tr.w), direction)
        lam_gap, _ = rtrk.tracker_gap(A5, tr)
        eig = (
            (spread + rtrk.spectral_error(A5)) * np.sin(np.arctan(tau)) ** 2
            + E
            + accumulation_bound(2 * 5 + 4, rops.frobenius(A5))
        )
        assert lam_gap <= eig, (tr.kind, lam_gap, eig)
        assert direction < np.pi / 2  # the certificate is informative: these checks could fail


CAP5 = rcap.greedy_capture(A5, THETA5)


def _with(cap: rcap.CaptureResult, **changes: Any) -> rcap.CaptureResult:
    return dataclasses.replace(cap, **changes)


@pytest.mark.claim("G1", "planted")
def test_g1_fires_on_planted_violation() -> None:
    Q = CAP5.Q_cap.copy()
    Q[0, 1] += 1e-9
    _fires(inv.check_g1(Q_cap=Q, ranks=CAP5.ranks, theta=THETA5), "G1", "orthonormal")
    _fires(inv.check_g1(Q_cap=CAP5.Q_cap, ranks=(0, 1, 3), theta=THETA5), "G1", "rank +1")
    _fires(inv.check_g1(Q_cap=CAP5.Q_cap, ranks=tuple(range(7)), theta=THETA5), "G1", "≤ d")
    with pytest.raises(ClaimViolation, match=r"claim G1 violated"):
        inv.check_g1(Q_cap=Q, ranks=CAP5.ranks, theta=THETA5, raise_on_violation=True)


@pytest.mark.claim("G2", "planted")
def test_g2_fires_on_planted_violation() -> None:
    swapped = _with(
        CAP5, Q_cap=CAP5.Q_cap[:, [1, 0, 2]], lam_births=(CAP5.lam_births[1], CAP5.lam_births[0], CAP5.lam_births[2])
    )
    _fires(inv.check_g2(A=A5, theta=THETA5, capture=swapped), "G2", "non-increasing")
    off = _with(CAP5, lam_births=(CAP5.lam_births[0] + 1e-9, *CAP5.lam_births[1:]))
    _fires(inv.check_g2(A=A5, theta=THETA5, capture=off), "G2", "at λ_1")
    Q = CAP5.Q_cap.copy()
    Q[:, 1] = np.cos(1e-6) * Q[:, 1] + np.sin(1e-6) * Q[:, 2]
    _fires(inv.check_g2(A=A5, theta=THETA5, capture=_with(CAP5, Q_cap=Q)), "G2", "eigenvector")


@pytest.mark.claim("G3", "planted")
def test_g3_fires_on_planted_violation() -> None:
    _, V = np.linalg.eigh(A5)
    v4 = V[:, 1]  # the 4th largest eigenvector: one direction more than m* = 3
    extra = _with(
        CAP5,
        Q_cap=np.column_stack([CAP5.Q_cap, v4]),
        lam_births=(*CAP5.lam_births, -0.5),
        ranks=(0, 1, 2, 3, 4),
        method_errors=(*CAP5.method_errors, CAP5.method_errors[-1]),
    )
    _fires(inv.check_g3(A=A5, theta=THETA5, capture=extra), "G3", "count")
    short = rcap.greedy_capture(A5, 1.5)  # one fewer: not sufficient at θ = 0.7
    _fires(inv.check_g3(A=A5, theta=THETA5, capture=short), "G3", "sufficient")


@pytest.mark.claim("G3", "planted")
def test_g3_brute_force_checks_fire_on_planted_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search side of G3: a "minimum" below λ_{m+1} (impossible by interlacing) and one below θ
    with m < m* directions (impossible by minimality) must both be reported."""
    lam = rops.eigenvalues_desc(A5)
    right = inv.brute_force_min_residual
    _assert_hold(inv.check_g3(A=A5, theta=THETA5, capture=CAP5, rng=np.random.default_rng(0), n_random=4))

    def below_interlacing(A: Any, m: int, *, rng: Any, n_random: int = 64) -> Any:
        _, Q = right(A, m, rng=rng, n_random=n_random)
        return float(lam[m]) - 1e-6, Q  # still above θ: only interlacing is violated

    monkeypatch.setattr(inv, "brute_force_min_residual", below_interlacing)
    results = inv.check_g3(A=A5, theta=THETA5, capture=CAP5, rng=np.random.default_rng(0), n_random=4)
    _fires(results, "G3", "interlacing")
    assert all(r.holds for r in results if "never suffice" in r.check)

    def sufficient_with_fewer(A: Any, m: int, *, rng: Any, n_random: int = 64) -> Any:
        return 0.5 * THETA5, right(A, m, rng=rng, n_random=n_random)[1]

    monkeypatch.setattr(inv, "brute_force_min_residual", sufficient_with_fewer)
    _fires(
        inv.check_g3(A=A5, theta=THETA5, capture=CAP5, rng=np.random.default_rng(0), n_random=4), "G3", "never suffice"
    )


@pytest.mark.claim("G4", "planted")
def test_g4_fires_on_planted_violation() -> None:
    Q = CAP5.Q_cap.copy()
    Q[:, 0] = np.cos(1e-4) * Q[:, 0] + np.sin(1e-4) * Q[:, 1]
    rotated = _with(CAP5, Q_cap=Q)
    _fires(inv.check_g4(A=A5, theta=THETA5, captures=[CAP5, rotated]), "G4", "direction 1")
    shifted = _with(CAP5, lam_births=(CAP5.lam_births[0], CAP5.lam_births[1] + 1e-8, CAP5.lam_births[2]))
    _fires(inv.check_g4(A=A5, theta=THETA5, captures=[CAP5, shifted]), "G4", "birth 2")
    _fires(inv.check_g4(A=A5, theta=THETA5, captures=[CAP5, rcap.greedy_capture(A5, 1.5)]), "G4", "count")


@pytest.mark.claim("G5", "planted")
def test_g5_fires_on_planted_violation() -> None:
    rng = np.random.default_rng(4)
    C = rops.second_moment(rng.standard_normal((10, 4)))
    heads = [rops.antisymmetric_part(rng.standard_normal((4, 4))) for _ in range(3)]
    Q = np.linalg.qr(rng.standard_normal((4, 1)))[0]
    right = rops.residual_operator(C, heads[0] + heads[2], Q)
    wrong_sign = rops.residual_operator(C, heads[0] + heads[2] + 2 * heads[1], Q)  # added instead of removed
    _fires(
        rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=Q, theta=10.0, A_res_after=wrong_sign), "G5", "removal"
    )
    tiny = right + 1e-9 * np.eye(4)
    _fires(rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=Q, theta=10.0, A_res_after=tiny), "G5", "removal")
    # output: a head term 0.01% too large, and a loss change beyond the certified bound
    X = rng.standard_normal((2, 3, 4))
    A_h = _softmax_rows(rng.standard_normal((2, 3, 3)))
    W_V, W_O = rng.standard_normal((4, 2)), rng.standard_normal((2, 4))
    P, W_c = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    U = ref_model.head_output(A_h, X, W_V, W_O)
    bound = rprune.task_loss_change_bound(U, P, 1.0, W_c)

    def out(U_h: np.ndarray, dL: float) -> rprune.PruneOutput:
        return rprune.PruneOutput(
            A_h=A_h, X=X, W_V=W_V, W_O=W_O, U_h=U_h, dY=U, P=P, T_P=1.0, W_c=W_c, loss_before=1.0, loss_after=1.0 + dL
        )

    base: dict[str, Any] = {"C": C, "head_operators": heads, "h": 1, "Q_cap": Q, "theta": 10.0}
    _fires(rprune.check_g5(**base, output=out(U * 1.0001, 0.0)), "G5", "equals A_h X")
    _fires(rprune.check_g5(**base, output=out(U, 1.01 * bound)), "G5", "ΔL_task")
    _assert_hold(rprune.check_g5(**base, output=out(U, 0.99 * bound)))


def _g5_case() -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(4)
    C = rops.second_moment(rng.standard_normal((10, 4)))
    heads = [rops.antisymmetric_part(rng.standard_normal((4, 4))) for _ in range(3)]
    Q = np.linalg.qr(rng.standard_normal((4, 1)))[0]
    return C, heads, Q


@pytest.mark.claim("G5", "planted")
def test_g5_norm_bound_fires_on_planted_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """‖Π⊥½[C, M_a^h]Π⊥‖_2 ≤ G_h: a G_h 1% below the true spectral norm must be reported."""
    C, heads, Q = _g5_case()
    true_norm = float(np.linalg.norm(rops.residual_operator(C, heads[1], Q), 2))
    monkeypatch.setattr(rprune, "head_strength", lambda C_, M_: 0.99 * true_norm)
    _fires(rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=Q, theta=10.0), "G5", "≤ G_h = ‖C M_a^h‖_F")


@pytest.mark.claim("G5", "planted")
def test_g5_weyl_and_hysteresis_fire_on_planted_violation() -> None:
    C, heads, Q = _g5_case()
    before = rops.residual_operator(C, heads[0] + heads[1] + heads[2], Q)
    after = rops.residual_operator(C, heads[0] + heads[2], Q)
    G = rops.head_strength(C, heads[1])
    lam_b = rops.exact_extremes(before).lam_max
    # λ_max(after) lifted by 3G_h: it moved by ≥ 2G_h > G_h (Weyl violated)
    lifted = after + 3.0 * G * np.eye(4)
    _fires(rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=Q, theta=10.0, A_res_after=lifted), "G5", "Weyl")
    # θ with λ_max + G_h ≤ θ (hysteresis holds), and an "after" whose λ_max exceeds θ: growth would re-trigger
    theta = lam_b + 2.0 * G
    correct = rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=Q, theta=theta)
    assert any(r.check.startswith("hysteresis") for r in correct)
    _assert_hold(correct)
    over = after + 4.0 * G * np.eye(4)  # λ_max(over) ≥ λ_b − G + 4G > θ
    _fires(rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=Q, theta=theta, A_res_after=over), "G5", "hysteresis")


@pytest.mark.claim("G6", "planted")
def test_g6_fires_on_planted_violation() -> None:
    w0 = np.random.default_rng(0).standard_normal(5)
    good = rtrk.oja_track(A5, w0, rtrk.certified_step(A5), 600)
    second = rops.eigenvalues_desc(A5)[1]
    _, V = np.linalg.eigh(A5)
    stuck = rtrk.TrackerResult(good.kind, good.w0, V[:, -2].copy(), good.eta, good.alphas, float(second))
    _fires(inv.check_g6(A=A5, tracker=stuck), "G6", "direction")
    _fires(inv.check_g6(A=A5, tracker=stuck), "G6", "eigenvalue")


def test_theta_zero_fails_in_floating_point() -> None:
    spurious, runaway = fz.theta_zero_float_failures(n_trials=40)
    assert spurious > 0
    assert runaway > 0


def test_incrt_step_fails_on_a_planted_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rops, "commutator_form", lambda C, M: 0.5 * (C @ M + M @ C))  # anticommutator
    (step,) = [s for s in incrt_steps.STEPS if s.id == "G5.1"]
    assert not step.run().proved


# --------------------------------------------------------------------------------------------------
# Planted errors just past the correct bound, and inputs that exercise every branch (each test
# names the mutant of scripts/mutation/mutants.toml it kills)
# --------------------------------------------------------------------------------------------------


@pytest.mark.claim("G5", "planted")
def test_g5_weyl_fires_just_past_g_h() -> None:
    """``λ_max(after)`` moved by exactly 1.25·G_h: past Weyl's ``G_h`` (plus rounding), inside ``2G_h``.
    [g5-weyl-doubled]"""
    C, heads, Q = _g5_case()
    before = rops.residual_operator(C, heads[0] + heads[1] + heads[2], Q)
    after = rops.residual_operator(C, heads[0] + heads[2], Q)
    G = rops.head_strength(C, heads[1])
    shift = rops.exact_extremes(before).lam_max + 1.25 * G - rops.exact_extremes(after).lam_max
    moved = after + shift * np.eye(4)
    _fires(rprune.check_g5(C=C, head_operators=heads, h=1, Q_cap=Q, theta=10.0, A_res_after=moved), "G5", "Weyl")


@pytest.mark.claim("G1", "property")
def test_append_direction_reorthogonalises_a_direction_that_is_not_orthogonal() -> None:
    """A tracker's ``u`` carries a component along ``Q_cap``; the appended column must be orthogonal
    to working precision anyway (one Gram–Schmidt pass). [cap-no-reorthogonalisation]"""
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.standard_normal((6, 2)))[0]
    u = 0.3 * Q[:, 0] + np.linalg.qr(np.column_stack([Q, rng.standard_normal(6)]))[0][:, 2]
    out = rcap.append_direction(Q, u)
    assert np.max(np.abs(out.T @ out - np.eye(3))) <= inv.orthonormality_bound(6, 3)


@pytest.mark.claim("G3", "property")
def test_greedy_capture_stops_at_an_eigenvalue_equal_to_theta() -> None:
    """``m* = #{λ_i > θ}`` is strict: an eigenvalue exactly θ is not captured. [cap-grow-at-equality]"""
    A = np.diag([1.0, 0.5, -1.0])
    cap = rcap.greedy_capture(A, 0.5)
    assert cap.m == 1
    assert cap.final_lam_max == 0.5
    assert cap.near_ties == (1,)


def test_eigh_error_bound_is_the_documented_formula() -> None:
    """``E = accumulation_bound(d² + 6d, ‖A‖_F)`` (Higham Thm 19.4; docstring): a bound made looser or
    tighter changes every certificate built on it. [ops-eigh-bound-looser]"""
    # A = diag(3, 4): d = 2, m = d² + 6d = 16, ‖A‖_F = 5, u = 2^-53, c = 4 (INVARIANT row), written out
    # by hand: E = c·(γ_16·5 + 16·η_min) with γ_16 = 16u/(1 − 16u).
    u, eta_min = 2.0**-53, 2.0**-1074
    expected = 4.0 * ((16 * u / (1 - 16 * u)) * 5.0 + 16 * eta_min)
    assert abs(rops.eigh_error_bound(np.diag([3.0, 4.0])) - expected) <= 8 * u * expected


@pytest.mark.claim("G1", "planted")
def test_g1_rank_is_numerical_not_the_column_count() -> None:
    """G1's "every growth raises the rank by one" is checked on the numerical rank: a repeated direction
    adds a column but not rank, and G1 must fire on it. [cap-rank-is-column-count]"""
    u = np.array([0.6, 0.8, 0.0])
    repeated = np.column_stack([u, u])
    assert rcap.numerical_rank(repeated) == 1
    assert rcap.numerical_rank(np.zeros((3, 0))) == 0
    ranks = (0, rcap.numerical_rank(repeated[:, :1]), rcap.numerical_rank(repeated))
    _fires(inv.check_g1(Q_cap=repeated, ranks=ranks, theta=0.5), "G1", "rank")


def test_contraction_factor_on_both_branches() -> None:
    """``q(α) = max(1 − αg/(1 + αΔ), αΔ − 1)``; in d = 2 (Δ = g) both branches are closed forms: a small
    step contracts by ``1/(1 + αg)``, a step past ``αΔ = 2`` expands by ``αΔ − 1``.
    [trk-contraction-drops-overshoot]"""
    lam = np.array([1.0, -0.5])  # g = Δ = 1.5
    small = rtrk.contraction_factor(lam, 0.4, rtrk.TrackerKind.OJA)
    assert abs(small - 1.0 / 1.6) <= accumulation_bound(6, 1.0)
    large = rtrk.contraction_factor(lam, 1.5, rtrk.TrackerKind.OJA)
    assert abs(large - 1.25) <= accumulation_bound(6, 1.0)
    assert large > 1.0  # no certificate beyond the step-size condition


def test_spectral_error_is_three_eigh_bounds() -> None:
    """A computed eigenvalue difference is within ``2E`` (Weyl, twice) plus the subtraction's rounding
    ``≤ E``: ``3E`` (docstring). [trk-spectral-error-single]"""
    u, eta_min = 2.0**-53, 2.0**-1074
    E = 4.0 * ((16 * u / (1 - 16 * u)) * 5.0 + 16 * eta_min)  # eigh_error_bound(diag(3, 4)), by hand
    assert abs(rtrk.spectral_error(np.diag([3.0, 4.0])) - 3.0 * E) <= 8 * u * 3.0 * E


@pytest.mark.claim("G6", "property")
def test_tracker_tan_bound_keeps_the_rounding_floor_after_convergence() -> None:
    """After 2,000 Oja steps ``Π q(α_k)·tan_0`` is ~1e-100, but the computed iterate sits at a rounding
    distance ~1e-16 from ``v_1``: the certified bound must keep its rounding drift term to stay above
    it. [trk-tan-bound-drops-drift]"""
    w0 = np.random.default_rng(0).standard_normal(5)
    run = rtrk.oja_track(A5, w0, rtrk.certified_step(A5), 2000)
    measured = float(np.tan(rtrk.angle(rops.exact_extremes(A5).u_max, run.w)))
    assert measured > 0.0
    assert rtrk.tracker_tan_bound(A5, run) >= measured


def test_g5_loss_bound_uses_the_mean_token_change() -> None:
    """The certified ``|ΔL_task|`` bound is ``√2‖W_c‖_2·L_Z·mean_{b,t}‖Δy_{b,t}‖``: one token changed by ``v``
    among ``B·T`` gives exactly ``1/(B·T)`` of the bound for every token changed by ``v`` (a max over
    tokens would give the same bound for both, B·T times looser). [g5-loss-bound-max-token]"""
    rng = np.random.default_rng(2)
    B, T, d = 2, 3, 4
    P, W_c = rng.standard_normal((d, 3)), rng.standard_normal((d, 2))
    v = rng.standard_normal(d)
    every = np.broadcast_to(v, (B, T, d)).copy()
    one = np.zeros((B, T, d))
    one[1, 2] = v
    all_bound = rprune.task_loss_change_bound(every, P, 0.8, W_c)
    one_bound = rprune.task_loss_change_bound(one, P, 0.8, W_c)
    assert abs(one_bound * B * T - all_bound) <= accumulation_bound(B * T + 2 * d, all_bound)
