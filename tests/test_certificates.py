"""Certificates that mean something: a check is evidence only where its bound could have failed.

The mechanism is one field of :class:`reference.invariants.result.InvariantResult` (``vacuous_at``),
read by the record's summary and the audit's claim table: a bound that every input satisfies (G4's
``sin∠ ≤ 1``, G6's ``∠ ≤ π/2``, a Rayleigh quotient within the spectral spread) or that is too wide to
decide what it protects (G6's eigenvalue bound wider than ``|λ − θ|``) holds but is uncertified.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from _small_run import small_run

from ddcl_incrt.audit.summary import claim_rows, exit_code
from reference.claims.registry import REGISTRY
from reference.incrt import operators as rops
from reference.incrt import trackers as rtrk
from reference.incrt.capture import greedy_capture
from reference.invariants import incrt as inv
from reference.invariants.result import InvariantResult
from reference.log import EVENT_CHECK, InvariantRecord
from training.record import RunRecord


def test_a_bound_at_its_vacuous_value_is_uncertified_and_one_ulp_below_it_is_certified() -> None:
    below = InvariantResult("G4", "sin", 0.25, math.nextafter(1.0, 0.0), vacuous_at=1.0)
    at = InvariantResult("G4", "sin", 0.25, 1.0, vacuous_at=1.0)
    assert below.holds
    assert below.certified
    assert below.used == pytest.approx(0.25)
    assert at.holds
    assert not at.certified
    assert at.used is None
    assert "UNCERTIFIED (bound ≥ 1, vacuous)" in at.describe()
    assert not InvariantResult("G1", "x", 0.0, math.inf).certified
    # a vacuous bound that is exceeded is still a violation: it is never hidden as "uncertified"
    assert not InvariantResult("G6", "eigenvalue", 2.0, 1.0, vacuous_at=0.5).holds
    # an exact check (bound 0) is certified (it can fail) but has no fraction of a bound to report
    exact = InvariantResult("G1", "count", 0.0, 0.0)
    assert exact.certified
    assert exact.used is None
    with pytest.raises(ValueError, match="vacuous_at must not be NaN"):
        InvariantResult("G1", "x", 0.0, 1.0, vacuous_at=math.nan)


def test_g4_reports_a_sin_bound_of_one_as_uncertified_and_a_gapped_one_as_certified() -> None:
    def direction_checks(gap: float) -> list[InvariantResult]:
        A = rops.planted_operator([2.0 + gap, 2.0, 0.5, -1.0], rng=np.random.default_rng(5))
        capture = greedy_capture(A, 1.0)
        return [r for r in inv.check_g4(A=A, theta=1.0, captures=[capture, capture]) if "sin∠" in r.check]

    tied = direction_checks(1e-15)  # the top two eigenvalues within rounding: no direction is defined
    assert tied
    assert all(r.holds and r.bound == 1.0 and not r.certified for r in tied)
    gapped = direction_checks(0.5)
    assert gapped
    assert all(r.holds and r.certified for r in gapped)


def test_g6_eigenvalue_bound_wider_than_the_distance_to_theta_is_uncertified() -> None:
    A5 = rops.planted_operator([3.0, 1.0, 0.5, -0.2, -1.0], rng=np.random.default_rng(3))
    tracker = rtrk.oja_track(A5, np.random.default_rng(0).standard_normal(5), rtrk.certified_step(A5), 40)
    (eig,) = [r for r in inv.check_g6(A=A5, tracker=tracker) if r.check.startswith("eigenvalue")]
    assert eig.certified, eig.describe()  # against the spread alone the bound can fail
    lam = float(rops.eigenvalues_desc(A5)[0])
    near = lam - 0.5 * eig.bound  # θ closer to λ_max than the bound: it cannot tell which side λ is on
    far = lam - 2.0 * eig.bound
    (eig_near,) = [r for r in inv.check_g6(A=A5, tracker=tracker, theta=near) if r.check.startswith("eigenvalue")]
    (eig_far,) = [r for r in inv.check_g6(A=A5, tracker=tracker, theta=far) if r.check.startswith("eigenvalue")]
    assert eig_near.holds
    assert not eig_near.certified
    assert eig_far.certified


@pytest.fixture(scope="module")
def record() -> RunRecord:
    return small_run()


def test_every_live_claim_has_a_certified_pass_in_a_real_run(record: RunRecord) -> None:
    """The small planted run (100 steps) certifies something for every claim it checks: no family of
    invariants that training records is vacuous at realistic scales. (That each can also fire is the
    planted-violation test of each family, tests/test_*_invariants.py.)"""
    summary = record.summary()
    live = {cid for cid, claim in REGISTRY.items() if claim.live}
    checked = live & set(summary)
    assert checked >= {"D1", "G1", "G2", "G3", "G4", "G6"}
    # R1(a)'s orthogonality hypothesis is not what a birth makes: in training it is never promised (its
    # certified passes are on constructed orthogonal writes, tests/test_coupling_statistics.py)
    never_promised = {cid for cid in checked if summary[cid].unpromised == summary[cid].count}
    assert never_promised == {"R1"}
    for cid in checked - never_promised:
        assert summary[cid].certified > 0, (cid, summary[cid])


def _with(record: RunRecord, results: list[InvariantResult]) -> RunRecord:
    return replace(record, invariants=tuple(InvariantRecord(10, EVENT_CHECK, r) for r in results))


def test_the_summary_and_the_claim_table_count_certified_uncertified_and_violated(record: RunRecord) -> None:
    tight = InvariantResult("G6", "direction", 0.9, 1.0, vacuous_at=math.pi / 2)
    vacuous = InvariantResult("G6", "direction", 0.1, math.pi / 2, vacuous_at=math.pi / 2)
    only_vacuous = _with(record, [vacuous, vacuous])
    row = next(r for r in claim_rows(only_vacuous) if r.claim_id == "G6")
    assert (row.checks, row.certified, row.uncertified, row.violations) == (2, 0, 2, 0)
    assert row.status == "nothing certified"
    assert row.tightest is None
    assert exit_code(only_vacuous) == 0

    mixed = _with(record, [tight, vacuous, InvariantResult("G6", "eigenvalue", 0.2, 0.4)])
    s = mixed.summary()["G6"]
    assert (s.count, s.certified, s.uncertified, s.violations) == (3, 2, 1, 0)
    assert s.tightest == pytest.approx(0.9)
    assert s.tightest_check == "direction"
    assert next(r for r in claim_rows(mixed) if r.claim_id == "G6").status == "held"

    violated = _with(record, [tight, InvariantResult("G6", "eigenvalue", 0.5, 0.4)])
    assert next(r for r in claim_rows(violated) if r.claim_id == "G6").status == "violated"
    assert exit_code(violated) == 1
