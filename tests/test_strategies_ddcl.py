"""The DDCL strategies produce only valid inputs, within the caps (array-api-tests' meta-tests)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ddcl_incrt.strategies._caps import MAX_PROTOTYPES, MAX_TOKENS, MAX_WIDTH
from ddcl_incrt.strategies.ddcl import DDCLProblem, dcl_problems, ddcl_problems, row_stochastic
from ddcl_incrt.strategies.incrt import (
    antisymmetric_matrices,
    orthogonal_matrices,
    orthonormal_sets,
    planted_operators,
    second_moments,
)
from ddcl_incrt.strategies.model import model_specs
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


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: orthonormal_sets(3, 5), "m"),
        (lambda: orthonormal_sets(0, 0), "d"),
        (lambda: orthonormal_sets(3, -1), "m"),
        (lambda: orthonormal_sets(3.0, 1), "d"),
        (lambda: orthogonal_matrices(0), "d"),
        (lambda: planted_operators(min_d=0), "min_d"),
        (lambda: planted_operators(min_d=4, max_d=2), "max_d"),
        (lambda: planted_operators(max_d=3, min_m_star=4), "min_m_star"),
        (lambda: antisymmetric_matrices(2, scale=-1.0), "scale"),
        (lambda: second_moments(True), "d"),
        (lambda: ddcl_problems(min_K=0), "min_K"),
        (lambda: ddcl_problems(min_K=3, max_K=2), "max_K"),
        (lambda: ddcl_problems(temps=1.0), "temps"),
        (lambda: row_stochastic(2, 0), "K"),
        (lambda: model_specs(min_heads=0), "min_heads"),
        (lambda: model_specs(max_removed_prototypes=-1), "max_removed_prototypes"),
    ],
)
def test_strategies_refuse_bad_arguments_when_built(build: Callable[[], object], name: str) -> None:
    """Finding 15: bad strategy arguments used to yield invalid data silently (orthonormal_sets(3, 5) gave
    3×3 arrays, min_K=0 gave K = 0 problems); now building the strategy raises naming the argument."""
    with pytest.raises(InvalidArgument, match=rf"^{name}: "):
        build()


@given(data=st.data())
def test_strategies_at_their_argument_limits_yield_valid_data(data: st.DataObject) -> None:
    """Finding 15: the limits themselves are valid (m = d, m = 0, min_K = max_K)."""
    Q3 = data.draw(orthonormal_sets(3, 3))
    np.testing.assert_allclose(Q3.T @ Q3, np.eye(3), atol=1e-12)
    assert data.draw(orthonormal_sets(2, 0)).shape == (2, 0)
    assert data.draw(ddcl_problems(min_K=2, max_K=2)).K == 2
