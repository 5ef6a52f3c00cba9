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
from reference.claims.records import Claim
from reference.claims.registry import REGISTRY
from reference.invariants.result import InvariantResult
from reference.log import InvariantRecord
from training import trainer
from training.record import RunRecord

# Where the trainer calls each live claim's invariant: (module, name), written out here by hand.
SITES: dict[str, tuple[tuple[Any, str], ...]] = {
    "D1": ((trainer, "d1_decomposition"),),
    "D2": ((growth_phases, "d2_free_energy_gradients"),),
    "D3": ((growth_phases, "d3_lyapunov"),),
    "D4": ((growth_phases, "d4_anti_collapse"),),
    "D5": ((growth_phases, "d5_prototype_pruning"),),
    "G1": ((growth_phases, "check_g1"),),
    "G2": ((growth_phases, "check_g2"),),
    "G3": ((growth_phases, "check_g3"),),
    "G4": ((growth_phases, "check_g4"),),
    # every check, for every head as if pruned; and at each actual prune
    "G5": ((growth_phases, "check_g5"), (growth_phases, "check_g5_at_prune")),
    "G6": ((growth_phases, "check_g6"),),
    "R1": ((growth_phases, "r1a_orthogonal_split"),),
}
# The proved ones: a violation of theirs decides the exit code (R1's lemma is labelled paper-claim).
PROVED_SITES = [(cid, site) for cid, sites in SITES.items() if cid != "R1" for site in sites]


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

    hyps = tuple(replace(h, predicate=fails_where_it_held) if h.name == name else h for h in claim.hypotheses)
    return replace(claim, hypotheses=hyps)


def _planted_run(
    monkeypatch: pytest.MonkeyPatch, claim_id: str, site: tuple[Any, str], broken: str | None = None
) -> RunRecord:
    module, name = site
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
        assert (rows[cid].violations, rows[cid].unwatched) == (0, 0), rows[cid]
        if cid not in ("D4", "R1"):
            assert (rows[cid].unpromised, rows[cid].failed_unpromised) == (0, 0), rows[cid]
    not_promised = {r.step for r in unplanted.invariants if r.result.claim_id == "D4" and r.promised is False}
    assert not_promised == {c.step for c in unplanted.checks if not c.collapse_margin > 0.0}
    assert 0 < len(not_promised) < len(unplanted.checks)
    assert rows["D4"].failed_hypotheses == ("temperature_below_critical",)
    assert rows["D4"].failed_unpromised == 0  # its identities hold at every temperature
    assert exit_code(unplanted) == 0


def test_r1a_is_not_promised_at_the_births_of_this_run_and_says_what_the_split_did(unplanted: RunRecord) -> None:
    """The newborn's write is not orthogonal to the tokens (the lemma's hypothesis), so the split is not
    promised; it fails anyway, and that is reported, not counted as a violation."""
    row = {r.claim_id: r for r in claim_rows(unplanted)}["R1"]
    births = unplanted.architecture.births
    assert births > 0
    assert (row.checks, row.unpromised, row.violations) == (2 * births, 2 * births, 0)
    assert row.failed_hypotheses == ("rows_orthogonal",)
    assert row.failed_unpromised >= 1
    assert row.status == "not promised"


@pytest.mark.parametrize(("claim_id", "site"), PROVED_SITES, ids=[f"{c}-{s[1]}" for c, s in PROVED_SITES])
def test_a_violation_where_the_hypotheses_hold_exits_one(
    monkeypatch: pytest.MonkeyPatch, claim_id: str, site: tuple[Any, str]
) -> None:
    record = _planted_run(monkeypatch, claim_id, site)
    planted = [r for r in record.invariants if r.result.check.endswith("(planted)")]
    assert len(planted) == 1
    assert all(r.violation and r.promised for r in planted)
    row = {r.claim_id: r for r in claim_rows(record)}[claim_id]
    assert row.status == "violated"
    assert row.violations == len(planted)
    assert exit_code(record) == 1
    assert audit_summary(record, engine="reference", wall_time_s=0.0)["exit_code"] == 1


BROKEN = [
    (cid, site, h.name)
    for cid, site in PROVED_SITES
    for h in REGISTRY[cid].hypotheses
    if h.only_for == ()  # a hypothesis only some checks need is tested below, at such a check
]


@pytest.mark.parametrize(("claim_id", "site", "hypothesis"), BROKEN, ids=[f"{c}-{s[1]}-{h}" for c, s, h in BROKEN])
def test_the_same_violation_where_a_hypothesis_fails_is_not_promised_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch, unplanted: RunRecord, claim_id: str, site: tuple[Any, str], hypothesis: str
) -> None:
    record = _planted_run(monkeypatch, claim_id, site, broken=hypothesis)
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


def test_hysteresis_excuses_only_the_no_growth_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """G5's hysteresis is needed by the no-growth conclusion only: broken, it leaves the checks of the change
    a removal makes promised (a planted violation there still exits 1) and excuses the no-growth check."""
    record = _planted_run(monkeypatch, "G5", (growth_phases, "check_g5_at_prune"), broken="hysteresis")
    (planted,) = [r for r in record.invariants if r.result.check.endswith("(planted)")]
    assert not planted.result.check.startswith(("hysteresis", "no re-trigger")), planted.result.check
    assert planted.violation
    assert exit_code(record) == 1
    at_prunes = [r for r in record.invariants if r.result.claim_id == "G5" and r.event == "head_prune"]
    no_growth = [r for r in at_prunes if r.result.check.startswith(("hysteresis", "no re-trigger"))]
    assert no_growth
    assert all(r.failed_hypotheses == ("hysteresis",) for r in no_growth)
    assert all(r.failed_hypotheses == () for r in at_prunes if r not in no_growth)


def test_a_record_of_a_planted_hypothesis_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    record = _planted_run(monkeypatch, "G5", (growth_phases, "check_g5_at_prune"), broken="hysteresis")
    again = RunRecord.from_json(record.to_json())
    assert again.summary() == record.summary()
    assert [r.failed_hypotheses for r in again.invariants] == [r.failed_hypotheses for r in record.invariants]
    assert isinstance(again.invariants[0], InvariantRecord)
