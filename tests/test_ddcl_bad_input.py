"""Bad input to every public DDCL/DCL function raises a clear ValueError/TypeError naming the argument.

Under pytest jaxtyping checks shapes/dtypes first (its TypeError names the parameter); outside pytest the
reference's own validation does (ValueError/TypeError naming the argument). Both are accepted here, and
``test_own_validation_without_jaxtyping`` checks the reference's own messages directly.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from reference import dcl, ddcl

rng = np.random.default_rng(0)
Y = rng.normal(size=(5, 3))
P = rng.normal(size=(3, 4))
Q = ddcl.assignments(Y, P, 1.0)
D = ddcl.squared_distances(Y, P)
NAN_Y = Y.copy()
NAN_Y[1, 1] = np.nan
INF_P = P.copy()
INF_P[0, 0] = np.inf
BAD_Q = Q.copy()
BAD_Q[0] *= 1.1  # rows no longer sum to 1

CASES: list[tuple[str, Callable[..., Any], tuple[Any, ...], str]] = [
    ("shape mismatch", ddcl.squared_distances, (Y, rng.normal(size=(2, 4))), "P"),
    ("NaN", ddcl.squared_distances, (NAN_Y, P), "Y"),
    ("Inf", ddcl.free_energy, (Y, INF_P, 1.0), "P"),
    ("float32", ddcl.squared_distances, (Y.astype(np.float32), P), "Y"),
    ("list", ddcl.squared_distances, (Y.tolist(), P), "Y"),
    ("empty batch", ddcl.squared_distances, (np.zeros((0, 3)), P), "Y"),
    ("K < 1", ddcl.squared_distances, (Y, np.zeros((3, 0))), "P"),
    ("T_P = 0", ddcl.soft_assignments, (D, 0.0), "T_P"),
    ("T_P < 0", ddcl.free_energy, (Y, P, -1.0), "T_P"),
    ("T_P NaN", ddcl.assignments, (Y, P, float("nan")), "T_P"),
    ("negative distances", ddcl.soft_assignments, (-D, 1.0), "D"),
    ("non-stochastic Q", ddcl.quantisation_loss, (Y, P, BAD_Q), "Q"),
    ("negative Q", ddcl.ols_loss, (Y, P, Q - 0.5), "Q"),
    ("Q wrong K", ddcl.prototype_variance, (P, Q[:, :3] / Q[:, :3].sum(1, keepdims=True)), "Q"),
    ("Q wrong n", ddcl.grad_quantisation_fixed_Q, (Y, P, Q[:4]), "Q"),
    ("non-stochastic Q", ddcl.mean_entropy, (BAD_Q,), "Q"),
    ("non-stochastic Q", ddcl.assignment_covariance, (BAD_Q,), "Q"),
    ("non-stochastic Q", ddcl.grad_variance_fixed_Q, (P, BAD_Q), "Q"),
    ("G wrong shape", ddcl.pullback_distances, (Y, P, Q[:, :3]), "G"),
    ("eta = 0", ddcl.prototype_step, (Y, P, 1.0, 0.0), "eta"),
    ("T_P = 0", ddcl.grad_free_energy, (Y, P, 0.0), "T_P"),
    ("T_P = 0", ddcl.grad_quantisation_full, (Y, P, 0.0), "T_P"),
    ("T_P = 0", ddcl.hessian_free_energy, (Y, P, 0.0), "T_P"),
    ("T_P = 0", ddcl.hessian_quantisation, (Y, P, 0.0), "T_P"),
    ("K = 1 removal", ddcl.remove_prototype, (P[:, :1], 0), "P"),
    ("index out of range", ddcl.remove_prototype, (P, 4), "j"),
    ("index type", ddcl.removal_free_energy_change, (Q, 1.0, 1.0), "j"),
    ("NaN", ddcl.collapse_critical_temperatures, (NAN_Y,), "Y"),
    ("W rows != n_b", dcl.dcl_prototypes, (Y, rng.normal(size=(4, 2)), np.zeros(2)), "W"),
    ("b length != K", dcl.dcl_prototypes, (Y, rng.normal(size=(5, 2)), np.zeros(3)), "b"),
    ("grad_P width", dcl.dcl_gradients, (Y, rng.normal(size=(2, 2))), "grad_P"),
    ("eta < 0", dcl.dcl_step, (Y, rng.normal(size=(5, 2)), np.zeros(2), rng.normal(size=(3, 2)), -0.1), "eta"),
    ("NaN", dcl.dcl_preconditioner, (NAN_Y,), "Y_b"),
]


@pytest.mark.parametrize(("what", "fn", "args", "arg_name"), CASES, ids=[f"{c[1].__name__}-{c[0]}" for c in CASES])
def test_bad_input_raises_naming_the_argument(
    what: str, fn: Callable[..., Any], args: tuple[Any, ...], arg_name: str
) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args)
    assert re.search(rf"\b{re.escape(arg_name)}\b", str(info.value)), (
        f"{what}: message does not name {arg_name!r}: {info.value}"
    )


def test_own_validation_without_jaxtyping() -> None:
    """Outside pytest's jaxtyping hook, the reference's own checks produce the named errors."""
    code = """
import numpy as np
from reference import ddcl
Y = np.zeros((5, 3)); P = np.zeros((2, 4))
msgs = []
for call in (lambda: ddcl.squared_distances(Y, P), lambda: ddcl.free_energy(Y, np.zeros((3, 4)), 0.0),
             lambda: ddcl.squared_distances(np.full((5, 3), np.nan), np.zeros((3, 4)))):
    try:
        call()
    except (ValueError, TypeError) as exc:
        msgs.append(f"{type(exc).__name__}: {exc}")
print("\\n".join(msgs))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith("ValueError: P: axis 0 has size 2, but Y's width d requires 3"), out
    assert out[1] == "ValueError: T_P: must be finite and > 0, got 0.0", out
    assert out[2].startswith("ValueError: Y: contains 15 NaN/Inf entries"), out


# --------------------------------------------------------------------------------------------------
# The row-stochastic check of Q at its exact limits (each test names the mutant it kills)
# --------------------------------------------------------------------------------------------------

U = 2.0**-53  # float64 unit roundoff; docs/tolerances.md: row sums may be off by 4u per unit of K


def test_signed_assignments_with_unit_row_sums_are_rejected() -> None:
    # Kills mutant ddcl-check-Q-negatives-removed: the rows sum to 1 exactly, only the sign is wrong.
    Q_signed = np.array([[1.5, -0.5], [0.25, 0.75]])
    with pytest.raises(ValueError, match=r"Q: assignments must be >= 0"):
        ddcl.check_assignments(Q_signed, 2, 2)


def test_row_sum_exactly_at_the_stochastic_tolerance_is_accepted() -> None:
    # Kills mutants ddcl-check-Q-rowsum-boundary and ddcl-check-Q-atol-not-per-K. For K = 2 the limit is
    # 4u·K = 2^-50; 0.5 + 2^-51 is exact, so the row sums to 1 + 2^-50 exactly: error = the limit.
    Q_edge = np.array([[0.5 + 2.0**-51, 0.5 + 2.0**-51]])
    assert float(abs(Q_edge.sum() - 1.0)) == 4.0 * U * 2
    np.testing.assert_array_equal(ddcl.check_assignments(Q_edge, 1, 2), Q_edge)


def test_row_sum_just_above_the_stochastic_tolerance_is_rejected() -> None:
    # Kills mutant tol-stochastic-doubled: 1 + 2^-50 + 2^-52 (the next float above the limit's row sum)
    # exceeds 4u·K = 2^-50 by a quarter, inside a doubled tolerance.
    Q_over = np.array([[0.5 + 2.0**-51, 0.5 + 2.0**-51 + 2.0**-52]])
    assert float(abs(Q_over.sum() - 1.0)) == 1.25 * 4.0 * U * 2
    with pytest.raises(ValueError, match=r"Q: rows must sum to 1"):
        ddcl.check_assignments(Q_over, 1, 2)


def test_wide_rows_get_a_tolerance_proportional_to_K() -> None:
    # Kills mutant ddcl-check-Q-atol-not-per-K: with K = 8 a row off by 2^-49 = 16u (within 4u·8 = 32u,
    # well above a per-row 4u) is a valid computed softmax row.
    row = np.full(8, 0.125)
    row[0] += 2.0**-49
    assert float(abs(row.sum() - 1.0)) == 16.0 * U
    ddcl.check_assignments(row[None, :], 1, 8)


# --------------------------------------------------------------------------------------------------
# Issue 10's hostile-input findings (each test names its finding)
# --------------------------------------------------------------------------------------------------


def test_array_subclasses_are_refused_naming_the_argument() -> None:
    """Finding 5: np.matrix and masked arrays used to pass the checks and give wrong results."""
    with pytest.warns(PendingDeprecationWarning):
        Q_matrix = np.matrix(Q)
    with pytest.raises(TypeError, match=r"Q: expected a plain numpy.ndarray, got the subclass numpy.matrix"):
        ddcl.assignment_covariance(Q_matrix)
    with pytest.raises(TypeError, match=r"Q: .*subclass"):
        ddcl.grad_variance_fixed_Q(P, Q_matrix)
    masked = np.ma.masked_array(Y, mask=np.zeros_like(Y, dtype=bool))
    masked[0, 0] = np.ma.masked
    with pytest.raises(TypeError, match=r"Y: .*subclass numpy.ma.MaskedArray"):
        ddcl.squared_distances(masked, P)


@pytest.mark.parametrize(
    ("fn", "args", "names"),
    [
        (ddcl.squared_distances, (Y * 1e154, P), "Y, P"),
        (ddcl.free_energy, (Y * 1e154, P, 1.0), "Y, P"),
        (ddcl.collapse_critical_temperatures, (Y * 1e155,), "Y"),
        (dcl.dcl_preconditioner, (Y * 1e155,), "Y_b"),
        (dcl.dcl_prototypes, (Y * 1e300, np.full((5, 2), 1e10), np.ones(2)), "Y_b, W, b"),
    ],
)
def test_overflow_from_finite_inputs_is_refused_naming_the_inputs(
    fn: Callable[..., Any], args: tuple[Any, ...], names: str
) -> None:
    """Finding 6: coordinates near 1e154 and above used to give inf/NaN (or LinAlgError) silently."""
    with pytest.raises(FloatingPointError, match=rf"overflowed float64 .* the inputs {re.escape(names)} are outside"):
        fn(*args)


def test_removal_change_at_a_huge_temperature_is_refused_as_an_overflow_not_returned_as_inf() -> None:
    """A random hypothesis seed (2971049268) found it: with no token assigned to prototype j alone, ΔF and
    its bound are finite in exact arithmetic, but ``T_P · Σ`` overflows for T_P near float64's maximum; the
    documented +inf is kept for ``q_tj = 1`` only. Just below the overflow the values are finite."""
    Qh = np.array([[0.5, 0.5], [0.25, 0.75]])
    with pytest.raises(FloatingPointError, match=r"removal_free_energy_change: .* overflowed .* inputs Q, T_P"):
        ddcl.removal_free_energy_change(Qh, 0, 1.7e308)
    change, bound = ddcl.removal_free_energy_change(Qh, 0, 1e307)
    assert np.isfinite(change)
    assert np.isfinite(bound)
    assert 0.0 < change <= bound
    assert ddcl.removal_free_energy_change(np.array([[1.0, 0.0]]), 0, 1.0) == (float("inf"), float("inf"))


def test_coordinates_just_inside_the_trustworthy_range_are_computed() -> None:
    """Finding 6: below the documented bound |coordinate| < sqrt(max/(4d)) (docs/tolerances.md) distances are
    finite (here half the bound, D = max/4); at twice the bound they overflow and are refused."""
    d = Y.shape[1]
    c = 0.5 * float(np.sqrt(np.finfo(np.float64).max / (4 * d)))
    Yb = np.full((2, d), c)
    Pb = np.full((d, 2), -c)
    Dd = ddcl.squared_distances(Yb, Pb)
    assert np.all(np.isfinite(Dd))
    assert Dd[0, 0] == pytest.approx(d * (2 * c) ** 2, rel=1e-15)
    with pytest.raises(FloatingPointError, match="Y, P"):
        ddcl.squared_distances(4 * Yb, 4 * Pb)


def test_temperatures_below_the_smallest_normal_are_refused() -> None:
    """Finding 7: a subnormal T_P used to be accepted and give NaN."""
    for fn, args in (
        (ddcl.quantisation_distance_weights, (D, 5e-320)),
        (ddcl.hessian_quantisation, (Y, P, 1e-310)),
        (ddcl.soft_assignments, (D, 1e-309)),
    ):
        with pytest.raises(ValueError, match=r"T_P: a temperature must be >= 2.2250738585072014e-308"):
            fn(*args)


def test_tiny_normal_temperature_gives_the_correct_weights() -> None:
    """Finding 7: at T_P = 1e-300 with distances 1e10 apart, D/T_P overflows where q underflowed; the weights
    are then the hard assignment (q_k(1 − (D_k − D̄)/T) with q_k = e^{-x}, x > 745, is below every subnormal)."""
    Dfar = np.array([[0.0, 1e10, 2e10], [3e10, 1e10, 5e10]])
    W = ddcl.quantisation_distance_weights(Dfar, 1e-300)
    np.testing.assert_array_equal(W, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    H = ddcl.hessian_quantisation(Y, P, 1e-300)  # hard assignments: finite, no NaN
    assert np.all(np.isfinite(H))


def test_free_energy_beyond_float64_is_refused_naming_T_P() -> None:
    """Finding 7: T_P = 1.7e308 used to give F = −inf (the true F ≈ Dmin − T_P·log K is below −max)."""
    Y0 = np.zeros((2, 1))
    P0 = np.zeros((1, 3))  # all distances 0: F = −T_P log 3 exactly in reals
    with pytest.raises(FloatingPointError, match=r"free_energy: the result overflowed .*T_P"):
        ddcl.free_energy(Y0, P0, 1.7e308)
    assert ddcl.free_energy(Y0, P0, 1e300) == pytest.approx(-1e300 * np.log(3.0), rel=1e-15)


def test_log_temperatures_beyond_the_float64_range_are_refused() -> None:
    """Finding 4: |s| > 709.8 used to raise OverflowError in HeadParams.tau / score_operator, and
    LayerConfig(s_init=-800) was accepted and then crashed training."""
    from reference._arrays import LOG_TEMPERATURE_MAX
    from reference.model import HeadParams, LayerConfig, score_operator

    eye = np.eye(2)
    for s in (800.0, -800.0, LOG_TEMPERATURE_MAX * (1 + 1e-15) + 1e-9):
        with pytest.raises(ValueError, match=r"s: a log-temperature must satisfy \|s\| <= 708.3964"):
            HeadParams(W_Q=eye, W_K=eye, W_V=eye, W_O=eye, s=s)
    with pytest.raises(ValueError, match=r"LayerConfig.s_init: a log-temperature"):
        LayerConfig(d_in=1, d=1, d_k=1, d_v=1, seq_len=1, K_max=1, n_classes=2, T_P=1.0, lambda_q=0.0, s_init=-800.0)
    edge = HeadParams(W_Q=eye, W_K=eye, W_V=eye, W_O=eye, s=-LOG_TEMPERATURE_MAX)
    assert np.isfinite(edge.tau)
    assert edge.tau > 0.0
    M = score_operator(edge)  # exp(708.4)/√2 · I: finite
    assert np.all(np.isfinite(M))
    big = HeadParams(W_Q=1e10 * eye, W_K=eye, W_V=eye, W_O=eye, s=-LOG_TEMPERATURE_MAX)
    with pytest.raises(FloatingPointError, match=r"score_operator: .*the inputs head"):
        score_operator(big)


def test_model_building_blocks_refuse_nan() -> None:
    """Finding 10 (rest): NaN used to pass through softmax_rows and readout."""
    from reference.model import readout, softmax_rows

    S = np.array([[0.0, np.nan]])
    with pytest.raises(ValueError, match=r"S: contains 1 NaN/Inf"):
        softmax_rows(S)
    Z = np.zeros((1, 2, 3))
    Z[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"Z: contains 1 NaN/Inf"):
        readout(Z, np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"b_c: contains"):
        readout(np.zeros((1, 2, 3)), np.zeros((3, 2)), np.array([0.0, np.inf]))


def test_invariants_refuse_lists_naming_the_argument() -> None:
    """Finding 13 (rest): invariant functions used to crash on lists with AttributeError (outside pytest's
    jaxtyping hook, which would otherwise answer first): now the reference's own check names the argument."""
    code = """
import numpy as np
from reference import ddcl
from reference.invariants import coupling as icoup, ddcl as iddcl
rng = np.random.default_rng(0)
Y = rng.normal(size=(5, 3)); P = rng.normal(size=(3, 4)); Q = ddcl.assignments(Y, P, 1.0)
for call in (lambda: iddcl.d1_decomposition(Y=Y.tolist(), P=P, Q=Q),
             lambda: iddcl.d2_free_energy_gradients(Y=Y, P=P.tolist(), T_P=1.0),
             lambda: iddcl.d4_anti_collapse(Y=Y.tolist(), K=2, T_P=1.0),
             lambda: iddcl.q_row_stochastic(Q=Q.tolist()),
             lambda: iddcl.d6_dual_vanilla(Y_b=Y, W=[[1.0]], b=np.ones(1), grad_P=np.ones((3, 1)), eta=0.1),
             lambda: icoup.rows_orthogonal(Y=Y, U=Y.tolist())):
    try:
        call()
        print("no error")
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    names = ["Y", "P", "Y", "Q", "W", "U"]
    assert len(out) == len(names), out
    for line, name in zip(out, names, strict=True):
        assert line == f"TypeError: {name}: expected a numpy.ndarray of float64, got list", out
