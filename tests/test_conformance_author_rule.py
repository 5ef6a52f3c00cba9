"""The method author's growth code in the conformance kit (ddcl_incrt.conformance.author_rule): each of
its elements, written into a port of SPEC's rule, is caught by its named check and reproduced on its own;
the whole rule as a port fails exactly the decision cases whose decision changes, and those are the ones
an independent reading of the author's rule predicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _snippets import run_snippet

from ddcl_incrt.conformance import author_rule
from ddcl_incrt.conformance.author_rule import AUTHOR_DIFFERENCES, DECISION_OPERATIONS, NOT_DECIDABLE
from ddcl_incrt.conformance.cases import decode_growth_state
from ddcl_incrt.conformance.runner import golden, run_adapter

ROOT = Path(__file__).resolve().parents[1]
PORT = "ddcl_incrt.conformance.author_rule:author_code_port"
EXPRESSED = [d for d in AUTHOR_DIFFERENCES if d.factory]


@pytest.mark.parametrize("difference", EXPRESSED, ids=[d.factory.split(":")[1] for d in EXPRESSED])
def test_each_element_of_the_authors_code_is_caught_by_its_check(difference: author_rule.AuthorDifference) -> None:
    report = run_adapter(difference.factory)
    failed = {r.check: r for r in report.failures}
    assert difference.check in failed, f"{difference.factory} not caught by {difference.check}: {sorted(failed)}"
    # one element changes one operation: the kit names where the port differs, nothing else
    assert {r.operation for r in report.failures} == {difference.check.split("/")[0]}
    run = run_snippet(failed[difference.check].repro)
    assert run.returncode != 0, run.stdout + run.stderr
    # a port whose state the reference's types refuse (5 directions at d = 4) is an error, not a pass
    status = failed[difference.check].status
    assert status in ("fail", "error")
    assert f"conformance check {difference.check}: {status}" in run.stderr


def test_every_element_is_expressed_or_says_why_not() -> None:
    for d in AUTHOR_DIFFERENCES:
        assert bool(d.factory) == bool(d.check) != bool(d.reason), d
    own = [d.factory for d in EXPRESSED if d.factory.startswith(author_rule.__name__)]
    assert len(set(own)) == len(own)


def test_the_whole_rule_fails_exactly_the_decision_cases_whose_decision_changes() -> None:
    rows = author_rule.decision_differences()
    changed = {r.check for r in rows if r.changed}
    report = run_adapter(PORT)
    failed = {r.check for r in report.failures}
    decisions = {c for c in failed if c.split("/")[0] in DECISION_OPERATIONS}
    assert decisions == changed
    # outside the decisions only the author's MCA-EXIN step differs; what the cases cannot decide is not covered
    assert {c.split("/")[0] for c in failed - decisions} == {"mca_exin_track"}
    assert set(NOT_DECIDABLE) <= set(report.uncovered_operations)


def test_the_changed_decisions_are_the_ones_the_authors_rule_predicts() -> None:
    """Read from the author's rule, not from the port: at d = 4 the constant prune dwell is
    ⌈2 ln 20 / ((1/40)(0.1)²)⌉ = 23 966 checks, so no prune case can prune a head and every count is
    reset; the λ_min gate (θ/2 = 0.25) closes only where the smallest eigenvalue of A (m = 0) is above
    it; prototype pruning is the project's; the author's trajectories prune no head."""
    rows = {r.check: r for r in author_rule.decision_differences()}
    entries = {e.case.check: e.case for e in golden()}
    for check, case in entries.items():
        if case.operation != "prune_decision":
            continue
        heads = decode_growth_state("state", case.inputs).heads
        expected = "heads " + " ".join(f"{h.head_id}:0" for h in heads)
        assert expected + ";" in rows[check].author, (check, rows[check].author)
    for check, row in rows.items():
        op = row.operation
        if op == "static_growth":
            lam_min = float(np.linalg.eigvalsh(entries[check].array("A"))[0])
            assert row.changed == (lam_min >= 0.25), check
        if op == "prototype_prune_decision":
            assert not row.changed, check
        if op == "trajectory":
            assert "prune h" not in row.author, check
        if op in NOT_DECIDABLE:
            assert not row.changed, check
            assert row.author.startswith("not decidable"), check
    assert rows["static_growth/everything_above"].author == "0 births"


def test_docs_carry_the_author_tables() -> None:
    """Both generated tables are docs/porting.md's. The decision table's trajectory rows are compared by
    their check only: the author's side is a 40-step run through BLAS, which on another CPU may take the
    other branch at a near-tie (the kit itself compares trajectories only up to their first near-tie);
    the test above checks them live against the kit's failures on every machine."""
    text = (ROOT / "docs" / "porting.md").read_text(encoding="utf-8")
    assert author_rule.difference_table() in text, "paste ddcl_incrt.conformance.author_rule.difference_table()"
    marker = "author_rule.decision_table(decision_differences())"
    below = text[text.index(marker) :].splitlines()[1:]  # the table: from the marker's next line to a blank
    documented = below[: below.index("")]
    generated = author_rule.decision_table(author_rule.decision_differences()).splitlines()
    assert len(documented) == len(generated), "paste author_rule.decision_table(author_rule.decision_differences())"
    for doc, gen in zip(documented, generated, strict=True):
        if gen.startswith("| `trajectory/"):
            assert doc.split(" | ")[0] == gen.split(" | ")[0]
        else:
            assert doc == gen, "paste author_rule.decision_table(author_rule.decision_differences())"
