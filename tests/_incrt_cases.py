"""Shared cases and assertions of the INCRT test modules (not a test module itself)."""

from __future__ import annotations

import numpy as np

from reference.incrt import operators as rops
from reference.invariants.result import InvariantResult


def _assert_hold(results: tuple[InvariantResult, ...]) -> None:
    failed = [r.describe() for r in results if not r.holds]
    assert not failed, "\n".join(failed)


def _fires(results: tuple[InvariantResult, ...], claim: str, check_fragment: str) -> None:
    failed = [r for r in results if not r.holds]
    assert failed, f"{claim}: planted violation was not detected"
    assert all(r.claim_id == claim for r in failed)
    assert any(check_fragment in r.check for r in failed), [r.check for r in failed]


A5 = rops.planted_operator([3.0, 2.0, 1.0, -0.5, -2.0], rng=np.random.default_rng(1))


THETA5 = 0.7  # m* = 3
