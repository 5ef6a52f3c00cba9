"""Every derivation step of ``proofs_check``, driven by the steps themselves (one generic harness).

* every step proves: its symbolic identity holds and its numeric part agrees with ``reference``;
* every step declares the reference functions it cross-checks (``@step(..., checks=...)``), each named
  in its defining module;
* each declared cross-check is real: a small planted error in that function (result off by 1e-6
  relative, upwards or downwards) unproves the step while its symbolic part still holds, or makes
  the step refuse its input.
"""

from __future__ import annotations

import importlib

import pytest

from proofs_check import ALL_STEPS
from proofs_check.core import PLANTS, Step, planted_outcome

CHECKS = [(s, name) for s in ALL_STEPS for name in s.checks]
# Steps whose numeric bound is not the float64 VALUE row, and why (every other step's bound is).
NON_VALUE_BOUNDS = {"G5.7": "central differences of the Jacobian: the GRADIENT row (error ~u^(2/3))"}
# Declared cross-checks whose planted error is refused by a validator before any comparison runs, and
# why that is a loud failure rather than a silent pass (a numeric failure is required of every other).
REFUSED_WHEN_PLANTED = {
    ("D2.1", "reference.ddcl.assignments"): "a perturbed Q is no longer row-stochastic; every consumer refuses it",
    ("D2.3", "reference.ddcl.assignments"): "as D2.1",
    ("D5.1", "reference.ddcl.assignments"): "as D2.1",
    ("D5.2", "reference.ddcl.assignments"): "as D2.1",
}


def _repro(step: Step) -> str:
    return (
        'repro: .venv/bin/python -c "from proofs_check import ALL_STEPS; '
        f"print(next(s for s in ALL_STEPS if s.id == '{step.id}').run())\""
    )


def test_step_ids_are_unique_and_grouped_by_claim() -> None:
    ids = [s.id for s in ALL_STEPS]
    assert len(set(ids)) == len(ids)
    assert all(s.claim == s.id.split(".")[0] for s in ALL_STEPS)


@pytest.mark.parametrize("step", ALL_STEPS, ids=lambda s: s.id)
def test_step_proves(step: Step) -> None:
    outcome = step.run()
    assert outcome.symbolic_ok, f"{step.id}: symbolic check failed: {outcome.detail}\n{_repro(step)}"
    if step.id in NON_VALUE_BOUNDS:
        assert outcome.numeric_bound > 0.0, f"{step.id}: a numeric comparison needs a positive bound"
    else:
        assert 0.0 < outcome.numeric_bound < 1e-9, f"{step.id}: the bound must come from the float64 VALUE row"
    assert outcome.numeric_error <= outcome.numeric_bound, f"{step.id}: {outcome.detail}\n{_repro(step)}"
    assert outcome.proved


@pytest.mark.parametrize("step", ALL_STEPS, ids=lambda s: s.id)
def test_step_declares_real_reference_functions(step: Step) -> None:
    assert len(step.statement) > 20, f"{step.id}: the docstring must state the step"
    assert step.checks, f"{step.id}: declares no reference function it cross-checks"
    for name in step.checks:
        module_name, _, attr = name.rpartition(".")
        assert module_name.startswith("reference."), name
        fn = getattr(importlib.import_module(module_name), attr)
        assert fn.__module__ == module_name, f"{name}: name it in its defining module {fn.__module__}"


@pytest.mark.parametrize(("step", "name"), CHECKS, ids=[f"{s.id}-{n.rpartition('.')[2]}" for s, n in CHECKS])
def test_planted_error_in_a_declared_cross_check_unproves_the_step(step: Step, name: str) -> None:
    outcomes = []
    for plant in PLANTS:
        outcomes.append(planted_outcome(step, name, plant))
        assert outcomes[-1] != "symbolic", f"{step.id}: only {name} was perturbed; the symbolic part must still hold"
        if outcomes[-1] == "numeric":
            return
    why = f"{step.id}: a planted error in {name} (off by 1e-6, each direction, with and without an offset) gave"
    assert set(outcomes) == {"refused"}, f"{why} {outcomes}, never a failed numeric cross-check"
    assert (step.id, name) in REFUSED_WHEN_PLANTED, f"{why} only refusals; declare it in REFUSED_WHEN_PLANTED"


def test_the_planting_harness_can_fail() -> None:
    """Meta-test: a function the step does not use is not detected (so a detection means something)."""
    step = next(s for s in ALL_STEPS if s.id == "D1.1")
    assert planted_outcome(step, "reference.ddcl.hessian_free_energy", PLANTS[0]) == "proved"
