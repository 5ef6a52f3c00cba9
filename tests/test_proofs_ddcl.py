"""The sympy steps of the DDCL claims D1–D6 (``proofs_check.ddcl_steps``).

The step ids are exactly SPEC's list, and a planted violation in one of the steps' symbolic formulas
makes it unproved; ``is_zero`` is sound. That every step proves, and fails when a reference function
it cross-checks is wrong, is tested for all steps at once in ``tests/test_proofs.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import sympy as sp

from proofs_check import ALL_STEPS, ddcl_steps
from proofs_check.core import Step, is_zero

EXPECTED_IDS = (
    "D1.1", "D1.2",
    "D2.1", "D2.2", "D2.3", "D2.4", "D2.5", "D2.6",
    "D3.1", "D3.2", "D3.3",
    "D4.1", "D4.2", "D4.3", "D4.4",
    "D5.1", "D5.2",
    "D6.1", "D6.2",
)  # fmt: skip

STEPS: dict[str, Step] = {s.id: s for s in ddcl_steps.STEPS}


def test_step_ids_are_exactly_the_spec_list() -> None:
    assert tuple(s.id for s in ddcl_steps.STEPS) == EXPECTED_IDS


def test_ddcl_steps_are_registered_in_all_steps_in_order() -> None:
    registered = tuple(s.id for s in ALL_STEPS if s.claim.startswith("D"))
    assert registered == EXPECTED_IDS


# --------------------------------------------------------------------------------------------------
# A planted symbolic violation (planted reference errors for every step: tests/test_proofs.py)
# --------------------------------------------------------------------------------------------------


def test_planted_symbolic_violation_unproves_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong closed form (the collapse Hessian with factor 5 instead of 4) fails symbolically."""
    right = ddcl_steps._collapse_hessian

    def wrong(K: int, d: int, cov: Any, factor: int) -> Any:
        return right(K, d, cov, factor + 1)

    monkeypatch.setattr(ddcl_steps, "_collapse_hessian", wrong)
    outcome = STEPS["D4.2"].run()
    assert not outcome.symbolic_ok
    assert not outcome.proved
    assert "failed" in outcome.detail


# --------------------------------------------------------------------------------------------------
# is_zero: True is a proof, False on anything that is not identically zero
# --------------------------------------------------------------------------------------------------

x, y = sp.symbols("x y", real=True)
T = sp.Symbol("T", positive=True)
k = sp.Symbol("k", integer=True)


@pytest.mark.parametrize(
    "expr",
    [
        (x + y) ** 2 - x**2 - 2 * x * y - y**2,
        sp.exp(-x / T) / (sp.exp(-x / T) + sp.exp(-y / T)) + sp.exp(-y / T) / (sp.exp(-x / T) + sp.exp(-y / T)) - 1,
        sp.log(sp.exp(x)) - x,  # needs simplify (x real)
        sp.Matrix([[x - x, 0], [sp.cos(k * sp.pi) ** 2 - 1 + sp.sin(k * sp.pi) ** 2, 0]]),
    ],
    ids=["polynomial", "softmax-sums-to-1", "log-exp", "matrix"],
)
def test_is_zero_proves_identities(expr: Any) -> None:
    assert is_zero(expr)


@pytest.mark.parametrize(
    "expr",
    [
        (x + y) ** 2 - x**2 - y**2,
        sp.exp(-x / T) / (sp.exp(-x / T) + sp.exp(-y / T)) - sp.Rational(1, 2),
        sp.log(x**2) - 2 * sp.log(x),  # false for x < 0 (x is only real)
        sp.Matrix([[0, 0], [0, x * 1e-20]]),
        k * (1 - k) + 2,  # an integer symbol: no probe point, simplify decides
    ],
    ids=["polynomial", "softmax", "log-branch", "matrix-one-tiny-entry", "integer-symbol"],
)
def test_is_zero_rejects_nonzero(expr: Any) -> None:
    assert not is_zero(expr)


def test_is_zero_rejects_a_wrong_envelope_gradient_quickly() -> None:
    """The D2.3 identity with a 1% error: refuted by the probe, not by a minutes-long simplify."""
    n, d, K = 2, 2, 2
    b = ddcl_steps._block(n, d, K)
    _, gP = ddcl_steps._grad_F(n, d, K)
    _, form = ddcl_steps._pullback(b.Y, b.P, b.Q / n)
    assert is_zero(gP - form)
    assert not is_zero(gP - form * sp.Rational(101, 100))
