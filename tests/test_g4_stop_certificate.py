"""G4's count in two halves: "at most m*" (decided by the births) and "at least m*" (by the stop), each a
violation only where what decided it is certified (:func:`reference.invariants.incrt.births_decided`,
:func:`reference.invariants.incrt.stop_certified` from ``CaptureResult.final_error``).

Exact constructions: diagonal operators with dyadic eigenvalues, so ``m* = #{λ_i > θ}`` and every decision
below is far from a near-tie; no comparison depends on BLAS-derived bits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference.incrt.capture as rcap
import reference.invariants.incrt as inv
from reference.incrt.operators import deflate, eigh_error_bound
from reference.incrt.trackers import certified_step, oja_track
from reference.invariants.result import ClaimViolation, InvariantResult

# λ = 2, 1, 1/4, −1/2 and θ = 1/2: m* = 2, the nearest eigenvalue to θ a quarter away.
A4 = np.diag([2.0, 1.0, 0.25, -0.5])
THETA = 0.5


def _one(results: tuple[InvariantResult, ...], check: str) -> InvariantResult:
    found = [r for r in results if r.check == check]
    assert len(found) == 1, [r.check for r in results]
    return found[0]


def _e(d: int, *idx: int) -> np.ndarray:
    return np.eye(d)[:, list(idx)]


def _hand_made(
    A: np.ndarray, cols: tuple[int, ...], final: float, final_error: float, method: str
) -> rcap.CaptureResult:
    """A capture of the eigenvectors ``e_cols`` (exact), births at their eigenvalues, a given stop."""
    Q = _e(A.shape[0], *cols)
    births = tuple(float(A[c, c]) for c in cols)
    ranks = tuple(range(len(cols) + 1))
    errs = tuple(eigh_error_bound(deflate(A, Q[:, :k])) for k in range(len(cols)))
    return rcap.CaptureResult(Q, births, final, ranks, errs, (), method, final_error)


# --------------------------------------------------------------------------------------------------
# The certificates the captures record
# --------------------------------------------------------------------------------------------------


def test_default_final_error_is_uncertified_and_bad_values_are_refused() -> None:
    Q = _e(4, 0)
    cap = rcap.CaptureResult(Q, (2.0,), 1.0, (0, 1), (0.0,), (), "hand")
    assert cap.final_error == math.inf
    assert not inv.stop_certified(cap, THETA)
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="final_error"):
            rcap.CaptureResult(Q, (2.0,), 1.0, (0, 1), (0.0,), (), "hand", bad)


def test_exact_capture_records_eighs_error_of_the_stopping_operator() -> None:
    cap = rcap.greedy_capture(A4, THETA)
    assert cap.m == 2
    assert cap.final_error == eigh_error_bound(deflate(A4, cap.Q_cap))
    assert inv.stop_certified(cap, THETA)


def test_stop_certified_at_the_edges() -> None:
    """``λ̂ + F ≤ θ`` certifies (here ``1/4 + 1/4 = 1/2`` exactly); one ulp more of ``F`` does not."""
    at = _hand_made(A4, (0, 1), 0.25, 0.25, "oja")
    past = _hand_made(A4, (0, 1), 0.25, math.nextafter(0.25, 1.0), "oja")
    assert inv.stop_certified(at, THETA)
    assert not inv.stop_certified(past, THETA)
    above = _hand_made(A4, (0,), 1.0, 0.25, "eigh")  # certified λ_max > θ: a stop the rule forbids
    assert inv.stop_certified(above, THETA)
    tie = _hand_made(A4, (0, 1), THETA, 1e-15, "eigh")  # within the DECISION band on both sides
    assert inv.stop_certified(tie, THETA)


@pytest.mark.parametrize("n_steps", [0, 1, 5, 50, 400])
def test_stop_error_bounds_the_rayleigh_quotients_error(n_steps: int) -> None:
    """``|ρ̂ − λ_max(R)| ≤ stop_error`` for a converged and for an unconverged tracker (the latter through
    ``sin² ≤ 1``), and on an operator whose captured directions' zeros make the top eigenvalue repeated."""
    rng = np.random.default_rng(3)
    for A, Q in ((A4, _e(4, 0)), (A4, _e(4, 0, 1)), (np.diag([2.0, 1.0, -1.0, -1.0]), _e(4, 0, 1))):
        R = deflate(A, Q)
        w0 = rng.standard_normal(4)
        w0 = w0 - Q @ (Q.T @ w0)
        res = oja_track(R, w0, certified_step(A), n_steps)
        lam_max = float(np.max(np.diag(R)))  # R is diagonal here: its eigenvalues are its diagonal
        assert abs(res.estimate - lam_max) <= rcap.stop_error(R, res)


# --------------------------------------------------------------------------------------------------
# check_g4's count halves
# --------------------------------------------------------------------------------------------------


def test_exact_run_one_birth_short_is_violated() -> None:
    """(1) An exact run that stopped with one birth too few (λ_max of its stopping operator is 1 > θ, known
    to eigh's error): "count at least m*" is certified and fails by exactly one — and so does "same count"."""
    short = _hand_made(A4, (0,), 1.0, eigh_error_bound(deflate(A4, _e(4, 0))), "eigh")
    results = inv.check_g4(A=A4, theta=THETA, captures=[rcap.greedy_capture(A4, THETA), short])
    low = _one(results, "run 1: count at least m*")
    assert low.certified
    assert not low.holds
    assert low.value == 1.0
    assert low.bound == 0.0
    same = _one(results, "runs 0,1: same count")
    assert same.certified
    assert not same.holds
    assert _one(results, "run 1: count at most m*").holds
    with pytest.raises(ClaimViolation, match="count at least"):
        inv.check_g4(A=A4, theta=THETA, captures=[short], raise_on_violation=True)


def test_exact_run_at_another_threshold_is_violated_both_ways() -> None:
    """The exact greedy runs at θ = 3/2 (one birth) and θ = 1/8 (three births), checked at θ = 1/2."""
    short, long_ = rcap.greedy_capture(A4, 1.5), rcap.greedy_capture(A4, 0.125)
    assert (short.m, long_.m) == (1, 3)
    low = _one(inv.check_g4(A=A4, theta=THETA, captures=[short]), "run 0: count at least m*")
    assert low.certified
    assert not low.holds
    high = _one(inv.check_g4(A=A4, theta=THETA, captures=[long_]), "run 0: count at most m*")
    assert high.certified
    assert not high.holds
    assert high.value == 1.0


def test_unconverged_tracker_stop_is_uncertified_not_violated() -> None:
    """(2) One Oja step per round on ``diag(1, 7/8, 0, …, 0)`` (d = 32, θ = 1/2, m* = 2): a random start's
    Rayleigh quotient is about 2/32, so the run stops at once with m = 0; its certificate cannot place
    ``λ_max`` below θ, so the lower count (and "same count" against the exact run) is uncertified."""
    A = np.diag([1.0, 0.875] + [0.0] * 30)
    tracked = rcap.greedy_capture_tracked(A, THETA, rng=np.random.default_rng(0), n_steps=1)
    assert tracked.m < 2
    assert tracked.final_lam_max <= THETA
    assert tracked.final_lam_max + tracked.final_error > THETA
    exact = rcap.greedy_capture(A, THETA)
    results = inv.check_g4(A=A, theta=THETA, captures=(exact, tracked), raise_on_violation=True)
    for check in ("run 1: count at least m*", "runs 0,1: same count"):
        r = _one(results, check)
        assert r.holds
        assert not r.certified
        assert r.bound == math.inf
        assert r.value > 0.0
    assert _one(results, "run 0: count at least m*").certified
    assert "UNCERTIFIED" in _one(results, "run 1: count at least m*").describe()


def test_converged_tracker_stop_is_certified_and_held() -> None:
    """(3) 400 steps per round on the well-gapped ``A4``: every stop certified, every count check held."""
    runs = [rcap.greedy_capture(A4, THETA)] + [
        rcap.greedy_capture_tracked(A4, THETA, rng=np.random.default_rng(s), n_steps=400) for s in (1, 2)
    ]
    assert [r.m for r in runs] == [2, 2, 2]
    results = inv.check_g4(A=A4, theta=THETA, captures=runs, raise_on_violation=True)
    counts = [r for r in results if "count" in r.check]
    assert len(counts) == 3 * 2 + 3
    assert all(r.certified and r.holds for r in counts)
    for r in runs[1:]:
        assert r.final_lam_max + r.final_error <= THETA
        assert r.final_error < 2.0**-20


def test_tracker_stop_below_repeated_zero_is_certified_through_the_spread() -> None:
    """After capturing 2 and 1 of ``diag(2, 1, −1, −1)`` the stopping operator's top eigenvalue is the captured
    directions' 0 (repeated: no tracker certificate, ``τ = ∞``), yet ``ρ̂ + Δ ≤ θ`` still places it below θ."""
    A = np.diag([2.0, 1.0, -1.0, -1.0])
    run = rcap.greedy_capture_tracked(A, THETA, rng=np.random.default_rng(1), n_steps=400)
    assert run.m == 2
    assert inv.stop_certified(run, THETA)
    assert _one(inv.check_g4(A=A, theta=THETA, captures=[run]), "run 0: count at least m*").certified


def test_certified_stop_with_too_few_births_is_violated() -> None:
    """(4) A run whose stop is certified (statistic 1/4, error 2^-20: λ_max ≤ θ) but which has one birth:
    the count is short although the stop was right — a genuine violation, reported as one."""
    cap = _hand_made(A4, (0,), 0.25, 2.0**-20, "oja")
    assert inv.stop_certified(cap, THETA)
    low = _one(inv.check_g4(A=A4, theta=THETA, captures=[cap]), "run 0: count at least m*")
    assert low.certified
    assert not low.holds
    assert low.value == 1.0
    with pytest.raises(ClaimViolation):
        inv.check_g4(A=A4, theta=THETA, captures=[cap], raise_on_violation=True)


def _over_count(method_error: float) -> rcap.CaptureResult:
    """``A = diag(3, 0, 0)``, θ = 1 (m* = 1): births along ``(e₁ + e₂)/√2`` (Rayleigh quotient 3/2), which
    leaves ``(e₁ − e₂)/√2`` at 3/2 in ``Π⊥AΠ⊥``, captured next: two births, each statistic above θ, with
    the given certified error per birth."""
    s = 2.0**-0.5
    Q = np.array([[s, s], [s, -s], [0.0, 0.0]])
    return rcap.CaptureResult(Q, (1.5, 1.5), 0.0, (0, 1, 2), (method_error,) * 2, (), "oja", 2.0**-20)


def test_an_excess_count_from_an_uncertified_birth_is_not_a_violation() -> None:
    """A tracker birth along an inaccurate direction (error 2: the interval 1.5 ± L reaches θ = 1) can count
    past m*: "count at most m*" is uncertified, and check_g4 does not raise."""
    A = np.diag([3.0, 0.0, 0.0])
    results = inv.check_g4(A=A, theta=1.0, captures=[rcap.greedy_capture(A, 1.0), _over_count(2.0)])
    high = _one(results, "run 1: count at most m*")
    assert high.value == 1.0
    assert not high.certified
    assert not _one(results, "runs 0,1: same count").certified
    inv.check_g4(A=A, theta=1.0, captures=[_over_count(2.0)], raise_on_violation=True)


def test_an_excess_count_from_certified_births_is_violated() -> None:
    """The same two births claimed certified to 2^-30 (births decided above θ, so λ_1, λ_2 > θ would have to
    hold, and λ_2 = 0): the excess is evidence against the run, a violation."""
    A = np.diag([3.0, 0.0, 0.0])
    results = inv.check_g4(A=A, theta=1.0, captures=[rcap.greedy_capture(A, 1.0), _over_count(2.0**-30)])
    high = _one(results, "run 1: count at most m*")
    assert high.certified
    assert not high.holds
    assert _one(results, "runs 0,1: same count").certified
    with pytest.raises(ClaimViolation, match="count at most"):
        inv.check_g4(A=A, theta=1.0, captures=[_over_count(2.0**-30)], raise_on_violation=True)


def test_a_birth_at_a_statistic_below_theta_is_a_violation_whatever_its_error() -> None:
    """A port that appends one more tracked round after m* (reviewer's mutant): on ``diag(3, 2, −1/2, −1)``
    with θ = 1 its third birth's Rayleigh quotient is negative and the round's certified error is
    infinite (the deflated operator's top eigenvalue, 0, is repeated). The rule decides on λ̂ itself, so
    the excess count is a violation, not "uncertified"."""
    A = np.diag([3.0, 2.0, -0.5, -1.0])
    Q = _e(4, 0, 1, 2)
    extra = rcap.CaptureResult(Q, (3.0, 2.0, -0.15625), -1.0, (0, 1, 2, 3), (2.0**-30, 2.0**-30, math.inf), (), "oja")
    high = _one(inv.check_g4(A=A, theta=1.0, captures=[extra]), "run 0: count at most m*")
    assert high.certified
    assert not high.holds
    with pytest.raises(ClaimViolation, match="count at most"):
        inv.check_g4(A=A, theta=1.0, captures=[extra], raise_on_violation=True)
