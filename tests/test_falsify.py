"""Conclusion predicates and the reasons why some hypotheses have no falsifier.

tests/test_registry.py feeds every falsifier's counterexample through its claim's conclusion predicate.
Here: (1) each predicate is *true* on inputs satisfying every hypothesis (so a falsifier cannot pass by
a predicate that is always false); (2) each stated reason ``Claim.no_falsifier`` is checked — the
conclusion still holds on inputs violating that hypothesis (and only it); (3) the direct evaluations
used outside the reference's domain can fail (a planted error is caught).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from reference import dcl, ddcl
from reference.claims.records import Claim
from reference.claims.registry import REGISTRY
from reference.falsify import ddcl as fzd
from reference.falsify import incrt as fzi
from reference.incrt.capture import CaptureResult, greedy_capture, greedy_capture_tracked, numerical_rank
from reference.incrt.operators import planted_operator
from reference.incrt.trackers import certified_step, oja_track
from reference.invariants import ddcl as dinv

RNG_SEED = 20240611


def _tokens() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    return rng.standard_normal((7, 2)), rng.standard_normal((2, 3))


def _valid_inputs(claim_id: str) -> dict[str, Any]:
    """Inputs on which every hypothesis of the claim holds (fixed seeds)."""
    Y, P = _tokens()
    if claim_id == "D1":
        return {"Y": Y, "P": P, "Q": ddcl.assignments(Y, P, 0.7)}
    if claim_id == "D2":
        return {"Y": Y, "P": P, "T_P": 0.7}
    if claim_id == "D3":
        return {"Y": Y, "P": P, "T_P": 0.7, "eta": 0.4}
    if claim_id == "D4":
        return {"Y": Y, "K": 3, "T_P": 0.5 * ddcl.collapse_critical_temperatures(Y)[0]}
    if claim_id == "D5":
        return {"Y": Y, "P": P, "T_P": 0.7, "j": 1}
    if claim_id == "D6":
        rng = np.random.default_rng(RNG_SEED)
        return {
            "Y_b": rng.standard_normal((4, 3)),
            "W": rng.standard_normal((4, 2)),
            "b": rng.standard_normal(2),
            "grad_P": rng.standard_normal((3, 2)),
            "eta": 0.1,
        }
    A = planted_operator([3.0, 2.0, 0.5, -1.0], rng=np.random.default_rng(RNG_SEED))
    theta = 1.0
    if claim_id in ("G1", "G2", "G3"):
        cap = greedy_capture(A, theta)
        return {"A": A, "theta": theta, "capture": cap, "Q_cap": cap.Q_cap, "ranks": cap.ranks}
    if claim_id == "G4":
        runs = tuple(greedy_capture_tracked(A, theta, rng=np.random.default_rng(s), n_steps=600) for s in (1, 2))
        return {"A": A, "theta": theta, "captures": (greedy_capture(A, theta), *runs)}
    if claim_id == "G5":
        C, Ms, _, _ = fzi.g5_oscillation_case()
        return {"C": C, "head_operators": Ms, "h": 1, "Q_cap": np.zeros((2, 0)), "theta": 2.0}
    assert claim_id == "G6"
    w0 = np.random.default_rng(RNG_SEED).standard_normal(4)
    return {"A": A, "tracker": oja_track(A, w0, certified_step(A), 600)}


PROVED = [c for c in REGISTRY.values() if c.label.value == "proved" and c.implemented]


@pytest.mark.parametrize("claim", PROVED, ids=lambda c: c.id)
def test_conclusion_holds_where_every_hypothesis_holds(claim: Claim) -> None:
    inputs = _valid_inputs(claim.id)
    assert all(claim.hypotheses_hold(**inputs).values()), claim.hypotheses_hold(**inputs)
    assert claim.conclusion_holds(**inputs)


def _only_false(claim: Claim, inputs: dict[str, Any], hypothesis: str) -> None:
    holds = claim.hypotheses_hold(**inputs)
    assert holds == {h.name: h.name != hypothesis for h in claim.hypotheses}, holds


# --------------------------------------------------------------------------------------------------
# D2: T_P > 0 only makes the statement defined
# --------------------------------------------------------------------------------------------------


@pytest.mark.claim("D2", "property")
@pytest.mark.parametrize("T_P", [-1.0, -0.3])
def test_d2_holds_at_negative_temperature(T_P: float) -> None:
    claim = REGISTRY["D2"]
    assert "temperature_positive" in claim.no_falsifier
    Y, P = _tokens()
    inputs = {"Y": Y, "P": P, "T_P": T_P}
    _only_false(claim, inputs, "temperature_positive")
    assert claim.conclusion_holds(**inputs)


def test_d2_is_undefined_at_zero_temperature() -> None:
    Y, P = _tokens()
    with pytest.raises(ValueError, match="undefined"):
        REGISTRY["D2"].conclusion_holds(Y=Y, P=P, T_P=0.0)


def test_d2_direct_statement_fires_on_entropy_in_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The direct evaluation at T_P < 0 is a check that can fail: with H̄ in bits, L_q ≠ F + T_P·H̄."""
    Y, P = _tokens()
    assert fzd.d2_statement_any_temperature(Y, P, -1.0)
    entropy = ddcl.mean_entropy
    monkeypatch.setattr(ddcl, "mean_entropy", lambda Q: entropy(Q) / math.log(2.0))
    assert not fzd.d2_statement_any_temperature(Y, P, -1.0)


def test_d2_direct_statement_agrees_with_the_invariant_at_positive_temperature() -> None:
    Y, P = _tokens()
    assert fzd.d2_statement_any_temperature(Y, P, 0.7) == REGISTRY["D2"].conclusion_holds(Y=Y, P=P, T_P=0.7)


# --------------------------------------------------------------------------------------------------
# D5: "not sole owner" is K ≥ 2 in reals; its float part is about evaluating the formula
# --------------------------------------------------------------------------------------------------


def _sole_owner_case() -> dict[str, Any]:
    """Token (0, 0) at distance 0 from p_0 and 900 from p_1 at T_P = 1: e^{−900} underflows, q_00 = 1.0."""
    Y = np.array([[0.0, 0.0], [15.0, 0.0]])
    P = np.array([[0.0, 30.0], [0.0, 0.0]])
    return {"Y": Y, "P": P, "T_P": 1.0, "j": 0}


@pytest.mark.claim("D5", "property")
def test_d5_holds_where_a_prototype_owns_a_token_alone_in_floats() -> None:
    claim = REGISTRY["D5"]
    assert "prototype_not_sole_owner" in claim.no_falsifier
    inputs = _sole_owner_case()
    Q = ddcl.assignments(inputs["Y"], inputs["P"], 1.0)
    assert Q[0, 0] == 1.0
    _only_false(claim, inputs, "prototype_not_sole_owner")
    # the reference's formula cannot be evaluated there: infinite prediction, uncertified records
    assert ddcl.removal_free_energy_change(Q, 0, 1.0) == (math.inf, math.inf)
    assert not any(r.certified for r in dinv.d5_prototype_pruning(**inputs))
    # the statement itself holds, with log(1 − q) in its exact form
    assert claim.conclusion_holds(**inputs)


def test_d5_direct_statement_agrees_with_the_invariant_and_can_fail() -> None:
    Y, P = _tokens()
    assert fzd.d5_statement_any_temperature(Y, P, 0.7, 1)
    assert not fzd.d5_statement_any_temperature(Y, P, -0.7, 1)  # ΔF < 0 at negative temperature
    with pytest.raises(ValueError, match="only prototype"):
        fzd.d5_statement_any_temperature(Y, P[:, :1], 0.7, 0)


# --------------------------------------------------------------------------------------------------
# D6: η > 0 is not needed at all
# --------------------------------------------------------------------------------------------------


@pytest.mark.claim("D6", "property")
@pytest.mark.parametrize("eta", [0.0, -0.5])
def test_d6_holds_for_every_real_step(eta: float) -> None:
    claim = REGISTRY["D6"]
    assert "eta_positive" in claim.no_falsifier
    inputs = {**_valid_inputs("D6"), "eta": eta}
    _only_false(claim, inputs, "eta_positive")
    assert claim.conclusion_holds(**inputs)


def test_d6_direct_statement_fires_when_the_step_ignores_the_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = {**_valid_inputs("D6"), "eta": -0.5}
    grads = dcl.dcl_gradients

    def no_bias(Y_b: np.ndarray, grad_P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gW, gb = grads(Y_b, grad_P)
        return gW, 0.0 * gb

    monkeypatch.setattr(dcl, "dcl_gradients", no_bias)
    assert not REGISTRY["D6"].conclusion_holds(**inputs)


# --------------------------------------------------------------------------------------------------
# G4: symmetry only makes the statement defined (Schur deflation)
# --------------------------------------------------------------------------------------------------


def _nonsymmetric_real_spectrum() -> np.ndarray:
    """``U T Uᵀ`` with ``T`` upper triangular, diagonal ``(3, 2, 0.5, −1)``: real, simple, non-normal."""
    rng = np.random.default_rng(RNG_SEED)
    T = np.diag([3.0, 2.0, 0.5, -1.0]) + np.triu(0.8 * rng.standard_normal((4, 4)), k=1)
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    return U @ T @ U.T


def _greedy_by_power_iteration(A: np.ndarray, theta: float, seed: int) -> CaptureResult:
    """The greedy rule with a different oracle: each round's top eigenvector by shifted power iteration
    (``x ← (Π⊥AΠ⊥ + sI)x``, s making every eigenvalue positive) from a random start."""
    d = A.shape[0]
    rng = np.random.default_rng(seed)
    Q = np.zeros((d, 0))
    births: list[float] = []
    ranks = [0]
    while True:
        Pi = np.eye(d) - Q @ Q.T
        R = Pi @ A @ Pi
        shift = 1.0 + max(0.0, -float(np.min(np.linalg.eigvals(R).real)))
        x = rng.standard_normal(d)
        for _ in range(3000):
            x = (R + shift * np.eye(d)) @ x
            x /= np.linalg.norm(x)
        lam = float(x @ R @ x)
        if not lam > theta:
            break
        births.append(lam)
        Q = np.column_stack([Q, x])
        ranks.append(numerical_rank(Q))
    return CaptureResult(Q, tuple(births), lam, tuple(ranks), (math.inf,) * len(births), (), "power")


@pytest.mark.claim("G4", "property")
def test_g4_holds_for_a_nonsymmetric_operator_with_a_real_simple_spectrum() -> None:
    claim = REGISTRY["G4"]
    assert "operator_symmetric" in claim.no_falsifier
    A = _nonsymmetric_real_spectrum()
    theta = 1.0
    runs = (
        fzi.greedy_capture_general(A, theta, max_events=4),
        _greedy_by_power_iteration(A, theta, 1),
        _greedy_by_power_iteration(A, theta, 2),
    )
    assert [r.m for r in runs] == [2, 2, 2]
    np.testing.assert_allclose(runs[0].lam_births, [3.0, 2.0], atol=1e-12)
    assert claim.conclusion_holds(A=A, theta=theta, captures=runs)
    # ... while what symmetry buys elsewhere is lost: the second direction is not an eigenvector (G2)
    assert not REGISTRY["G2"].conclusion_holds(A=A, theta=theta, capture=runs[0])


def test_g4_is_undefined_for_a_complex_spectrum() -> None:
    A = np.array([[0.0, 1.0], [-1.0, 0.0]]) + 2.0 * np.eye(2)  # eigenvalues 2 ± i
    with pytest.raises(ValueError, match="not real"):
        fzi.greedy_capture_general(A, 1.0, max_events=2)


# --------------------------------------------------------------------------------------------------
# The direct evaluations of the INCRT statements can fail
# --------------------------------------------------------------------------------------------------


def test_g6_limit_of_a_run_inside_the_hypotheses_reaches_the_oracle() -> None:
    inputs = _valid_inputs("G6")
    ang, err = fzi.tracker_limit(inputs["A"], inputs["tracker"])
    assert ang <= fzi.DIRECTION_TOL
    assert err <= fzi.DIRECTION_TOL


@pytest.mark.parametrize(
    "predicate",
    [fzi.step_size_any_operator, fzi.tracked_gap_any_operator, fzi.start_not_orthogonal_any_operator],
    ids=lambda f: f.__name__,
)
def test_g6_predicates_on_any_operator_agree_with_the_reference_on_symmetric_ones(
    predicate: Callable[..., bool],
) -> None:
    inputs = _valid_inputs("G6")
    assert predicate(**inputs)
    repeated = planted_operator([1.0, 1.0, -1.0], rng=np.random.default_rng(3))
    tr = oja_track(repeated, np.ones(3), 3.0 * certified_step(repeated), 5)
    assert fzi.tracked_gap_any_operator(A=repeated, tracker=tr) is False
    assert fzi.step_size_any_operator(A=repeated, tracker=tr) is False


def test_g5_hysteresis_on_any_operator_agrees_with_the_reference() -> None:
    inputs = _valid_inputs("G5")
    from reference.invariants.pruning import hysteresis

    assert fzi.hysteresis_any_operator(**inputs) == hysteresis(**inputs) is True
    assert fzi.hysteresis_any_operator(**{**inputs, "theta": 0.5}) == hysteresis(**{**inputs, "theta": 0.5}) is False
