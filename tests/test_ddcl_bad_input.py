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
