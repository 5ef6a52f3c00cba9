"""Finite-difference checks of every DDCL gradient and Hessian (float64, central differences)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddcl_incrt.strategies._caps import MAX_PROTOTYPES, MAX_TOKENS, MAX_WIDTH
from reference import dcl, ddcl
from reference.gradcheck import central_difference, gradient_error, gradient_matches
from reference.tolerances import UNIT_ROUNDOFF, CheckKind, tolerance

RTOL = tolerance("float64", CheckKind.GRADIENT).rtol
_unit = st.floats(-1.0, 1.0)


@st.composite
def smooth_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    """Moderate scales and temperatures, where finite differences are themselves accurate to ~1e-10."""
    n, d, K = draw(st.integers(1, MAX_TOKENS)), draw(st.integers(1, MAX_WIDTH)), draw(st.integers(1, MAX_PROTOTYPES))
    Y = draw(hnp.arrays(np.float64, (n, d), elements=_unit))
    P = draw(hnp.arrays(np.float64, (d, K), elements=_unit))
    return Y, P, draw(st.floats(0.2, 5.0))


def _lq_softmax(Y: np.ndarray, P: np.ndarray, T: float) -> float:
    return ddcl.quantisation_loss(Y, P, ddcl.assignments(Y, P, T))


@given(problem=smooth_problems())
def test_full_quantisation_gradient(problem: tuple[np.ndarray, np.ndarray, float]) -> None:
    Y, P, T = problem
    gY, gP = ddcl.grad_quantisation_full(Y, P, T)
    assert gradient_error(gY, central_difference(lambda y: _lq_softmax(y, P, T), Y)) <= RTOL
    assert gradient_error(gP, central_difference(lambda p: _lq_softmax(Y, p, T), P)) <= RTOL


@given(problem=smooth_problems())
def test_free_energy_gradient(problem: tuple[np.ndarray, np.ndarray, float]) -> None:
    Y, P, T = problem
    gY, gP = ddcl.grad_free_energy(Y, P, T)
    assert gradient_matches(gY, central_difference(lambda y: ddcl.free_energy(y, P, T), Y))
    assert gradient_matches(gP, central_difference(lambda p: ddcl.free_energy(Y, p, T), P))


@given(problem=smooth_problems())
def test_fixed_Q_gradients(problem: tuple[np.ndarray, np.ndarray, float]) -> None:
    Y, P, T = problem
    Q = ddcl.assignments(Y, P, T)
    gY, gP = ddcl.grad_quantisation_fixed_Q(Y, P, Q)
    assert gradient_matches(gY, central_difference(lambda y: ddcl.quantisation_loss(y, P, Q), Y))
    assert gradient_matches(gP, central_difference(lambda p: ddcl.quantisation_loss(Y, p, Q), P))
    gV = ddcl.grad_variance_fixed_Q(P, Q)
    assert gradient_matches(gV, central_difference(lambda p: ddcl.prototype_variance(p, Q), P))


@given(problem=smooth_problems())
def test_hessians_are_derivatives_of_the_gradients(problem: tuple[np.ndarray, np.ndarray, float]) -> None:
    """Column ``j·d + i`` of ∇²_P is ∂(∇_P, flattened column-major)/∂P[i, j]."""
    Y, P, T = problem
    d, K = P.shape
    for hess, grad in (
        (ddcl.hessian_free_energy, ddcl.grad_free_energy),
        (ddcl.hessian_quantisation, ddcl.grad_quantisation_full),
    ):
        H = hess(Y, P, T)
        for i in range(d):
            for j in range(K):
                e = np.zeros_like(P)
                h = UNIT_ROUNDOFF["float64"] ** (1.0 / 3.0) * max(1.0, abs(P[i, j]))
                e[i, j] = h
                col = (grad(Y, P + e, T)[1] - grad(Y, P - e, T)[1]).T.reshape(-1) / (2 * h)
                assert gradient_matches(H[:, j * d + i], col)


def test_hessians_summed_over_several_chunks_of_tokens_are_derivatives_of_the_gradients() -> None:
    """The Hessians sum their tokens in chunks (``HESSIAN_CHUNK_ENTRIES`` weighted entries: 4,096 tokens at
    d = 16, K = 8) and form the blocks below the diagonal as transposes: two chunks and part of a third,
    and the columns of the first, a middle and the last prototype cover blocks on both sides of the
    diagonal."""
    rng = np.random.default_rng(3)
    d, K, T = 16, 8, 0.8
    n = 2 * (ddcl.HESSIAN_CHUNK_ENTRIES // (K * d)) + 808
    Y, P = rng.uniform(-1.0, 1.0, (n, d)), rng.uniform(-1.0, 1.0, (d, K))
    for hess, grad in (
        (ddcl.hessian_free_energy, ddcl.grad_free_energy),
        (ddcl.hessian_quantisation, ddcl.grad_quantisation_full),
    ):
        H = hess(Y, P, T)
        for i, j in ((0, 0), (d // 2, K // 2), (d - 1, K - 1)):
            e = np.zeros_like(P)
            h = UNIT_ROUNDOFF["float64"] ** (1.0 / 3.0) * max(1.0, abs(P[i, j]))
            e[i, j] = h
            col = (grad(Y, P + e, T)[1] - grad(Y, P - e, T)[1]).T.reshape(-1) / (2 * h)
            assert gradient_matches(H[:, j * d + i], col)


def test_dcl_gradients_by_finite_differences() -> None:
    rng = np.random.default_rng(0)
    Y_b, W, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), rng.normal(size=2)
    Y = rng.normal(size=(6, 3))

    def loss(W_: np.ndarray, b_: np.ndarray) -> float:
        return ddcl.free_energy(Y, dcl.dcl_prototypes(Y_b, W_, b_), 0.9)

    _, gP = ddcl.grad_free_energy(Y, dcl.dcl_prototypes(Y_b, W, b), 0.9)
    gW, gb = dcl.dcl_gradients(Y_b, gP)
    assert gradient_matches(gW, central_difference(lambda w: loss(w, b), W))
    assert gradient_matches(gb, central_difference(lambda bb: loss(W, bb), b))


def test_gradient_check_fires_on_a_wrong_gradient() -> None:
    rng = np.random.default_rng(1)
    Y, P = rng.normal(size=(5, 2)), rng.normal(size=(2, 3))
    _, gP = ddcl.grad_quantisation_fixed_Q(Y, P, ddcl.assignments(Y, P, 1.0))  # misses the path through Q
    numeric = central_difference(lambda p: _lq_softmax(Y, p, 1.0), P)
    assert not gradient_matches(gP, numeric)
    assert not gradient_matches(gP * (1 + 1e-5), central_difference(lambda p: ddcl.free_energy(Y, p, 1.0), P))


@pytest.mark.parametrize("T", [1e-6, 1e6])
def test_extreme_temperatures_stay_finite(T: float) -> None:
    rng = np.random.default_rng(2)
    Y, P = rng.normal(size=(6, 3)) * 1e70, rng.normal(size=(3, 4)) * 1e70
    for value in (ddcl.free_energy(Y, P, T), _lq_softmax(Y, P, T)):
        assert np.isfinite(value)
    for g in (*ddcl.grad_free_energy(Y, P, T), *ddcl.grad_quantisation_full(Y, P, T)):
        assert np.all(np.isfinite(g))
