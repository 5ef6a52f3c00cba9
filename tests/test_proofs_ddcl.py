"""The sympy steps of the DDCL claims D1–D6 (``proofs_check.ddcl_steps``).

The step ids are exactly SPEC's list, and a planted violation in one of the steps' symbolic formulas
makes it unproved; ``is_zero`` is sound. That every step proves, and fails when a reference function
it cross-checks is wrong, is tested for all steps at once in ``tests/test_proofs.py``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
import sympy as sp

from proofs_check import ALL_STEPS, ddcl_steps
from proofs_check.core import Step, StepChecks, StepOutcome, is_zero, perturb
from reference import dcl as ref_dcl
from reference import ddcl as ref

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


# A planted error in ONE output of a function that returns several: only the cross-check of that output
# can see it, so each of these kills the deletion of that cross-check (scripts/mutation/mutants.toml).
PLANTED_ONE_OUTPUT: tuple[tuple[str, ModuleType, str, int], ...] = (
    ("D2.2", ref, "grad_quantisation_fixed_Q", 0),  # kills step-D2.2-gradY-check-deleted
    ("D2.3", ref, "grad_free_energy", 0),
    ("D4.2", ref, "collapse_critical_temperatures", 0),  # kills step-D4-Tc-check-deleted
    ("D5.2", ref, "removal_free_energy_change", 1),  # kills step-D5.2-bound-check-deleted
    ("D6.1", ref_dcl, "dcl_gradients", 1),
)


@pytest.mark.parametrize(
    ("step_id", "module", "name", "index"),
    PLANTED_ONE_OUTPUT,
    ids=[f"{s}-{n}[{i}]" for s, _, n, i in PLANTED_ONE_OUTPUT],
)
def test_planted_violation_in_one_output_unproves_step(
    step_id: str, module: ModuleType, name: str, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    right = getattr(module, name)

    def wrong(*args: Any, **kwargs: Any) -> Any:
        out = list(right(*args, **kwargs))
        out[index] = perturb(out[index])
        return tuple(out)

    monkeypatch.setattr(module, name, wrong)
    outcome = STEPS[step_id].run()
    assert outcome.symbolic_ok
    assert not outcome.proved, f"{step_id} still proved with output {index} of {name} off by 1e-6: {outcome.detail}"


def test_a_looser_removal_bound_unproves_d5_2(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kills mutants ddcl-removal-bound-looser and step-D5.2-bound-check-deleted: a bound twice the claimed
    # (T/n)Σ q/(1 − q) is still an upper bound, so only the comparison with sympy's bound can object.
    right = ref.removal_free_energy_change
    monkeypatch.setattr(ref, "removal_free_energy_change", lambda Q, j, T: (right(Q, j, T)[0], 2.0 * right(Q, j, T)[1]))
    assert not STEPS["D5.2"].run().proved


def test_an_error_above_the_documented_value_tolerance_unproves_d1_1(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kills mutant tol-value-rtol-looser: docs/tolerances.md sets the float64 VALUE row to rtol = atol = 1e-12;
    # a relative error of 1e-10 in V (100× that, and V = O(1) at D1.1's point) must unprove D1.1.
    right = ref.prototype_variance
    V = right(*_d1_1_point())
    assert V > 0.05, "the planted error must exceed atol + rtol·|V| for the documented rtol"
    monkeypatch.setattr(ref, "prototype_variance", lambda P, Q: right(P, Q) * (1.0 + 1e-10))
    assert not STEPS["D1.1"].run().proved


def _d1_1_point() -> tuple[np.ndarray, np.ndarray]:
    """The (P, Q) at which D1.1 evaluates V (its seeded generator, as in ``ddcl_steps.step_d1_1``)."""
    rng = ddcl_steps.step_rng("D1.1")
    _, P, _ = ddcl_steps._random_point(rng, 4, 2, 3)
    return P, ddcl_steps._stochastic(rng, 4, 3)


# --------------------------------------------------------------------------------------------------
# StepChecks/StepOutcome bookkeeping (proofs_check.core): what makes a step proved
# --------------------------------------------------------------------------------------------------


def test_a_comparison_met_with_equality_proves() -> None:
    # Kills mutant core-proved-strict: numeric error ≤ bound, equality included.
    assert StepOutcome(symbolic_ok=True, numeric_error=1e-12, numeric_bound=1e-12).proved
    assert not StepOutcome(symbolic_ok=True, numeric_error=2e-12, numeric_bound=1e-12).proved


def test_a_step_without_symbolic_checks_is_not_proved() -> None:
    # Kills mutant core-no-symbolic-proves.
    c = StepChecks()
    c.close("agrees", 1.0, 1.0)
    outcome = c.outcome()
    assert not outcome.symbolic_ok
    assert not outcome.proved


def test_a_shape_mismatch_fails_the_comparison_even_when_it_broadcasts() -> None:
    # Kills mutant core-close-shape-check-removed: (2, 1) against (2,) broadcasts to 2×2; with equal
    # entries the broadcast difference is 0, but the shapes disagree, so the check must fail.
    c = StepChecks()
    c.sym("trivially true", True)
    c.close("column vs vector", np.ones((2, 1)), np.ones(2))
    assert not c.outcome().proved


def test_the_worst_numeric_check_decides() -> None:
    c = StepChecks()
    c.sym("trivially true", True)
    c.close("agrees", 1.0, 1.0)
    c.close("off by 1e-6", 1.0 + 1e-6, 1.0)
    c.at_most("holds", 0.5, 1.0, scale=1.0)
    outcome = c.outcome()
    assert not outcome.proved
    assert "off by 1e-6" in outcome.detail


def test_at_most_records_only_the_excess() -> None:
    c = StepChecks()
    c.sym("trivially true", True)
    c.at_most("holds with room", 0.5, 1.0, scale=1.0)
    assert c.outcome().proved
    c.at_most("fails", 1.0 + 1e-6, 1.0, scale=1.0)
    assert not c.outcome().proved


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
