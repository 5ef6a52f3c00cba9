"""scripts/step_checks.py attributes a proof step's calls to the reference functions it cross-checks.

Most reference functions are wrapped by ``reference._arrays.finite_result``: the frame that calls the
function itself is the wrapper (``guarded``, in ``reference._arrays``), not the step. The script must
look through that wrapper, and must not take the wrapper's own calls (``check_overflow`` on the
result) for the step's. On the old profile hook D1.1 recorded nothing and the script printed
``D1.1 DIFFERS checks=()`` (39 of 47 steps so)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
from _snippets import load_script

from proofs_check import ALL_STEPS

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    return load_script("step_checks")


def _step(step_id: str):  # type: ignore[no-untyped-def]
    return next(s for s in ALL_STEPS if s.id == step_id)


def test_the_functions_d1_1_declares_are_wrapped_by_finite_result() -> None:
    """The premise: D1.1's cross-checks are called through a wrapper (else this test proves nothing)."""
    import reference.ddcl

    assert all(getattr(reference.ddcl, q.rpartition(".")[2]).__wrapped__ for q in _step("D1.1").checks)


@pytest.mark.parametrize("step_id", ["D1.1", "D2.5"])
def test_calls_through_finite_result_are_the_steps(step_id: str) -> None:
    step = _step(step_id)
    called = _script().called_reference_functions(step)
    assert set(called) == set(step.checks)
    assert not any(q.startswith("reference._arrays.") for q in called)  # the wrapper's own check_overflow


def test_the_script_reports_agreement_for_d1_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["D1.1"]) == 0
    out = capsys.readouterr().out
    assert out.split()[:2] == ["D1.1", "ok"]
    for qualified in _step("D1.1").checks:
        assert qualified in out


def test_the_profile_hook_is_removed_afterwards() -> None:
    _script().called_reference_functions(_step("D1.2"))
    assert sys.getprofile() is None
