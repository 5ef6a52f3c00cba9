"""D6 rounding: the "outside span" check allows for eigenvector error, the ΔP check for gradual underflow.

Both inputs below were drawn by ``dcl_problems()`` and made the reference's own operations violate D6
before the bounds accounted for (1) the eigenvector error of ``eigh`` (``≈ E/gap``, ``E`` its backward
error) and (2) subnormal units amplified by later products. The planted violations show the new bounds
still catch a step that leaves ``span(rows Y_b) + span(1_d)`` by twice the bound.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings

from ddcl_incrt.strategies.ddcl import dcl_problems
from reference import dcl
from reference.invariants import ddcl as inv
from reference.invariants.result import InvariantResult

OUTSIDE = "outside span"

# Y_b, W, b, grad_P, eta
EIGENVECTOR_CASE = (
    np.array([[0.0, 100.0, 0.0]]),
    np.array([[0.0]]),
    np.array([0.0]),
    np.array([[1.0], [0.0], [0.0]]),
    1.0,
)
SUBNORMAL_CASE = (np.array([[562.5]]), np.array([[0.0]]), np.array([0.0]), np.array([[5e-324]]), 1.0)


def _d6(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float], ops: inv.DDCLOps = inv.REFERENCE_OPS
) -> tuple[InvariantResult, ...]:
    Y_b, W, b, G, eta = case
    return inv.d6_dual_vanilla(Y_b=Y_b, W=W, b=b, grad_P=G, eta=eta, ops=ops)


def _check(results: tuple[InvariantResult, ...], fragment: str) -> InvariantResult:
    (r,) = [r for r in results if fragment in r.check]
    return r


def _leaving_ops(v: np.ndarray, size: float) -> inv.DDCLOps:
    """A DCL whose prototypes after the step move by ``size·v`` in every column: D6 evaluates ``P(W, b)``
    first and ``P(W⁺, b⁺)`` second, so every call after the first adds ``size·v`` (the step itself cannot
    leave the span through ``W``: ``Y_bᵀΔW`` is in it, and in the eigenvector case ``ΔW = 0``)."""
    calls: list[int] = []

    def prototypes(Y_b: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        P = dcl.dcl_prototypes(Y_b, W, b)
        calls.append(1)
        return P if len(calls) == 1 else P + size * np.outer(v, np.ones(P.shape[1]))

    return dataclasses.replace(inv.REFERENCE_OPS, dcl_prototypes=prototypes)


@pytest.mark.claim("D6", "property")
@pytest.mark.parametrize("case", [EIGENVECTOR_CASE, SUBNORMAL_CASE], ids=["eigenvector-error", "subnormal"])
def test_d6_holds_and_certifies_on_the_found_inputs(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float],
) -> None:
    results = _d6(case)
    assert all(r.holds for r in results), "\n".join(r.describe() for r in results)
    assert all(r.certified for r in results), "\n".join(r.describe() for r in results)


def test_d6_subnormal_case_needs_the_amplified_underflow_allowance() -> None:
    # 281 subnormal units of error (η_min in W⁺ times Y = 562.5) against the m·η_min of accumulation_bound.
    r = _check(_d6(SUBNORMAL_CASE), "ΔP + η")
    assert r.value > 40 * float(np.finfo(np.float64).smallest_subnormal)
    assert r.holds
    assert r.certified


@pytest.mark.claim("D6", "planted")
@pytest.mark.parametrize(("factor", "fires"), [(2.0, True), (0.5, False)])
def test_d6_outside_span_threshold_on_the_eigenvector_case(factor: float, fires: bool) -> None:
    # span(rows Y_b) + span(1_3) = span(e_2, 1); v = (1, 0, −1)/√2 is orthogonal to it (exactly).
    bound = _check(_d6(EIGENVECTOR_CASE), OUTSIDE).bound
    v = np.array([1.0, 0.0, -1.0]) / np.sqrt(2.0)
    # The largest entry of the planted component is factor·bound (the bound is on max entries).
    ops = _leaving_ops(v, factor * bound * np.sqrt(2.0))
    r = _check(_d6(EIGENVECTOR_CASE, ops), OUTSIDE)
    assert r.bound == pytest.approx(bound, rel=1e-6)
    assert (not r.holds) is fires, r.describe()


@pytest.mark.claim("D6", "planted")
def test_d6_outside_span_fires_just_past_the_bound_on_a_random_problem() -> None:
    rng = np.random.default_rng(11)  # local: results must not depend on test order
    Y_b, W, b, G = rng.normal(size=(2, 4)), rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(4, 3))
    A = np.vstack([Y_b, np.ones((1, 4))])
    v = np.linalg.svd(A)[2][-1]  # orthogonal to span(rows Y_b) + span(1), found independently of the invariant
    assert float(np.abs(A @ v).max()) < 1e-12
    case = (Y_b, W, b, G, 0.1)
    bound = _check(_d6(case), OUTSIDE).bound
    r = _check(_d6(case, _leaving_ops(v, 2.0 * bound / float(np.abs(v).max()))), OUTSIDE)
    assert not r.holds, r.describe()


@pytest.mark.claim("D6", "property")
@settings(max_examples=200, deadline=None)
@given(problem=dcl_problems())
def test_d6_reference_never_violates(problem: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]) -> None:
    results = _d6(problem)
    failed = [r.describe() for r in results if not r.holds]
    assert not failed, "\n".join(failed)
