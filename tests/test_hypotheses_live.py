"""Hypotheses watched during training: for every claim the trainer checks live, a violation planted in
the conclusion where the hypotheses hold makes the audit exit 1, and the same violation where one of
the claim's hypotheses fails is reported as "not promised" and exits 0.

Each case trains the shared small run (it has births, a head prune and prototype prunes, so every live
claim is checked) with the claim's invariant wrapped at the site the trainer calls it: its first result
with a finite bound gets a value one ulp past that bound. The broken hypothesis is the registry's own
predicate negated, so it is evaluated on the live inputs (a site that forgot an input raises) and fails
exactly where it really held.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from _small_run import small_run

from ddcl_incrt.audit.summary import audit_summary, claim_rows, exit_code
from reference import growth_phases
from reference.claims import live
from reference.claims.records import Claim, Hypothesis
from reference.claims.registry import REGISTRY
from reference.invariants.result import InvariantResult
from reference.log import InvariantRecord
from training import trainer
from training.record import RunRecord

# Where the trainer calls each live claim's invariant: (module, name), written out here by hand.
SITES: dict[str, tuple[Any, str]] = {
    "D1": (trainer, "d1_decomposition"),
    "D4": (growth_phases, "d4_anti_collapse"),
    "D5": (growth_phases, "d5_prototype_pruning"),
    "G1": (growth_phases, "check_g1"),
    "G2": (growth_phases, "check_g2"),
    "G3": (growth_phases, "check_g3"),
    "G4": (growth_phases, "check_g4"),
    "G5": (growth_phases, "check_g5_at_prune"),
    "G6": (growth_phases, "check_g6"),
}


def _just_past(r: InvariantResult) -> InvariantResult:
    return replace(r, value=float(np.nextafter(r.bound, math.inf)), check=f"{r.check} (planted)")


def _violating(claim_id: str, invariant: Callable[..., Any]) -> Callable[..., Any]:
    """``invariant`` with the run's first finitely bounded result of ``claim_id`` one ulp past its bound."""
    done = False

    def planted(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        results = invariant(*args, **kwargs)
        one = isinstance(results, InvariantResult)
        out = [results] if one else list(results)
        for i, r in enumerate(out):
            if not done and r.claim_id == claim_id and math.isfinite(r.bound):
                out[i], done = _just_past(r), True
        return out[0] if one else tuple(out)

    return planted


def _negated(claim: Claim, name: str) -> Claim:
    """``claim`` with its hypothesis ``name`` replaced by the negation of its own predicate."""

    def fails_where_it_held(**inputs: Any) -> bool:
        return not next(h for h in claim.hypotheses if h.name == name).predicate(**inputs)

    hyps = tuple(
        Hypothesis(h.name, h.statement, fails_where_it_held) if h.name == name else h for h in claim.hypotheses
    )
    return replace(claim, hypotheses=hyps)


def _planted_run(monkeypatch: pytest.MonkeyPatch, claim_id: str, broken: str | None = None) -> RunRecord:
    module, name = SITES[claim_id]
    monkeypatch.setattr(module, name, _violating(claim_id, getattr(module, name)))
    if broken is not None:
        registry = dict(REGISTRY)
        registry[claim_id] = _negated(REGISTRY[claim_id], broken)
        monkeypatch.setattr(live, "REGISTRY", registry)
    return small_run()


def test_the_sites_here_are_the_live_claims_of_the_registry() -> None:
    assert set(SITES) == {cid for cid, c in REGISTRY.items() if c.live}


@pytest.fixture(scope="module")
def unplanted() -> RunRecord:
    return small_run()


def test_the_unplanted_small_run_has_every_live_claim_held_and_d4_unpromised_once_t_c_fell(
    unplanted: RunRecord,
) -> None:
    """Every live claim is checked and holds where promised. D4's hypothesis T_P < T_c fails for real
    in this run (T_c of the probe's tokens falls below T_P = 1 by the second check): D4's checks are not
    promised exactly at the checks whose recorded collapse margin T_c − T_P is not positive."""
    rows = {r.claim_id: r for r in claim_rows(unplanted)}
    for cid in SITES:
        assert rows[cid].checks > 0, cid
        assert (rows[cid].violations, rows[cid].failed_unpromised, rows[cid].unwatched) == (0, 0, 0), rows[cid]
        if cid != "D4":
            assert rows[cid].unpromised == 0, rows[cid]
    not_promised = {r.step for r in unplanted.invariants if r.result.claim_id == "D4" and r.promised is False}
    assert not_promised == {c.step for c in unplanted.checks if not c.collapse_margin > 0.0}
    assert 0 < len(not_promised) < len(unplanted.checks)
    assert rows["D4"].failed_hypotheses == ("temperature_below_critical",)
    assert exit_code(unplanted) == 0


@pytest.mark.parametrize("claim_id", sorted(SITES))
def test_a_violation_where_the_hypotheses_hold_exits_one(monkeypatch: pytest.MonkeyPatch, claim_id: str) -> None:
    record = _planted_run(monkeypatch, claim_id)
    planted = [r for r in record.invariants if r.result.check.endswith("(planted)")]
    assert len(planted) == 1 and all(r.violation and r.promised for r in planted)
    row = {r.claim_id: r for r in claim_rows(record)}[claim_id]
    assert row.status == "violated"
    assert row.violations == len(planted)
    assert exit_code(record) == 1
    assert audit_summary(record, engine="reference", wall_time_s=0.0)["exit_code"] == 1


@pytest.mark.parametrize(
    ("claim_id", "hypothesis"),
    [(cid, h.name) for cid in sorted(SITES) for h in REGISTRY[cid].hypotheses],
)
def test_the_same_violation_where_a_hypothesis_fails_is_not_promised_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch, unplanted: RunRecord, claim_id: str, hypothesis: str
) -> None:
    record = _planted_run(monkeypatch, claim_id, broken=hypothesis)
    planted = [r for r in record.invariants if r.result.check.endswith("(planted)")]
    assert len(planted) == 1
    assert all(r.failed_hypotheses == (hypothesis,) and not r.violation for r in planted)
    row = {r.claim_id: r for r in claim_rows(record)}[claim_id]
    assert row.violations == 0
    assert row.failed_unpromised == len(planted)
    if {r.claim_id: r for r in claim_rows(unplanted)}[claim_id].unpromised == 0:
        # the negated predicate fails wherever the real one held, which was everywhere
        assert row.unpromised == row.checks
        assert row.failed_hypotheses == (hypothesis,)
        assert row.status == "not promised"
    assert exit_code(record) == 0
    summary = audit_summary(record, engine="reference", wall_time_s=0.0)
    assert summary["exit_code"] == 0
    assert any(
        f"Claim {claim_id}:" in line and hypothesis in line and "failed anyway" in line for line in summary["findings"]
    )


def test_a_record_of_the_planted_hypothesis_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    record = _planted_run(monkeypatch, "G5", broken="hysteresis")
    again = RunRecord.from_json(record.to_json())
    assert again.summary() == record.summary()
    assert [r.failed_hypotheses for r in again.invariants] == [r.failed_hypotheses for r in record.invariants]
    assert isinstance(again.invariants[0], InvariantRecord)
