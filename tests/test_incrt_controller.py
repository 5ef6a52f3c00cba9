"""The INCRT growth controller (SPEC §3.2–§3.5): grow, prune and prototype-prune decisions at their
boundaries, calibration, and the controller's own validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reference.falsify import incrt as fz
from reference.incrt import controller as rctl
from reference.incrt import operators as rops
from reference.tolerances import CheckKind, accumulation_bound, tolerance


def _diag_res(lam_max: float, d: int = 3) -> np.ndarray:
    out: np.ndarray = np.diag([lam_max] + [-1.0] * (d - 1))
    return out


def test_grow_check_respects_threshold_dwell_and_reports_near_ties() -> None:
    cfg = rctl.GrowthConfig(theta=1.0, phi_g=0.01, T_d=5, T_prune=2, eps_K=0.01)
    s0 = rctl.initial_state(3, K_max=4)
    s, ev = rctl.grow_check(s0, cfg, _diag_res(2.0), step=3, new_head_id=1)  # dwell not over
    assert s.m == 0
    assert ev == ()
    s, ev = rctl.grow_check(s0, cfg, _diag_res(0.5), step=10, new_head_id=1)  # below θ
    assert s.m == 0
    assert ev == ()
    s, ev = rctl.grow_check(s0, cfg, _diag_res(2.0), step=10, new_head_id=1)
    assert s.m == 1
    assert s.head_ids == (0, 1)
    assert s.last_growth_step == 10
    (birth,) = ev
    assert birth.kind is rctl.EventKind.BIRTH
    assert birth.head_id == 1
    assert abs(birth.margin - 1.0) <= rops.eigh_error_bound(_diag_res(2.0))  # λ̂_max − θ, λ̂ within E of 2
    assert birth.u_plus is not None
    assert abs(abs(birth.u_plus[0]) - 1.0) <= tolerance("float64", CheckKind.VALUE).rtol
    tie = 1.0 + 0.5 * tolerance("float64", CheckKind.DECISION).rtol  # a near-tie: reported, decided exactly
    s, ev = rctl.grow_check(s0, cfg, _diag_res(tie), step=10, new_head_id=1)
    kinds = [e.kind for e in ev]
    assert kinds == [rctl.EventKind.NEAR_TIE, rctl.EventKind.BIRTH]
    assert ev[0].decision == "grow"


def test_prune_check_counts_patience_and_applies_hysteresis() -> None:
    C, Ms, theta, phi_g = fz.g5_oscillation_case()
    state = rctl.GrowthState(np.zeros((2, 0)), 0, (rctl.HeadRecord(0, 0), rctl.HeadRecord(1, 0)), ())
    ops = {0: Ms[0], 1: Ms[1]}
    cfg = rctl.GrowthConfig(theta=theta, phi_g=phi_g, T_d=0, T_prune=2, eps_K=0.0, hysteresis=False)
    s1, ev1 = rctl.prune_check(state, cfg, C, ops, step=1)
    assert s1.head_ids == (0, 1)
    assert ev1 == ()
    assert s1.heads[1].below_count == 1
    s2, ev2 = rctl.prune_check(s1, cfg, C, ops, step=2)
    assert s2.head_ids == (0,)
    assert [e.kind for e in ev2] == [rctl.EventKind.HEAD_PRUNE]
    assert ev2[0].lam_max is not None
    assert ev2[0].margin > 0.0
    held, ev = rctl.prune_check(s1, rctl.GrowthConfig(theta=theta, phi_g=phi_g, T_d=0, T_prune=2, eps_K=0.0), C, ops, 2)
    assert held.head_ids == (0, 1)
    assert ev == ()
    # min_heads: the last head is never pruned; an old enough head only (T_d)
    one = rctl.GrowthState(np.zeros((2, 0)), 0, (rctl.HeadRecord(0, 0, below_count=5),), ())
    assert rctl.prune_check(one, cfg, C, {0: np.zeros((2, 2))}, step=3)[0].head_ids == (0,)
    young = rctl.GrowthConfig(theta=theta, phi_g=phi_g, T_d=10, T_prune=1, eps_K=0.0, hysteresis=False)
    assert rctl.prune_check(state, young, C, ops, step=2)[0].head_ids == (0, 1)


def test_prototype_prune_check() -> None:
    cfg = rctl.GrowthConfig(theta=1.0, phi_g=0.01, T_d=0, T_prune=2, eps_K=0.05)
    s = rctl.initial_state(2, K_max=3)
    mass = np.array([0.01, 0.5, 0.49])
    s, ev = rctl.prototype_prune_check(s, cfg, mass, step=1)
    assert s.prototype_ids == (0, 1, 2)
    assert ev == ()
    s, ev = rctl.prototype_prune_check(s, cfg, mass, step=2)
    assert s.prototype_ids == (1, 2)
    assert [e.kind for e in ev] == [rctl.EventKind.PROTOTYPE_PRUNE]
    assert ev[0].prototype_id == 0
    assert abs(ev[0].margin - 0.04) <= accumulation_bound(1, 0.05 + 0.01)  # fl(ε_K − n_j/n), one rounding
    s, ev = rctl.prototype_prune_check(s, cfg, np.array([0.5, 0.5]), step=3)
    assert s.prototype_ids == (1, 2)
    low = rctl.initial_state(2, K_max=1)
    kept, _ = rctl.prototype_prune_check(low, rctl.GrowthConfig(1.0, 0.0, 0, 1, 0.5), np.array([0.0]), 1)
    assert kept.prototype_ids == (0,)


def test_calibrate_thresholds() -> None:
    ops = [np.eye(2), 2 * np.eye(2), 3 * np.eye(2)]
    theta, phi = rctl.calibrate_thresholds(ops)
    # θ = 0.1·median‖A_i‖_F = 0.1·‖2I‖_F; frobenius sums d² = 4 squares, one sqrt, one rescale, one product
    assert abs(theta - 0.1 * 2 * np.sqrt(2)) <= accumulation_bound(4 + 4, 0.1 * 2 * np.sqrt(2))
    assert phi == 0.01 * theta  # the same expression, evaluated once: bit-identical
    with pytest.raises(ValueError, match="operators"):
        rctl.calibrate_thresholds([np.zeros((2, 2))])


def test_grow_check_validates_a_tracker_supplied_top_pair() -> None:
    cfg = rctl.GrowthConfig(theta=1.0, phi_g=0.01, T_d=0, T_prune=1, eps_K=0.0)
    s = rctl.initial_state(3, K_max=2)
    A = _diag_res(2.0)
    u = np.array([1.0, 0.0, 0.0])
    grown, ev = rctl.grow_check(s, cfg, A, step=1, new_head_id=1, top=(2.0, u))
    assert grown.m == 1
    assert [e.kind for e in ev] == [rctl.EventKind.BIRTH]
    bad: list[object] = [
        (np.nan, u),
        (np.inf, u),
        (-np.inf, u),
        ("2", u),
        (True, u),
        (2.0, np.array([1.0, 0.0])),
        (2.0, np.array([np.nan, 0.0, 0.0])),
        (2.0, np.zeros(3)),
        (2.0, u.astype(np.float32)),
        (2.0,),
        [2.0, u],
        (2.0, [1.0, 0.0, 0.0]),
    ]
    for top in bad:
        with pytest.raises((ValueError, TypeError), match=r"\btop\b"):
            rctl.grow_check(s, cfg, A, step=1, new_head_id=1, top=top)  # type: ignore[arg-type]


def test_prototype_prune_check_accepts_rounding_but_never_clips() -> None:
    cfg = rctl.GrowthConfig(theta=1.0, phi_g=0.01, T_d=0, T_prune=1, eps_K=0.05)
    s = rctl.initial_state(2, K_max=3)
    slack = tolerance("float64", CheckKind.STOCHASTIC).atol * 3  # per unit of K, K = 3
    mass = np.array([0.01, 1.0 + 0.5 * slack, -0.5 * slack])
    _, ev = rctl.prototype_prune_check(s, cfg, mass, step=1)
    pruned = [e for e in ev if e.kind is rctl.EventKind.PROTOTYPE_PRUNE]
    assert [e.prototype_id for e in pruned] == [2, 0]  # smallest mass first: the given −slack/2, not 0
    assert pruned[0].statistic == -0.5 * slack  # used as given, not clipped
    for m_bad in (np.array([0.01, 1.0 + 2.0 * slack, 0.0]), np.array([0.01, 0.5, -2.0 * slack])):
        with pytest.raises(ValueError, match=r"\bmass\b"):
            rctl.prototype_prune_check(s, cfg, m_bad, step=1)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"theta": 0.0}, "theta"),
        ({"phi_g": -1.0}, "phi_g"),
        ({"T_d": -1}, "T_d"),
        ({"T_prune": 0}, "T_prune"),
        ({"eps_K": 1.0}, "eps_K"),
    ],
)
def test_growth_config_validates(kwargs: dict[str, Any], name: str) -> None:
    base: dict[str, Any] = {"theta": 1.0, "phi_g": 0.01, "T_d": 0, "T_prune": 1, "eps_K": 0.0}
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        rctl.GrowthConfig(**base)


def test_controller_rejects_inconsistent_inputs() -> None:
    cfg = rctl.GrowthConfig(theta=1.0, phi_g=0.01, T_d=0, T_prune=1, eps_K=0.0)
    s = rctl.initial_state(3, K_max=2)
    rng = np.random.default_rng(0)
    C3, M3 = rops.second_moment(rng.standard_normal((6, 3))), rops.antisymmetric_part(rng.standard_normal((3, 3)))
    with pytest.raises(ValueError, match="head_operators"):
        rctl.prune_check(s, cfg, C3, {5: M3}, step=1)
    with pytest.raises((ValueError, TypeError), match="A_res"):
        rctl.grow_check(s, cfg, np.eye(4), step=1, new_head_id=1)
    with pytest.raises(ValueError, match="new_head_id"):
        rctl.grow_check(s, cfg, np.eye(3), step=1, new_head_id=0)  # names the active head
    with pytest.raises(ValueError, match="mass"):
        rctl.prototype_prune_check(s, cfg, np.array([0.5, 1.5]), step=1)


# --------------------------------------------------------------------------------------------------
# Decisions exactly at their boundaries (each test kills a mutant of scripts/mutation/mutants.toml)
# --------------------------------------------------------------------------------------------------

J2 = np.array([[0.0, 1.0], [-1.0, 0.0]])  # the antisymmetric unit of R²
C2 = np.diag([2.0, 0.0])  # ½[C2, m·J2] = m·[[0, 1], [1, 0]]: eigenvalues ±m; ‖C2 (m J2)‖_F = 2|m|


def _heads(*ms: float) -> dict[int, np.ndarray]:
    return {h: m * J2 for h, m in enumerate(ms)}


def _state(n_heads: int, *, birth: int = 0, below: int = 0) -> rctl.GrowthState:
    heads = tuple(rctl.HeadRecord(h, birth, below_count=below) for h in range(n_heads))
    return rctl.GrowthState(np.zeros((2, 0)), birth, heads, ())


def test_growth_at_exactly_theta_does_not_grow() -> None:
    """``λ_max > θ`` is strict (SPEC §3.2): λ_max = θ exactly is no birth; one ulp above is. [ctl-grow-at-equality]"""
    A = np.diag([0.5, 0.0, -0.5])  # eigh is exact on a diagonal matrix of dyadic rationals
    assert rops.exact_extremes(A).lam_max == 0.5
    s0 = rctl.initial_state(3, K_max=1)
    at = rctl.GrowthConfig(theta=0.5, phi_g=0.0, T_d=0, T_prune=1, eps_K=0.0)
    s, ev = rctl.grow_check(s0, at, A, step=1, new_head_id=1)
    assert s.m == 0
    assert [e.kind for e in ev] == [rctl.EventKind.NEAR_TIE]
    below = rctl.GrowthConfig(theta=float(np.nextafter(0.5, 0.0)), phi_g=0.0, T_d=0, T_prune=1, eps_K=0.0)
    assert rctl.grow_check(s0, below, A, step=1, new_head_id=1)[0].m == 1


def test_growth_at_the_first_step_the_dwell_allows() -> None:
    """``step − last_growth ≥ T_d``: exactly T_d steps after the last birth grows, one step earlier not.
    [ctl-dwell-strict]"""
    cfg = rctl.GrowthConfig(theta=1.0, phi_g=0.0, T_d=10, T_prune=1, eps_K=0.0)
    s0 = rctl.initial_state(3, K_max=1, step=5)
    assert rctl.grow_check(s0, cfg, _diag_res(2.0), step=14, new_head_id=1)[0].m == 0
    assert rctl.grow_check(s0, cfg, _diag_res(2.0), step=15, new_head_id=1)[0].m == 1


def test_no_growth_once_every_direction_is_captured() -> None:
    """With ``m = d`` nothing can be appended: no birth, and no error. [ctl-grow-when-full]"""
    full = rctl.GrowthState(np.eye(2), 0, (rctl.HeadRecord(0, 0),), ())
    cfg = rctl.GrowthConfig(theta=0.1, phi_g=0.0, T_d=0, T_prune=1, eps_K=0.0)
    s, ev = rctl.grow_check(full, cfg, np.diag([1.0, -1.0]), step=1, new_head_id=1)
    assert s.m == 2
    assert all(e.kind is not rctl.EventKind.BIRTH for e in ev)


def test_patience_counts_consecutive_checks_only() -> None:
    """One check above φ_g resets the counter: weak, weak, strong, weak with T_prune = 3 prunes nothing.
    [ctl-patience-not-reset]"""
    cfg = rctl.GrowthConfig(theta=10.0, phi_g=0.5, T_d=0, T_prune=3, eps_K=0.0)
    weak, strong = _heads(1.0, 0.1), _heads(1.0, 0.3)  # G_1 = 0.2 < φ_g, then 0.6 > φ_g
    s = _state(2)
    for step, ops in enumerate((weak, weak, strong, weak), start=1):
        s, _ = rctl.prune_check(s, cfg, C2, ops, step=step)
    assert s.head_ids == (0, 1)
    assert s.heads[1].below_count == 1


def test_a_head_exactly_at_phi_g_is_not_weak() -> None:
    """``G_h < φ_g`` is strict: ``G_h = φ_g`` leaves the counter at 0. [ctl-weak-at-equality]"""
    ops = _heads(1.0, 0.125)
    G1 = rops.head_strength(C2, ops[1])
    cfg = rctl.GrowthConfig(theta=10.0, phi_g=G1, T_d=0, T_prune=1, eps_K=0.0)
    s, ev = rctl.prune_check(_state(2), cfg, C2, ops, step=1)
    assert s.heads[1].below_count == 0
    assert s.head_ids == (0, 1)
    assert [e.kind for e in ev] == [rctl.EventKind.NEAR_TIE]


def test_prune_after_exactly_t_prune_checks_and_exactly_t_d_steps() -> None:
    """Patience ``≥ T_prune`` and age ``≥ T_d`` are both inclusive. [ctl-patience-strict, ctl-prune-age-strict]"""
    cfg = rctl.GrowthConfig(theta=10.0, phi_g=0.5, T_d=7, T_prune=2, eps_K=0.0)
    ops = _heads(1.0, 0.1)
    s = _state(2, birth=3)
    s, ev = rctl.prune_check(s, cfg, C2, ops, step=9)  # first weak check; age 6
    assert ev == ()
    s, ev = rctl.prune_check(s, cfg, C2, ops, step=10)  # second weak check (= T_prune), age 7 (= T_d)
    assert s.head_ids == (0,)
    assert [e.kind for e in ev] == [rctl.EventKind.HEAD_PRUNE]


def test_hysteresis_of_a_second_prune_uses_the_heads_still_present() -> None:
    """Two weak heads at one check: after head 1 goes, head 2's hysteresis sees ``M_a`` of heads {0, 2}.

    ``λ_max = |Σ m_h|`` and ``G_h = 2|m_h|`` here. Head 1 (G = 0.2) first: |1 − 0.1 + 0.12| + 0.2 = 1.22
    ≤ θ = 1.3, pruned. Head 2 (G = 0.24): with heads {0, 2}, |1 + 0.12| + 0.24 = 1.36 > θ, kept (with the
    stale set {0, 1, 2} it would read 1.02 + 0.24 = 1.26 and be pruned). [ctl-hysteresis-stale-heads]
    """
    cfg = rctl.GrowthConfig(theta=1.3, phi_g=0.3, T_d=0, T_prune=1, eps_K=0.0)
    s, ev = rctl.prune_check(_state(3), cfg, C2, _heads(1.0, -0.1, 0.12), step=1)
    assert s.head_ids == (0, 2)
    assert [(e.kind, e.head_id) for e in ev] == [(rctl.EventKind.HEAD_PRUNE, 1)]


def test_hysteresis_met_with_equality_prunes() -> None:
    """``λ_max + G_h ≤ θ`` is inclusive: 0.875 + 0.25 = 1.125 = θ (all dyadic, computed exactly) prunes.
    [ctl-hysteresis-strict]"""
    ops = _heads(0.75, 0.125)
    lam = rops.exact_extremes(rops.residual_operator(C2, ops[0] + ops[1], np.zeros((2, 0)))).lam_max
    G1 = rops.head_strength(C2, ops[1])
    assert (lam, G1) == (0.875, 0.25)
    cfg = rctl.GrowthConfig(theta=1.125, phi_g=0.3, T_d=0, T_prune=1, eps_K=0.0)
    assert rctl.prune_check(_state(2), cfg, C2, ops, step=1)[0].head_ids == (0,)


def test_min_heads_is_a_floor() -> None:
    """With ``min_heads = 2`` two weak heads both stay. [ctl-min-heads-off-by-one]"""
    cfg = rctl.GrowthConfig(theta=10.0, phi_g=0.5, T_d=0, T_prune=1, eps_K=0.0, min_heads=2)
    s, ev = rctl.prune_check(_state(2), cfg, C2, _heads(0.1, 0.1), step=1)
    assert s.head_ids == (0, 1)
    assert all(e.kind is not rctl.EventKind.HEAD_PRUNE for e in ev)


def test_prototype_mass_at_exactly_eps_k_is_not_idle_and_patience_is_inclusive() -> None:
    """``n_j/n < ε_K`` is strict, and a prototype goes after exactly ``T_prune`` idle checks.
    [ctl-prototype-low-at-equality, ctl-prototype-patience-strict]"""
    cfg = rctl.GrowthConfig(theta=1.0, phi_g=0.0, T_d=0, T_prune=2, eps_K=0.25)
    s = rctl.initial_state(2, K_max=3)
    s, _ = rctl.prototype_prune_check(s, cfg, np.array([0.25, 0.5, 0.25]), step=1)
    assert [p.low_mass_count for p in s.prototypes] == [0, 0, 0]
    low = np.array([0.125, 0.5, 0.375])
    s, ev = rctl.prototype_prune_check(s, cfg, low, step=2)
    assert ev == ()
    s, ev = rctl.prototype_prune_check(s, cfg, low, step=3)
    assert s.prototype_ids == (1, 2)
    assert [e.kind for e in ev] == [rctl.EventKind.PROTOTYPE_PRUNE]


def test_calibration_takes_the_median_not_the_mean() -> None:
    """θ = c_θ · median ‖A_res‖_F (SPEC §3.4) on norms whose mean and median differ. [ctl-calibration-mean]"""
    ops = [np.eye(2), 2.0 * np.eye(2), 9.0 * np.eye(2)]  # ‖·‖_F = √2·(1, 2, 9): median 2√2, mean 4√2
    theta, phi = rctl.calibrate_thresholds(ops, c_theta=0.5)
    expected = 0.5 * 2.0 * np.sqrt(2.0)
    assert abs(theta - expected) <= accumulation_bound(8, expected)
    assert abs(phi - 0.01 * expected) <= accumulation_bound(9, 0.01 * expected)
