"""The audit's exit status by claim label: only a violated ``proved`` claim exits 1; a violated
``paper-claim`` or ``measured`` claim is reported (its row says ``violated``) but exits 0.

The labels are the honesty labels of the claim table in docs/theory.md, written out here by hand (not
read from the registry the rule is computed from). Each case plants one violated invariant record
(value one ulp above its bound) into a real run's record, through ``exit_code``, ``audit_summary``
and the ``ddcl-incrt audit`` command itself (training replaced by the planted record).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _small_run import small_run

from ddcl_incrt.audit import run as audit_run
from ddcl_incrt.audit.summary import audit_summary, claim_rows, exit_code
from ddcl_incrt.cli import main
from reference.claims.registry import REGISTRY
from reference.invariants.result import InvariantResult
from reference.log import EVENT_TRAIN_STEP, InvariantRecord
from training.record import RunRecord

# docs/theory.md, the claim table's "label" column.
LABELS = {
    **{f"D{i}": "proved" for i in range(1, 7)},
    **{f"G{i}": "proved" for i in range(1, 7)},
    "R1": "paper-claim",
    "R2": "measured",
    "R3": "paper-claim",
    "R4": "measured",
}
JUST_PAST = float(np.nextafter(1.0, 2.0))  # one ulp above the bound 1.0: violated


@pytest.fixture(scope="module")
def record() -> RunRecord:
    return small_run()


def _violating(rec: RunRecord, *claim_ids: str) -> RunRecord:
    extra = tuple(
        InvariantRecord(1, EVENT_TRAIN_STEP, InvariantResult(cid, "planted", JUST_PAST, 1.0)) for cid in claim_ids
    )
    return replace(rec, invariants=(*rec.invariants, *extra))


def test_the_labels_written_here_are_every_claim_of_the_registry() -> None:
    assert set(LABELS) == set(REGISTRY)
    assert set(LABELS.values()) == {"proved", "paper-claim", "measured"}


def test_the_unplanted_record_exits_zero(record: RunRecord) -> None:
    assert record.violations() == ()
    assert exit_code(record) == 0


@pytest.mark.parametrize("claim_id", sorted(LABELS))
def test_one_violated_claim_exits_one_exactly_when_it_is_proved(record: RunRecord, claim_id: str) -> None:
    bad = _violating(record, claim_id)
    row = {r.claim_id: r for r in claim_rows(bad)}[claim_id]
    assert (row.status, row.violations) == ("violated", 1)  # reported whatever the label
    assert exit_code(bad) == (1 if LABELS[claim_id] == "proved" else 0)


def test_every_non_proved_claim_violated_at_once_still_exits_zero(record: RunRecord) -> None:
    others = [c for c, label in LABELS.items() if label != "proved"]
    bad = _violating(record, *others)
    assert len(bad.violations()) == len(others)
    assert exit_code(bad) == 0
    assert audit_summary(bad, engine="reference", wall_time_s=0.0)["exit_code"] == 0
    # one proved violation among them decides
    assert exit_code(_violating(bad, "G5")) == 1


@pytest.mark.parametrize(("claim_id", "expected"), [("D1", 1), ("R1", 0)])
def test_the_audit_command_exits_by_the_label_of_the_violated_claim(
    record: RunRecord, claim_id: str, expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end (one label each way; the report takes seconds to write): the command's status is the
    rule's, and summary.json says the same."""
    bad = _violating(record, claim_id)

    def planted_training(opts: Any, console: Any) -> tuple[RunRecord, str]:
        return bad, "reference (planted record)"

    monkeypatch.setattr(audit_run, "run_training", planted_training)
    out = tmp_path / "audit"
    assert main(["audit", "--quick", "--dataset", "planted", "--engine", "reference", "--out", str(out)]) == expected
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["exit_code"] == expected
    assert doc["violations"] == 1
    assert {c["claim_id"]: c["status"] for c in doc["claims"]}[claim_id] == "violated"
