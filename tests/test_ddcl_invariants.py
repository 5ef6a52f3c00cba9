"""DDCL claims D1–D6: property tests over generated inputs, and planted violations that must fire."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from ddcl_incrt.strategies.ddcl import DDCLProblem, dcl_problems, ddcl_problems, moderate_ddcl_problems, row_stochastic
from reference import dcl as ddcl_dcl
from reference import ddcl
from reference.invariants import ddcl as inv
from reference.invariants.result import ClaimViolation, InvariantResult
from reference.tolerances import CheckKind, tolerance

VALUE_TOL = tolerance("float64", CheckKind.VALUE)


def _assert_hold(results: tuple[InvariantResult, ...]) -> None:
    failed = [r.describe() for r in results if not r.holds]
    assert not failed, "\n".join(failed)
    # Visible in `pytest --hypothesis-show-statistics`: how often a check certified nothing.
    for r in results:
        if not r.certified:
            event(f"uncertified: {r.claim_id} {r.check}")


# --------------------------------------------------------------------------------------------------
# Properties: every invariant holds on generated inputs (extreme scales and temperatures included)
# --------------------------------------------------------------------------------------------------


@pytest.mark.claim("D1", "property")
@given(problem=ddcl_problems(), data=st.data())
def test_d1_holds_for_any_row_stochastic_Q(problem: DDCLProblem, data: st.DataObject) -> None:
    Q = data.draw(row_stochastic(problem.Y.shape[0], problem.K))
    _assert_hold(inv.d1_decomposition(Y=problem.Y, P=problem.P, Q=Q))


@pytest.mark.claim("D1", "property")
@given(problem=ddcl_problems())
def test_d1_holds_for_softmax_Q(problem: DDCLProblem) -> None:
    Q = ddcl.assignments(problem.Y, problem.P, problem.T_P)
    _assert_hold(inv.d1_decomposition(Y=problem.Y, P=problem.P, Q=Q))


@pytest.mark.claim("D2", "property")
@given(problem=ddcl_problems())
def test_d2_holds(problem: DDCLProblem) -> None:
    _assert_hold(inv.d2_free_energy_gradients(Y=problem.Y, P=problem.P, T_P=problem.T_P))


@pytest.mark.claim("D3", "property")
@given(problem=ddcl_problems(), eta=st.floats(1e-3, 0.999))
def test_d3_holds_for_step_sizes_below_one(problem: DDCLProblem, eta: float) -> None:
    _assert_hold(inv.d3_lyapunov(Y=problem.Y, P=problem.P, T_P=problem.T_P, eta=eta))


@pytest.mark.claim("D4", "property")
@given(problem=ddcl_problems())
def test_d4_holds_at_every_temperature(problem: DDCLProblem) -> None:
    _assert_hold(inv.d4_anti_collapse(Y=problem.Y, K=problem.K, T_P=problem.T_P))


@pytest.mark.claim("D5", "property")
@given(problem=ddcl_problems(min_K=2), data=st.data())
def test_d5_holds(problem: DDCLProblem, data: st.DataObject) -> None:
    j = data.draw(st.integers(0, problem.K - 1))
    assume(inv.prototype_not_sole_owner(Y=problem.Y, P=problem.P, T_P=problem.T_P, j=j))
    _assert_hold(inv.d5_prototype_pruning(Y=problem.Y, P=problem.P, T_P=problem.T_P, j=j))


@pytest.mark.claim("D6", "property")
@given(problem=dcl_problems())
def test_d6_holds(problem: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]) -> None:
    Y_b, W, b, G, eta = problem
    _assert_hold(inv.d6_dual_vanilla(Y_b=Y_b, W=W, b=b, grad_P=G, eta=eta))


@pytest.mark.claim("D4", "property")
def test_d4_status_reports_instability_and_margin() -> None:
    Y = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])  # Cov: diag(1/2, 1/8)
    status = inv.collapse_status(Y, 0.5)
    assert VALUE_TOL.allows(status.T_c_free_energy, 1.0)
    assert VALUE_TOL.allows(status.T_c_quantisation, 2.0)
    assert status.unstable_free_energy
    assert VALUE_TOL.allows(status.margin_free_energy, 0.5)
    assert not inv.collapse_status(Y, 1.5).unstable_free_energy
    assert inv.collapse_status(Y, 1.5).unstable_quantisation  # T_c < 1.5 < 2 T_c


@pytest.mark.claim("D3", "property")
def test_d3_prototypes_stay_in_convex_hull_over_many_steps() -> None:
    """Induction of D3's hull statement: after 30 steps with η = 1/2 each prototype is a convex
    combination of the data and its initial position (checked by a feasibility LP)."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(3)
    Y = rng.normal(size=(10, 2))
    P0 = rng.normal(size=(2, 3)) * 3.0
    P = P0.copy()
    for _ in range(30):
        P = ddcl.prototype_step(Y, P, 0.7, 0.5)
    for j in range(3):
        points = np.vstack([Y, P0[:, j]])  # m×d
        m = points.shape[0]
        A_eq = np.vstack([points.T, np.ones((1, m))])
        b_eq = np.concatenate([P[:, j], [1.0]])
        res = linprog(np.zeros(m), A_eq=A_eq, b_eq=b_eq, bounds=[(0, None)] * m, method="highs")
        assert res.status == 0, f"prototype {j} left the convex hull: {res.message}"


# --------------------------------------------------------------------------------------------------
# Planted violations: a broken implementation (ops) must make each invariant fire, naming its claim
# --------------------------------------------------------------------------------------------------

RNG = np.random.default_rng(7)
Y0 = RNG.normal(size=(8, 3))
P0 = RNG.normal(size=(3, 4))
T0 = 0.8


def _broken(**overrides: object) -> inv.DDCLOps:
    return dataclasses.replace(inv.REFERENCE_OPS, **overrides)  # type: ignore[arg-type]


def _fires(results: tuple[InvariantResult, ...], claim: str, check_fragment: str) -> None:
    failed = [r for r in results if not r.holds]
    assert failed, f"{claim}: planted violation was not detected"
    assert all(r.claim_id == claim for r in failed)
    assert any(check_fragment in r.check for r in failed), [r.check for r in failed]


@pytest.mark.claim("D1", "planted")
def test_d1_fires_on_wrong_variance() -> None:
    Q = ddcl.assignments(Y0, P0, T0)
    ops = _broken(prototype_variance=lambda P, Q: ddcl.prototype_variance(P, Q) * (1 + 1e-9))
    _fires(inv.d1_decomposition(Y=Y0, P=P0, Q=Q, ops=ops), "D1", "L_OLS + V")


@pytest.mark.claim("D1", "planted")
def test_d1_fires_on_negative_variance() -> None:
    Q = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]  # hard assignments: V = 0, so −1e-300 is the only error
    ops = _broken(prototype_variance=lambda P, Q: -1e-300)
    _fires(inv.d1_decomposition(Y=Y0, P=P0, Q=Q, ops=ops), "D1", "V ≥ 0")


@pytest.mark.claim("D1", "planted")
def test_d1_raises_claim_violation_naming_the_claim() -> None:
    Q = ddcl.assignments(Y0, P0, T0)
    ops = _broken(ols_loss=lambda Y, P, Q: ddcl.ols_loss(Y, P, Q) + 1e-6)
    with pytest.raises(ClaimViolation, match=r"claim D1 violated"):
        inv.d1_decomposition(Y=Y0, P=P0, Q=Q, ops=ops, raise_on_violation=True)


@pytest.mark.claim("D2", "planted")
def test_d2_fires_on_entropy_in_bits() -> None:
    ops = _broken(mean_entropy=lambda Q: ddcl.mean_entropy(Q) / np.log(2.0))
    _fires(inv.d2_free_energy_gradients(Y=Y0, P=P0, T_P=T0, ops=ops), "D2", "F + T_P")


@pytest.mark.claim("D2", "planted")
def test_d2_fires_on_gradient_missing_factor_two() -> None:
    ops = _broken(grad_free_energy=lambda Y, P, T: tuple(0.5 * g for g in ddcl.grad_free_energy(Y, P, T)))
    _fires(inv.d2_free_energy_gradients(Y=Y0, P=P0, T_P=T0, ops=ops), "D2", "∇_P F")


@pytest.mark.claim("D2", "planted")
def test_d2_fires_on_wrong_variance_gradient() -> None:
    ops = _broken(grad_variance_fixed_Q=lambda P, Q: 2.0 * P @ (Q.T @ Q) / Q.shape[0])
    _fires(inv.d2_free_energy_gradients(Y=Y0, P=P0, T_P=T0, ops=ops), "D2", "∇_P V")


@pytest.mark.claim("D2", "planted")
def test_d2_fires_on_non_psd_covariance() -> None:
    ops = _broken(assignment_covariance=lambda Q: -np.eye(Q.shape[1]))
    _fires(inv.d2_free_energy_gradients(Y=Y0, P=P0, T_P=T0, ops=ops), "D2", "Σ_q")


@pytest.mark.claim("D3", "planted")
def test_d3_fires_on_hessian_above_smoothness_bound() -> None:
    ops = _broken(hessian_free_energy=lambda Y, P, T: ddcl.hessian_free_energy(Y, P, T) + 0.1 * np.eye(P.size))
    _fires(inv.d3_lyapunov(Y=Y0, P=P0, T_P=T0, eta=0.3, ops=ops), "D3", "smoothness")


@pytest.mark.claim("D3", "planted")
def test_d3_fires_on_ascent_step() -> None:
    ops = _broken(prototype_step=lambda Y, P, T, eta: P + eta * ddcl.grad_free_energy(Y, P, T)[1])
    _fires(inv.d3_lyapunov(Y=Y0, P=P0, T_P=T0, eta=0.3, ops=ops), "D3", "descent")


@pytest.mark.claim("D4", "planted")
def test_d4_fires_on_wrong_hessian_at_collapse() -> None:
    ops = _broken(hessian_quantisation=lambda Y, P, T: ddcl.hessian_free_energy(Y, P, T))  # misses the factor 2
    _fires(inv.d4_anti_collapse(Y=Y0, K=3, T_P=T0, ops=ops), "D4", "∇²L_q")


@pytest.mark.claim("D4", "planted")
def test_d4_fires_on_nonzero_gradient_at_collapse() -> None:
    def shifted(Y: np.ndarray, P: np.ndarray, T: float) -> tuple[np.ndarray, np.ndarray]:
        gY, gP = ddcl.grad_free_energy(Y, P, T)
        return gY, gP + 1e-6

    _fires(inv.d4_anti_collapse(Y=Y0, K=3, T_P=T0, ops=_broken(grad_free_energy=shifted)), "D4", "∇_P F")


@pytest.mark.claim("D5", "planted")
def test_d5_fires_when_removal_drops_the_wrong_prototype() -> None:
    ops = _broken(remove_prototype=lambda P, j: ddcl.remove_prototype(P, (j + 1) % P.shape[1]))
    _fires(inv.d5_prototype_pruning(Y=Y0, P=P0, T_P=T0, j=0, ops=ops), "D5", "ΔF")


@pytest.mark.claim("D6", "planted")
def test_d6_fires_when_step_ignores_bias() -> None:
    ops = _broken(dcl_step=lambda Y_b, W, b, G, eta: (W - eta * Y_b @ G, b))
    rng = np.random.default_rng(8)  # local: results must not depend on test order
    W, b = rng.normal(size=(5, 4)), rng.normal(size=4)
    _fires(inv.d6_dual_vanilla(Y_b=Y0[:5], W=W, b=b, grad_P=P0, eta=0.1, ops=ops), "D6", "ΔP")


# --------------------------------------------------------------------------------------------------
# Planted violations on every generated example of the well-conditioned regime (the bounds there are
# finite and small, so a check that misses a planted error is too loose, not "uncertifiable")
# --------------------------------------------------------------------------------------------------


def _detected(results: tuple[InvariantResult, ...], fragment: str) -> bool:
    return any(fragment in r.check and not r.holds for r in results)


@pytest.mark.claim("D4", "planted")
@given(problem=moderate_ddcl_problems(min_K=2))
def test_d4_detects_a_missing_factor_two_in_the_lq_hessian(problem: DDCLProblem) -> None:
    Y, K, T = problem.Y, problem.K, problem.T_P
    Tc = ddcl.collapse_critical_temperatures(Y)[0]
    # The planted error moves λ_min by (2/K)·T_c/T_P; it is certifiably visible when that exceeds twice
    # the check's rounding bound (the correct value sits within one bound of the formula).
    (bound,) = [r.bound for r in inv.d4_anti_collapse(Y=Y, K=K, T_P=T) if "∇²L_q" in r.check]
    assume((2.0 / K) * Tc / T > 2.0 * bound)
    ops = _broken(hessian_quantisation=lambda Y, P, T: ddcl.hessian_free_energy(Y, P, T))
    assert _detected(inv.d4_anti_collapse(Y=Y, K=K, T_P=T, ops=ops), "∇²L_q")


@pytest.mark.claim("D1", "planted")
@given(problem=moderate_ddcl_problems())
def test_d1_detects_a_relative_error_in_V(problem: DDCLProblem) -> None:
    Q = ddcl.assignments(problem.Y, problem.P, problem.T_P)
    V = ddcl.prototype_variance(problem.P, Q)
    (bound,) = [r.bound for r in inv.d1_decomposition(Y=problem.Y, P=problem.P, Q=Q) if "L_OLS + V" in r.check]
    planted = 1e-6  # relative error planted in V
    assume(planted * V > 2.0 * bound)  # the planted error must exceed what rounding may hide
    ops = _broken(prototype_variance=lambda P, Q: ddcl.prototype_variance(P, Q) * (1.0 + planted))
    assert _detected(inv.d1_decomposition(Y=problem.Y, P=problem.P, Q=Q, ops=ops), "L_OLS + V")


@pytest.mark.claim("D3", "planted")
@given(problem=moderate_ddcl_problems())
def test_d3_detects_an_ascent_step(problem: DDCLProblem) -> None:
    _, g = ddcl.grad_free_energy(problem.Y, problem.P, problem.T_P)
    (bound,) = [
        r.bound for r in inv.d3_lyapunov(Y=problem.Y, P=problem.P, T_P=problem.T_P, eta=0.3) if "descent" in r.check
    ]
    # Ascent raises F by about η‖g‖² to first order, and the check then exceeds its bound by about
    # 2η‖g‖²: require the planted effect to exceed twice what rounding may hide.
    assume(0.3 * float(np.sum(g * g)) > 2.0 * bound)
    ops = _broken(prototype_step=lambda Y, P, T, eta: P + eta * ddcl.grad_free_energy(Y, P, T)[1])
    assert _detected(inv.d3_lyapunov(Y=problem.Y, P=problem.P, T_P=problem.T_P, eta=0.3, ops=ops), "descent")


def test_an_infinite_bound_is_reported_as_uncertified() -> None:
    r = InvariantResult("D4", "check", 1.0, float("inf"))
    assert r.holds
    assert not r.certified
    assert "UNCERTIFIED" in r.describe()
    assert InvariantResult("D4", "check", 1.0, 2.0).certified


# --------------------------------------------------------------------------------------------------
# Planted errors just above the documented bounds, bounds that are tight, and hypotheses decided exactly
# at their boundary (each test names the mutant of scripts/mutation/mutants.toml it kills)
# --------------------------------------------------------------------------------------------------

U64 = Fraction(1, 2**53)  # float64 unit roundoff


def _documented_d1_bound(Y: np.ndarray, P: np.ndarray) -> float:
    """D1's bound as docs/tolerances.md writes it, evaluated here from its definition:
    ``4(γ_m·2S + m·η)`` with ``m = nKd + K + d + 8``, ``S = mean_t(‖y_t‖ + 2 max_j ‖p_j‖)²``."""
    n, d = Y.shape
    K = P.shape[1]
    m = n * K * d + K + d + 8
    S = float(np.mean((np.linalg.norm(Y, axis=1) + 2.0 * np.max(np.linalg.norm(P, axis=0))) ** 2))
    gamma_m = float(m * U64 / (1 - m * U64))
    return 4.0 * (gamma_m * 2.0 * S + m * float(np.finfo(np.float64).smallest_subnormal))


@pytest.mark.parametrize(("factor", "fires"), [(0.5, False), (1.5, True)])
def test_d1_fires_on_an_error_just_above_its_documented_bound(factor: float, fires: bool) -> None:
    # Kills mutants d1-bound-doubled and tol-invariant-multiplier-doubled: an L_OLS error of 1.5× the
    # documented bound must fire (a 2× looser bound lets it pass), one of 0.5× must not (rounding
    # itself stays below ~11 % of the bound, docs/tolerances.md).
    Q = ddcl.assignments(Y0, P0, T0)
    planted = factor * _documented_d1_bound(Y0, P0)
    ops = _broken(ols_loss=lambda Y, P, Q: ddcl.ols_loss(Y, P, Q) + planted)
    (result,) = [r for r in inv.d1_decomposition(Y=Y0, P=P0, Q=Q, ops=ops) if "L_OLS + V" in r.check]
    assert result.holds is not fires, result.describe()


def _one_prototype_quadratic() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K = 1: ``F(p) = mean‖y − p‖²`` exactly, Hessian 2I, so the descent lemma is an equality for
    ``P − η∇F`` and a step ``P − α∇F`` decreases F by exactly ``α(1 − α)‖∇F‖²``."""
    Y = np.array([[float(t), 0.5 * t] for t in range(-2, 4)])
    P = np.array([[3.0], [1.0]])
    g = 2.0 * (P - Y.mean(axis=0)[:, None])  # ∇_P F = 2(p − ȳ), derived by hand
    return Y, P, g


def test_d3_fires_on_a_descent_that_is_too_short() -> None:
    # Kills mutant d3-descent-halved. At η = 0.8 the lemma demands a decrease of η(1 − η)‖g‖² = 0.16‖g‖²;
    # a planted step P − 0.1 g decreases F by 0.1·0.9‖g‖² = 0.09‖g‖² (closed form above): too short,
    # though more than half the demand (0.08‖g‖²). η > 1/2 so the convex-hull checks do not run.
    Y, P, g = _one_prototype_quadratic()
    ops = _broken(prototype_step=lambda Y, P, T, eta: P - 0.1 * g)
    _fires(inv.d3_lyapunov(Y=Y, P=P, T_P=1.0, eta=0.8, ops=ops), "D3", "descent")
    # The exact step meets the lemma with equality (to rounding): the check holds there.
    _assert_hold(inv.d3_lyapunov(Y=Y, P=P, T_P=1.0, eta=0.8))


def test_d3_smoothness_is_tight_and_fires_just_above_it() -> None:
    # Kills mutant d3-smoothness-looser: a Hessian exactly at (2/n)diag(n_j)⊗I holds; 1e-6·I above it
    # fires (a bound twice as loose hides any excess below 2 min_j n_j/n).
    Q = ddcl.assignments(Y0, P0, T0)
    n, d = Y0.shape
    at_bound = np.kron(np.diag(2.0 * Q.sum(axis=0) / n), np.eye(d))
    tight = inv.d3_lyapunov(Y=Y0, P=P0, T_P=T0, eta=0.3, ops=_broken(hessian_free_energy=lambda Y, P, T: at_bound))
    assert all(r.holds for r in tight if "smoothness" in r.check)
    above = at_bound + 1e-6 * np.eye(at_bound.shape[0])
    ops = _broken(hessian_free_energy=lambda Y, P, T: above)
    _fires(inv.d3_lyapunov(Y=Y0, P=P0, T_P=T0, eta=0.3, ops=ops), "D3", "smoothness")


def test_d3_convex_hull_checks_run_at_exactly_half() -> None:
    # Kills mutant d3-eta-half-boundary: η ≤ 1/2 includes η = 1/2.
    assert inv.step_size_at_most_half(eta=0.5)
    assert not inv.step_size_at_most_half(eta=float(np.nextafter(0.5, 1.0)))
    checks = [r.check for r in inv.d3_lyapunov(Y=Y0, P=P0, T_P=T0, eta=0.5)]
    assert any("convex weights" in c for c in checks), checks


def test_d3_step_size_hypothesis_excludes_one() -> None:
    # Kills mutant d3-unit-interval-boundary: η(1 − η) > 0 needs η < 1 strictly.
    assert not inv.step_size_in_unit_interval(eta=1.0)
    assert inv.step_size_in_unit_interval(eta=float(np.nextafter(1.0, 0.0)))


def test_d4_hypothesis_and_status_at_exactly_the_critical_temperature() -> None:
    # Kills mutants d4-critical-boundary and d4-status-boundary: at T_P = T_c the smallest Hessian
    # eigenvalue is (2/K)(1 − T_c/T_P) = 0, so collapse is not unstable; just below T_c it is.
    Y = Y0
    Tc = ddcl.collapse_critical_temperatures(Y)[0]
    assert not inv.temperature_below_critical(Y=Y, T_P=Tc)
    assert inv.temperature_below_critical(Y=Y, T_P=float(np.nextafter(Tc, 0.0)))
    status = inv.collapse_status(Y, Tc)
    assert not status.unstable_free_energy
    assert status.margin_free_energy == 0.0
    assert inv.collapse_status(Y, float(np.nextafter(Tc, 0.0))).unstable_free_energy


def test_d5_sole_owner_at_exactly_q_equal_one() -> None:
    # Kills mutants d5-sole-owner-boundary and ddcl-removal-sole-owner-boundary. Token 0 sits on
    # prototype 0 and every other prototype is ≥ 100 away at T_P = 0.1: exp(−D/T) ≤ exp(−1e5) underflows
    # to 0, so q_00 = 1 exactly in float64 and removing prototype 0 costs ΔF = +∞.
    Y = np.array([[0.0, 0.0], [50.0, 0.0]])
    P = np.array([[0.0, 100.0, 50.0], [0.0, 0.0, 1.0]])
    Q = ddcl.assignments(Y, P, 0.1)
    assert Q[0, 0] == 1.0
    assert not inv.prototype_not_sole_owner(Y=Y, P=P, T_P=0.1, j=0)
    assert ddcl.removal_free_energy_change(Q, 0, 0.1) == (float("inf"), float("inf"))


def test_d6_fires_on_a_step_that_leaves_the_span() -> None:
    # Kills mutant d6-span-projection-dropped. With n_b = 2 and d = 4, span(rows Y_b) + span(1_d) has
    # dimension 3; v (found by SVD, independently of the invariant) is orthogonal to it. A DCL whose
    # prototypes carry an extra v·(1ᵀW) moves P along v when a step changes W.
    rng = np.random.default_rng(11)
    Y_b, W, b, G = rng.normal(size=(2, 4)), rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(4, 3))
    A = np.vstack([Y_b, np.ones((1, 4))])
    v = np.linalg.svd(A)[2][-1]
    assert float(np.abs(A @ v).max()) < 1e-12
    ops = _broken(dcl_prototypes=lambda Y_b, W, b: ddcl_dcl.dcl_prototypes(Y_b, W, b) + np.outer(v, W.sum(axis=0)))
    _fires(inv.d6_dual_vanilla(Y_b=Y_b, W=W, b=b, grad_P=G, eta=0.1, ops=ops), "D6", "outside span")


def test_an_inequality_met_with_equality_holds() -> None:
    # Kills mutant result-holds-strict: V = 0 against bound 0 (hard assignments) holds.
    assert InvariantResult("D1", "−V (V ≥ 0)", 0.0, 0.0).holds
    Q = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]
    (v_check,) = [r for r in inv.d1_decomposition(Y=Y0, P=P0, Q=Q) if "V ≥ 0" in r.check]
    assert v_check.value == 0.0
    assert v_check.holds


def test_d4_with_one_prototype_expects_the_spectrum_two_at_any_temperature() -> None:
    # Kills mutant d4-K1-branch. With K = 1, F = mean‖y − p‖² whatever T_P (the log-sum-exp of one term is
    # exact), so ∇²F = 2I: the K ≥ 2 formula (2/K)(1 − T_c/T_P) would predict 2(1 − T_c/T_P) ≠ 2.
    Tc = ddcl.collapse_critical_temperatures(Y0)[0]
    for T in (0.25 * Tc, 4.0 * Tc):
        lam = float(np.linalg.eigvalsh(ddcl.hessian_free_energy(Y0, inv.collapsed_prototypes(Y0, 1), T))[0])
        assert lam == pytest.approx(2.0, rel=VALUE_TOL.rtol)
        _assert_hold(inv.d4_anti_collapse(Y=Y0, K=1, T_P=T))


# --------------------------------------------------------------------------------------------------
# D6 under Adam: what still holds (span, stationary points) and what does not (ΔP = −ηM∇_P L)
# --------------------------------------------------------------------------------------------------


def _adam(
    Y_b: np.ndarray, W: np.ndarray, b: np.ndarray, grads: tuple[np.ndarray, ...], eta: float
) -> tuple[np.ndarray, np.ndarray]:
    from reference.falsify.ddcl import dcl_adam_step

    return dcl_adam_step(Y_b, W, b, grads, eta)


def _rests_iff_stationary(
    Y_b: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    G: np.ndarray,
    eta: float,
    step: object = _adam,
) -> bool:
    """From zero moments, the optimiser ``step`` leaves ``(W, b)`` exactly where they are when ``∇_P L = 0``, and
    moves them when ``(∇_W L, ∇_b L)`` is certifiably non-zero (``‖∇_W‖² + ‖∇_b‖²`` above its rounding bound,
    as in ``reference.falsify.ddcl._stationary_points_agree``). With D6's ``‖∇_W‖² + ‖∇_b‖² = tr(∇_Pᵀ M ∇_P)``
    and ``M`` nonsingular, Adam's rest points are the vanilla layer's stationary points."""
    assert callable(step)
    W0, b0 = step(Y_b, W, b, (np.zeros_like(G),), eta)
    if not (np.array_equal(W0, W) and np.array_equal(b0, b)):
        return False
    gW, gb = ddcl_dcl.dcl_gradients(Y_b, G)
    energy = float(np.sum(gW * gW) + np.sum(gb * gb))
    M = ddcl_dcl.dcl_preconditioner(Y_b)
    from reference.tolerances import accumulation_bound

    bound = accumulation_bound(Y_b.shape[0] + Y_b.shape[1] + 8, float(np.sum(np.abs(G).T @ np.abs(M) @ np.abs(G))))
    if energy <= bound:
        return True  # not certifiably non-zero: nothing to check
    # From W = 0, b = 0 the step's increment is its result (from (W, b) a tiny one may be absorbed in rounding).
    W1, b1 = step(Y_b, np.zeros_like(W), np.zeros_like(b), (G,), eta)
    return bool(np.any(W1 != 0.0) or np.any(b1 != 0.0))


@pytest.mark.claim("D6", "property")
@given(problem=dcl_problems(), data=st.data())
def test_d6_span_and_stationary_points_hold_under_adam(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float], data: st.DataObject
) -> None:
    """Adam (the reference's, the cluster study's optimiser) for 1–4 steps on the dual layer's (W, b): the
    prototypes move inside span(rows Y_b) + span(1_d) and the energy identity holds (d6_any_update, its own
    rounding bounds); from zero moments Adam rests exactly at D6's stationary points."""
    Y_b, W, b, G, eta = problem
    later = data.draw(st.lists(st.floats(-1.0, 1.0), min_size=0, max_size=3))
    grads = (G, *(c * G[::-1] if G.shape[0] > 1 else c * G for c in later))
    W1, b1 = _adam(Y_b, W, b, grads, eta)
    _assert_hold(inv.d6_any_update(Y_b=Y_b, W=W, b=b, W_next=W1, b_next=b1, grad_P=G))
    assert _rests_iff_stationary(Y_b, W, b, G, eta)
    # Adam's first step (from W = 0, b = 0 its result is its increment Θ) is a first-order descent step for
    # the vanilla loss: ⟨ΔP, ∇_P L⟩ = ⟨Θ, (∇_W L, ∇_b L)⟩ (chain rule) and every entry of Θ has the sign of
    # −g/(|g| + ε): each term of the sum is ≤ 0 exactly, in floats too.
    gW, gb = ddcl_dcl.dcl_gradients(Y_b, G)
    tW, tb = _adam(Y_b, np.zeros_like(W), np.zeros_like(b), (G,), eta)
    assert np.all(tW * gW <= 0.0)
    assert np.all(tb * gb <= 0.0)


@pytest.mark.claim("D6", "planted")
def test_d6_any_update_fires_when_an_adam_step_leaves_the_span() -> None:
    """The mutant of test_d6_fires_on_a_step_that_leaves_the_span (prototypes carrying an extra v·(1ᵀW), v ⟂
    span(rows Y_b, 1_d), found by SVD independently of the invariant), moved by an Adam step."""
    rng = np.random.default_rng(11)
    Y_b, W, b, G = rng.normal(size=(2, 4)), rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(4, 3))
    A = np.vstack([Y_b, np.ones((1, 4))])
    v = np.linalg.svd(A)[2][-1]
    assert float(np.abs(A @ v).max()) < 1e-12
    W1, b1 = _adam(Y_b, W, b, (G,), 0.01)
    _assert_hold(inv.d6_any_update(Y_b=Y_b, W=W, b=b, W_next=W1, b_next=b1, grad_P=G))
    ops = _broken(dcl_prototypes=lambda Y_b, W, b: ddcl_dcl.dcl_prototypes(Y_b, W, b) + np.outer(v, W.sum(axis=0)))
    _fires(inv.d6_any_update(Y_b=Y_b, W=W, b=b, W_next=W1, b_next=b1, grad_P=G, ops=ops), "D6", "outside span")
    # and just past the bound: a component along v of 1.01 times the bound fires, 0.99 times holds
    (r,) = [x for x in inv.d6_any_update(Y_b=Y_b, W=W, b=b, W_next=W1, b_next=b1, grad_P=G) if "span" in x.check]
    for factor, holds in ((1.01, False), (0.99, True)):
        shift = factor * r.bound / float(np.abs(v).max())
        moved = _broken(
            dcl_prototypes=lambda Y_b, W_, b_, s=shift: (
                ddcl_dcl.dcl_prototypes(Y_b, W_, b_)
                + (0.0 if np.array_equal(W_, W) else s) * np.outer(v, np.ones(W_.shape[1]))
            )
        )
        (out,) = [
            x
            for x in inv.d6_any_update(Y_b=Y_b, W=W, b=b, W_next=W1, b_next=b1, grad_P=G, ops=moved)
            if "span" in x.check
        ]
        assert out.holds is holds, (factor, out.describe())


@pytest.mark.claim("D6", "planted")
def test_d6_any_update_energy_check_fires_without_the_bias_term(monkeypatch: pytest.MonkeyPatch) -> None:
    """A preconditioner that forgets 11ᵀ (the bias's share of M) breaks ‖∇_W‖² + ‖∇_b‖² = tr(∇_Pᵀ M ∇_P)."""
    rng = np.random.default_rng(12)
    Y_b, W, b, G = rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), rng.normal(size=2), rng.normal(size=(3, 2))
    W1, b1 = _adam(Y_b, W, b, (G,), 0.05)
    _assert_hold(inv.d6_any_update(Y_b=Y_b, W=W, b=b, W_next=W1, b_next=b1, grad_P=G))
    monkeypatch.setattr(ddcl_dcl, "dcl_preconditioner", lambda Y_b: Y_b.T @ Y_b)
    _fires(inv.d6_any_update(Y_b=Y_b, W=W, b=b, W_next=W1, b_next=b1, grad_P=G), "D6", "tr(∇_Pᵀ M ∇_P)")


@pytest.mark.claim("D6", "planted")
def test_rest_points_check_fires_for_adam_with_decoupled_weight_decay() -> None:
    """AdamW (decoupled weight decay λ = 0.01) moves (W, b) at ∇_P L = 0: its rest points are not the loss's
    stationary points, and the check says so; plain Adam passes on the same inputs."""

    def adamw(
        Y_b: np.ndarray, W: np.ndarray, b: np.ndarray, grads: tuple[np.ndarray, ...], eta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        W1, b1 = _adam(Y_b, W, b, grads, eta)
        return W1 - eta * 0.01 * W, b1 - eta * 0.01 * b

    rng = np.random.default_rng(13)
    Y_b, W, b, G = rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), rng.normal(size=2), rng.normal(size=(3, 2))
    assert _rests_iff_stationary(Y_b, W, b, G, 0.1)
    assert not _rests_iff_stationary(Y_b, W, b, G, 0.1, step=adamw)


@pytest.mark.claim("D6", "falsifier")
def test_d6_adam_counterexample_matches_the_hand_derivation() -> None:
    """d6_adam_step's numbers from its docstring's algebra, not from the code: ΔP = −η(2, 3) to O(ε),
    −ηM∇_P L = −η(3, 6), best-rate relative residual √(1/5)/√13; the step is not a gradient step, the span
    and energy parts hold on it, and the conclusion predicate is false on it but true on the gradient step."""
    from reference.falsify.ddcl import d6_adam_step, d6_conclusion

    ce = d6_adam_step()
    i = ce.inputs
    eta = i["eta"]
    dP = ddcl_dcl.dcl_prototypes(i["Y_b"], i["W_next"], i["b_next"]) - ddcl_dcl.dcl_prototypes(i["Y_b"], i["W"], i["b"])
    np.testing.assert_allclose(dP.ravel(), [-2.0 * eta, -3.0 * eta], rtol=1e-7)
    np.testing.assert_allclose(
        (ddcl_dcl.dcl_preconditioner(i["Y_b"]) @ i["grad_P"]).ravel(), [3.0, 6.0], rtol=0, atol=0
    )
    assert "relative residual 0.124" in ce.observed
    assert abs(float(np.sqrt(1 / 5) / np.sqrt(13)) - 0.124) < 5e-4
    assert not inv.gradient_step(**i)
    assert inv.eta_positive(**i)
    assert inv.dcl_preconditioner_nonsingular(**i)
    _assert_hold(inv.d6_any_update(**{k: i[k] for k in ("Y_b", "W", "b", "W_next", "b_next", "grad_P")}))
    assert ce.conclusion_fails
    assert not d6_conclusion(**i)
    gW, gb = ddcl_dcl.dcl_gradients(i["Y_b"], i["grad_P"])
    plain = {**i, "W_next": i["W"] - eta * gW, "b_next": i["b"] - eta * gb}
    assert inv.gradient_step(**plain)
    assert d6_conclusion(**plain)


@pytest.mark.claim("D6", "planted")
def test_the_first_step_descent_check_fails_for_a_momentum_step() -> None:
    """The entrywise sign check of the property test fails after the first step: gradients G then −0.05G
    leave Adam's first moment at 0.085G (0.9·0.1G − 0.1·0.05G), so the second step moves against the
    current gradient's descent direction on every entry where G ≠ 0."""
    rng = np.random.default_rng(14)
    Y_b, W, b, G = rng.normal(size=(4, 3)), np.zeros((4, 2)), np.zeros(2), rng.normal(size=(3, 2))
    W1, b1 = _adam(Y_b, W, b, (G,), 0.1)
    W2, b2 = _adam(Y_b, W, b, (G, -0.05 * G), 0.1)
    gW, gb = ddcl_dcl.dcl_gradients(Y_b, -0.05 * G)
    assert np.all((W1 - W) * -gW <= 0.0)  # the first step: descent for its own gradient G
    assert np.all((W2 - W1) * gW > 0.0)  # the second: ascent to first order for its gradient −0.05G
    assert np.all((b2 - b1) * gb > 0.0)
