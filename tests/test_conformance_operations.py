"""The operation registry: one record per operation drives every consumer of the kit.

A new operation is planted as one record (``assignment_covariance``, ``Σ_q`` of SPEC §2, which the kit
does not define) and followed through: its golden vectors are written, the reference adapter covers
it, a port that gets it wrong fails exactly its checks, a port without it is told it is not covered,
the report counts it in its group, and docs/porting.md's generated table would gain its row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ddcl_incrt.conformance import broken, cases, operations
from ddcl_incrt.conformance.adapters.reference import ReferenceAdapter
from ddcl_incrt.conformance.operations import Operation, all_cases, operation_names, porting_table
from ddcl_incrt.conformance.runner import regenerate, run_adapter
from ddcl_incrt.conformance.vectors import read_vectors
from reference import ddcl

DOCS = Path(__file__).resolve().parent.parent / "docs" / "porting.md"

NEW = Operation(
    name="assignment_covariance",
    group="primitives",
    reference=ddcl.assignment_covariance,
    call=lambda f, c: {"Sigma_q": np.array(f(c.array("Q")), dtype=np.float64)},
    cases=cases.primitive_cases("Q"),
    inputs="`Q` n×K",
    outputs="`Sigma_q` K×K",
)


def test_docs_porting_table_is_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert porting_table() in text, (
        "docs/porting.md's table of operations differs from the registry; paste "
        "ddcl_incrt.conformance.operations.porting_table() over it"
    )


def test_every_record_names_its_cases_and_every_check_is_unique() -> None:
    names = operation_names()
    assert len(set(names)) == len(names)
    checks = [c.check for c in all_cases()]
    assert len(set(checks)) == len(checks)
    for op in operations.REGISTRY:
        made = op.cases(op.name)
        assert made, f"{op.name}: no cases"
        assert {c.operation for c in made} == {op.name}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("name", "not a method", "Python identifier"), ("group", "optimisers", "Operation.group")],
)
def test_a_malformed_record_is_refused(field: str, value: str, message: str) -> None:
    kwargs = {"name": NEW.name, "group": NEW.group, field: value}
    with pytest.raises(ValueError, match=message):
        Operation(
            reference=NEW.reference,
            call=NEW.call,
            cases=NEW.cases,
            inputs=NEW.inputs,
            outputs=NEW.outputs,
            **kwargs,  # type: ignore[arg-type]
        )


class _WrongCovariance(ReferenceAdapter):
    """A port of the new operation that forgets the ``−QᵀQ/n`` term (wrong at every setting, K = 1 too)."""

    name = "wrong Σ_q"

    def assignment_covariance(self, Q: np.ndarray) -> np.ndarray:
        return np.diag(Q.sum(axis=0)) / Q.shape[0]


def test_adding_an_operation_is_one_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "REGISTRY", (*operations.REGISTRY, NEW))
    assert "assignment_covariance" in operation_names()
    assert "`assignment_covariance`" in porting_table()

    golden = regenerate(tmp_path / "v1")
    new_checks = {e.case.check for e in read_vectors(golden) if e.case.operation == NEW.name}
    assert new_checks == {
        f"assignment_covariance/{s[0]}" for s in cases._PRIMITIVE_SETTINGS if s[0] not in cases._TEMPERATURE_ONLY
    }

    report = run_adapter(ReferenceAdapter(), directory=golden)
    assert report.exit_code == 0
    assert {r.check for r in report.results if r.status == "pass"} >= new_checks
    assert report.uncovered_operations == []

    wrong = run_adapter(_WrongCovariance(), directory=golden)
    assert {r.check for r in wrong.failures} == new_checks

    partial = run_adapter(broken.PrimitivesOnly(), directory=golden)
    assert "assignment_covariance" in partial.uncovered_operations
    assert partial.covered_summary()["primitives"] == "partial: missing ['assignment_covariance']"
