"""INCRT entry points on bad input: every error names the argument; symmetry is checked relative to the norm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _incrt_cases import A5

from reference.incrt import capture as rcap
from reference.incrt import operators as rops
from reference.incrt import trackers as rtrk
from reference.incrt.controller import GrowthConfig
from reference.invariants import pruning as rprune

rng0 = np.random.default_rng(0)


NONSYM = rng0.standard_normal((3, 3))


NAN_A = A5.copy()
NAN_A[0, 0] = np.nan


C3 = rops.second_moment(rng0.standard_normal((6, 3)))


M3 = rops.antisymmetric_part(rng0.standard_normal((3, 3)))


BAD: list[tuple[str, Callable[..., Any], tuple[Any, ...], str]] = [
    ("non-symmetric A", rcap.greedy_capture, (NONSYM, 1.0), "A"),
    ("theta = 0", rcap.greedy_capture, (A5, 0.0), "theta"),
    ("theta < 0", rops.count_above, (A5, -1.0), "theta"),
    ("NaN", rops.exact_extremes, (NAN_A,), "A"),
    ("float32", rops.deflate, (A5.astype(np.float32), np.zeros((5, 0))), "A"),
    ("non-square", rops.exact_extremes, (np.zeros((2, 3)),), "A"),
    ("Q_cap wrong d", rops.residual_operator, (C3, M3, np.zeros((4, 1))), "Q_cap"),
    ("M_a not antisymmetric", rops.residual_operator, (C3, NONSYM, np.zeros((3, 0))), "M_a"),
    ("C not symmetric", rops.commutator_form, (NONSYM, M3), "C"),
    ("no heads", rops.directional_operator, ([],), "Ms"),
    ("eta = 0", rtrk.oja_step, (A5, np.ones(5), 0.0), "eta"),
    ("w = 0", rtrk.mca_exin_step, (A5, np.zeros(5), 0.1), "w"),
    ("n_steps < 0", rtrk.oja_track, (A5, np.ones(5), 0.1, -1), "n_steps"),
    ("u in Q_cap", rcap.append_direction, (np.eye(3)[:, :1], np.array([1.0, 0.0, 0.0])), "u"),
    ("Q_cap full", rcap.append_direction, (np.eye(2), np.array([1.0, 0.0])), "Q_cap"),
    (
        "attention not stochastic (G5's output check, its boundary)",
        lambda A: rprune.check_g5(
            C=np.eye(2),
            head_operators=[0.1 * np.array([[0.0, 1.0], [-1.0, 0.0]])],
            h=0,
            Q_cap=np.zeros((2, 0)),
            theta=1.0,
            output=rprune.PruneOutput(
                A_h=A,
                X=np.ones((1, 2, 2)),
                W_V=np.ones((2, 1)),
                W_O=np.ones((1, 2)),
                U_h=np.zeros((1, 2, 2)),
                dY=np.zeros((1, 2, 2)),
                P=np.ones((2, 2)),
                T_P=1.0,
                W_c=np.ones((2, 2)),
                loss_before=0.0,
                loss_after=0.0,
            ),
        ),
        (np.ones((1, 2, 2)),),
        "A_h",
    ),
    ("T_P = 0", rprune.prototype_lipschitz, (np.ones((2, 2)), 0.0), "T_P"),
]


TINY_NONSYM = 1e-20 * NONSYM  # an absolute tolerance (1e-12) would call this symmetric and antisymmetric


BAD += [
    ("tiny non-symmetric A", rops.exact_extremes, (TINY_NONSYM,), "A"),
    ("tiny non-symmetric C", rops.commutator_form, (TINY_NONSYM, M3), "C"),
    ("tiny non-antisymmetric M_a", rops.commutator_form, (C3, TINY_NONSYM), "M_a"),
    (
        "eigenvalues NaN",
        lambda lam: rops.planted_operator(lam, rng=np.random.default_rng(0)),
        ([1.0, np.nan],),
        "eigenvalues",
    ),
]


@pytest.mark.parametrize(("what", "fn", "args", "name"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_argument(what: str, fn: Callable[..., Any], args: tuple[Any, ...], name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        fn(*args)


def test_symmetry_check_is_relative_to_the_norm() -> None:
    """Purely relative: the same asymmetry pattern is accepted or refused at every scale alike."""
    for scale in (1e-300, 1e-20, 1.0, 1e20, 1e300):
        A = scale * A5
        tol = rops.symmetry_tolerance(A)
        rops.check_symmetric("A", A)  # exactly symmetric: accepted
        B = A.copy()
        B[0, 1] += 0.5 * tol  # within the rounding of two d-term products: accepted, and returned unchanged
        assert rops.check_symmetric("A", B) is B
        B[0, 1] += 2.0 * tol
        with pytest.raises(ValueError, match=r"\bA\b.*symmetric"):
            rops.check_symmetric("A", B)
    tiny_anti = 1e-20 * M3
    assert rops.check_symmetric("M_a", tiny_anti, sign=-1.0) is tiny_anti
    with pytest.raises(ValueError, match=r"M_a.*antisymmetric"):
        rops.check_symmetric("M_a", 1e-20 * NONSYM, sign=-1.0)
    zero = np.zeros((3, 3))
    assert rops.check_symmetric("A", zero) is zero


# ---- issue 10 (hostile inputs): a tracker kind given as a string -----------------------------------


def test_a_tracker_kind_string_is_refused_naming_the_argument() -> None:
    """``"oja"`` used to be compared with ``is`` and silently select the minor eigenvector; now refused
    (by the run-time type check under pytest, by check_tracker_kind otherwise: both name the argument)."""
    from reference.incrt.trackers import TrackerKind, TrackerResult, check_tracker_kind, contraction_factor

    w = np.array([1.0, 0.0, 0.0])
    lam = np.array([2.0, 1.0, -1.0])
    with pytest.raises((TypeError, ValueError), match="kind"):
        TrackerResult("oja", w, w, 0.1, np.array([0.1]), 1.0)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError), match="which"):
        contraction_factor(lam, 0.1, "mca_exin")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"kind: expected a TrackerKind, got str 'oja' \(use TrackerKind\('oja'\)\)"):
        check_tracker_kind("kind", "oja")
    assert check_tracker_kind("kind", TrackerKind.MCA_EXIN) is TrackerKind.MCA_EXIN


# ---- issue 10 (hostile inputs): zero vectors and huge integers ------------------------------------


def test_zero_vectors_are_refused_instead_of_giving_nan() -> None:
    from reference.growth_phases import warm_start
    from reference.incrt.capture import append_direction
    from reference.incrt.trackers import angle

    with pytest.raises(ValueError, match="u: is the zero vector"):
        append_direction(np.zeros((3, 0)), np.zeros(3))
    with pytest.raises(ValueError, match="v: is the zero vector"):
        angle(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="w: is the zero vector"):
        angle(np.ones(3), np.zeros(3))
    for Q_cap in (np.zeros((3, 0)), np.eye(3)[:, :1]):
        with pytest.raises(ValueError, match="w: the tracker vector is zero"):
            warm_start(np.zeros(3), Q_cap)


def test_a_huge_integer_scalar_is_refused_naming_the_argument() -> None:
    """``float(10**400)`` raises OverflowError; the scalar checks every config goes through say which
    argument it was (under pytest the run-time type check refuses an int for a float parameter first)."""
    from reference._arrays import check_real
    from reference.incrt.operators import check_theta

    with pytest.raises(ValueError, match=r"theta: must be finite in float64, got an integer of 401 digits"):
        check_theta("theta", 10**400)
    with pytest.raises(ValueError, match=r"phi_g: must be finite in float64"):
        check_real("phi_g", -(10**400))
    assert check_real("x", 10**300) == 1e300


def test_g1_refuses_fractional_ranks_instead_of_truncating_them() -> None:
    from reference.invariants.incrt import check_g1

    Q = np.eye(3)[:, :1]
    assert all(r.holds for r in check_g1(Q_cap=Q, ranks=[0, 1], theta=1.0))
    # ours names ranks[1]; the run-time type check under pytest (which samples one element) names ranks
    with pytest.raises((TypeError, ValueError), match="ranks"):
        check_g1(Q_cap=Q, ranks=[0, 1.5], theta=1.0)  # int(1.5) used to read as rank 1
    from reference.invariants import incrt as inv_incrt

    with pytest.raises(TypeError, match=r"ranks\[1\]: expected an int"):
        inv_incrt.check_count("ranks[1]", 1.5, 0)


# --------------------------------------------------------------------------------------------------
# Issue 10's hostile-input findings (each test names its finding)
# --------------------------------------------------------------------------------------------------


def test_theta_below_the_oracles_error_bound_is_refused() -> None:
    """Finding 3: θ = 1e-16, below eigh's a-priori error, used to crash greedy_capture (and train) with an
    orthogonality error; now greedy capture and grow_check refuse it naming theta and the bound."""
    from reference.incrt import controller as rctl

    E = rops.eigh_error_bound(A5)
    assert E > 1e-16  # the premise: the bound of this O(1) operator is above 1e-16
    with pytest.raises(
        ValueError, match=r"theta: θ = 1e-16 is not above the exact eigen-oracle's a-priori error bound"
    ):
        rcap.greedy_capture(A5, 1e-16)
    with pytest.raises(ValueError, match=r"theta: .*error bound E ="):
        rcap.greedy_capture_tracked(A5, 1e-16, rng=np.random.default_rng(0), n_steps=5)
    cfg = rctl.GrowthConfig(theta=1e-16, phi_g=0.0, T_d=0, T_prune=1, eps_K=0.0)
    state = rctl.GrowthState(np.zeros((A5.shape[0], 0)), 0, (rctl.HeadRecord(0, 0),), ())
    with pytest.raises(ValueError, match=r"config.theta: θ = 1e-16 is not above"):
        rctl.grow_check(state, cfg, A5, 1, new_head_id=1)
    # Just above the bound the capture runs and captures every positive eigenvalue (G3).
    cap = rcap.greedy_capture(A5, 2.0 * E)
    assert cap.m == int(np.count_nonzero(np.linalg.eigvalsh(A5) > 2.0 * E))


def test_incrt_overflow_is_refused_naming_the_inputs() -> None:
    """Finding 6: second_moment returned inf and head_strength NaN (which never prunes) at huge inputs."""
    X = rng0.standard_normal((6, 3))
    with pytest.raises(FloatingPointError, match=r"second_moment: the result overflowed float64 .*the inputs X"):
        rops.second_moment(X * 1e160)
    M = rops.antisymmetric_part(rng0.standard_normal((3, 3)))
    with pytest.raises(FloatingPointError, match=r"head_strength: .*the inputs C, M_a_h"):
        rops.head_strength(C3 * 1e300, M * 1e300)
    assert np.isfinite(rops.head_strength(C3 * 1e150, M * 1e150))


@pytest.mark.parametrize(
    ("field", "value"),
    [("phi_g", "0.1"), ("hysteresis", "no"), ("T_d", 2.5), ("eps_K", float("nan")), ("theta", "1")],
)
def test_growth_config_refuses_ill_typed_fields_naming_them(field: str, value: object) -> None:
    """Finding 11: ``GrowthConfig(phi_g="0.1")`` must not fail inside NumPy, nor ``hysteresis="no"`` be
    taken as true."""
    kwargs: dict[str, object] = {"theta": 1.0, "phi_g": 0.01, "T_d": 10, "T_prune": 2, "eps_K": 0.01, field: value}
    with pytest.raises((TypeError, ValueError), match=field):
        GrowthConfig(**kwargs)  # type: ignore[arg-type]
