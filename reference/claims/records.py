"""Record types of the claim registry (SPEC §0, §4).

One :class:`Claim` per claim of SPEC §4. Tests, docs, the ``prove`` command (and later the audit and
the conformance kit) iterate over the registry instead of listing claims by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reference.invariants.result import InvariantResult


class Label(StrEnum):
    """The honesty labels of SPEC §0."""

    PROVED = "proved"
    PAPER_CLAIM = "paper-claim"
    MEASURED = "measured"


@dataclass(frozen=True)
class Hypothesis:
    """A named hypothesis of a claim; ``predicate`` evaluates it on the invariant's keyword inputs."""

    name: str
    statement: str
    predicate: Callable[..., bool]


@dataclass(frozen=True)
class Counterexample:
    """What a falsifier found: inputs violating one hypothesis on which the claim's conclusion fails."""

    claim_id: str
    hypothesis_dropped: str
    inputs: Mapping[str, Any]
    observed: str
    conclusion_fails: bool


@dataclass(frozen=True)
class Falsifier:
    """Drop ``hypothesis`` and exhibit a counterexample (constructed, then checked numerically)."""

    hypothesis: str
    description: str
    run: Callable[[], Counterexample]


@dataclass(frozen=True)
class Claim:
    """One claim of SPEC §4.

    ``invariant`` takes keyword inputs (the same ones the hypotheses' predicates take) plus
    ``raise_on_violation`` and returns its checks. ``sympy_steps`` are ids of steps in
    ``proofs_check`` (the registry never imports sympy; a test matches the ids both ways).
    ``code`` names the reference functions the claim is about, in their defining modules (checked
    importable by a test). Its tests are found through the ``claim`` pytest marker
    (:mod:`ddcl_incrt.claim_tests`), not listed here.
    """

    id: str
    title: str
    label: Label
    statement: str
    hypotheses: tuple[Hypothesis, ...] = ()
    invariant: Callable[..., tuple[InvariantResult, ...]] | None = None
    sympy_steps: tuple[str, ...] = ()
    falsifiers: tuple[Falsifier, ...] = ()
    code: tuple[str, ...] = ()
    implemented: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.id or not self.title:
            raise ValueError("Claim: id and title are required")
        names = [h.name for h in self.hypotheses]
        if len(set(names)) != len(names):
            raise ValueError(f"Claim {self.id}: duplicate hypothesis names {names}")
        for f in self.falsifiers:
            if f.hypothesis not in names:
                raise ValueError(f"Claim {self.id}: falsifier drops unknown hypothesis {f.hypothesis!r}")
        if self.implemented and self.label is Label.PROVED and self.invariant is None:
            raise ValueError(f"Claim {self.id}: an implemented proved claim needs an invariant")

    @property
    def implementation(self) -> tuple[str, ...]:
        """Qualified names of everything that implements the claim: ``code``, the invariant and the
        falsifiers (``docs/theory.md``'s code column lists exactly these; a test compares them)."""
        names = list(self.code)
        for fn in (self.invariant, *(f.run for f in self.falsifiers)):
            if fn is not None:
                names.append(f"{fn.__module__}.{fn.__qualname__}")
        return tuple(names)

    def hypotheses_hold(self, **inputs: Any) -> dict[str, bool]:
        """Evaluate every hypothesis predicate on ``inputs``."""
        return {h.name: bool(h.predicate(**inputs)) for h in self.hypotheses}


__all__ = [
    "Claim",
    "Counterexample",
    "Falsifier",
    "Hypothesis",
    "Label",
]
