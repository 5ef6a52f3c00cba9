"""The DDCL strategies produce only valid inputs, within the caps (array-api-tests' meta-tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ddcl_incrt.strategies._caps import MAX_PROTOTYPES, MAX_TOKENS, MAX_WIDTH
from ddcl_incrt.strategies.ddcl import DDCLProblem, dcl_problems, ddcl_problems, row_stochastic
from reference import ddcl


@given(problem=ddcl_problems())
def test_ddcl_problems_are_valid_and_capped(problem: DDCLProblem) -> None:
    n, d = problem.Y.shape
    assert problem.P.shape[0] == d
    assert 1 <= n <= MAX_TOKENS
    assert 1 <= d <= MAX_WIDTH
    assert 1 <= problem.K <= MAX_PROTOTYPES
    assert problem.Y.dtype == np.float64
    assert problem.P.dtype == np.float64
    assert np.all(np.isfinite(problem.Y))
    assert np.all(np.isfinite(problem.P))
    assert 1e-6 <= problem.T_P <= 1e6
    # Distances stay finite at the extreme scales (up to ~1e150, SPEC's stress range).
    assert np.all(np.isfinite(ddcl.squared_distances(problem.Y, problem.P)))


@given(problem=ddcl_problems(), data=st.data())
def test_row_stochastic_is_accepted_by_the_reference(problem: DDCLProblem, data: st.DataObject) -> None:
    Q = data.draw(row_stochastic(problem.Y.shape[0], problem.K))
    ddcl.check_assignments(Q, problem.Y.shape[0], problem.K)  # raises if not row-stochastic


@given(problem=ddcl_problems(min_K=2))
def test_min_K_is_respected(problem: DDCLProblem) -> None:
    assert problem.K >= 2


@given(problem=dcl_problems())
def test_dcl_problems_are_consistent(problem: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]) -> None:
    Y_b, W, b, G, eta = problem
    assert W.shape[0] == Y_b.shape[0]
    assert b.shape == (W.shape[1],)
    assert G.shape == (Y_b.shape[1], W.shape[1])
    assert 0.0 < eta <= 1.0
