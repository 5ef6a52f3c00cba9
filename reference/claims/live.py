"""Claims checked during training with their hypotheses watched: each live invariant result is recorded
together with the hypotheses of its claim that failed on the same live inputs.

The hypotheses are the registry's own (:attr:`reference.claims.records.Claim.hypotheses`), evaluated by
their predicates on the inputs the invariant was checked on, so the record says for every check whether
the claim had promised its conclusion there. Where a hypothesis failed nothing was promised: the check
is still recorded (what the conclusion did anyway), but a failure there is not a violation
(:attr:`reference.log.InvariantRecord.violation`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from reference.claims.registry import REGISTRY
from reference.invariants.result import InvariantResult
from reference.log import InvariantRecord


def failed_hypotheses(claim_id: str, **inputs: Any) -> tuple[str, ...]:
    """The names of ``claim_id``'s hypotheses that fail on ``inputs``, in the registry's order.

    ``inputs`` must carry every keyword the claim's predicates read (a missing one is a TypeError naming
    it: the caller forgot a hypothesis, which must not read as "held")."""
    held = REGISTRY[claim_id].hypotheses_hold(**inputs)
    return tuple(name for name, ok in held.items() if not ok)


def needed_by(claim_id: str, failed: Collection[str], check: str) -> tuple[str, ...]:
    """The hypotheses among ``failed`` that the check named ``check`` needs
    (:meth:`reference.claims.records.Hypothesis.needed_by`), in the registry's order."""
    return tuple(h.name for h in REGISTRY[claim_id].hypotheses if h.name in failed and h.needed_by(check))


def recorded(
    results: Iterable[InvariantResult],
    failed: Mapping[str, Collection[str]],
    *,
    step: int,
    event: str,
    head_id: int | None = None,
    prototype_id: int | None = None,
) -> tuple[InvariantRecord, ...]:
    """The invariant ``results`` checked at ``step`` and ``event`` as records, each carrying the hypotheses
    of its claim that failed (``failed``, by claim id, already evaluated) and that its check needs."""
    return tuple(
        InvariantRecord(
            step, event, r, head_id, prototype_id, failed_hypotheses=needed_by(r.claim_id, failed[r.claim_id], r.check)
        )
        for r in results
    )


def watched(
    results: Iterable[InvariantResult],
    *,
    step: int,
    event: str,
    head_id: int | None = None,
    prototype_id: int | None = None,
    **inputs: Any,
) -> tuple[InvariantRecord, ...]:
    """:func:`recorded`, with the hypotheses of every claim among ``results`` evaluated on ``inputs`` (once
    per claim)."""
    out = tuple(results)
    failed = {cid: failed_hypotheses(cid, **inputs) for cid in dict.fromkeys(r.claim_id for r in out)}
    return recorded(out, failed, step=step, event=event, head_id=head_id, prototype_id=prototype_id)


__all__ = ["failed_hypotheses", "needed_by", "recorded", "watched"]
