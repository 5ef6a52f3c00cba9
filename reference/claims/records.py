"""Record types of the claim registry (SPEC §0, §4).

One :class:`Claim` per claim of SPEC §4. Tests, docs, the ``prove`` command, the audit and the
conformance kit iterate over the registry instead of listing claims by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from reference.invariants.result import InvariantResult
from reference.log import EVENTS


class Label(StrEnum):
    """The honesty labels of SPEC §0."""

    PROVED = "proved"
    PAPER_CLAIM = "paper-claim"
    MEASURED = "measured"


@dataclass(frozen=True)
class Hypothesis:
    """A named hypothesis of a claim; ``predicate`` evaluates it on the invariant's keyword inputs.

    ``only_for``: the prefixes of the names of the invariant's checks whose conclusion needs this
    hypothesis (G5's hysteresis is needed for "no growth at the next check", not for the change of
    ``A_res`` a removal makes); empty when every check needs it."""

    name: str
    statement: str
    predicate: Callable[..., bool]
    only_for: tuple[str, ...] = ()

    def needed_by(self, check: str) -> bool:
        """Whether the conclusion that the check named ``check`` tests needs this hypothesis."""
        return not self.only_for or check.startswith(self.only_for)


@dataclass(frozen=True)
class Counterexample:
    """What a falsifier found: inputs violating one hypothesis on which the claim's conclusion fails.

    ``inputs`` are keyword inputs of the claim's hypothesis predicates *and* of its conclusion predicate
    (:attr:`Claim.conclusion`); ``conclusion_fails`` is ``not conclusion(**inputs)``, computed by the
    falsifier with that predicate (the registry test recomputes it).
    """

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

    ``conclusion(**inputs) -> bool`` says whether the claim's conclusion holds on ``inputs``, computed
    by the code that checks it in training (normally :func:`conclusion_from_invariant`); every
    falsifier's counterexample is fed through it. Every hypothesis of a ``proved``, implemented claim
    is covered exactly once: by one falsifier, or by an entry of ``no_falsifier`` (hypothesis name →
    the reason why no counterexample can exist, e.g. the hypothesis only makes the statement defined).

    ``live`` names the training events (:data:`reference.log.EVENTS`) at which the trainer checks the
    claim's invariant in every run (D1 at every step, G1–G4 at births, …); empty for a claim that only
    the test suite and ``ddcl-incrt prove`` check on generated inputs; ``not_live`` then says why a
    training run cannot check it (required of an implemented proved claim that is not live). ``study`` is
    the command of the study of many runs that measures the claim, where one run cannot. The audit reads
    all three from here.
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
    conclusion: Callable[..., bool] | None = None
    no_falsifier: Mapping[str, str] = field(default_factory=dict, hash=False)
    live: tuple[str, ...] = ()
    study: str = ""
    not_live: str = ""

    def __post_init__(self) -> None:
        if not self.id or not self.title:
            raise ValueError("Claim: id and title are required")
        names = [h.name for h in self.hypotheses]
        if len(set(names)) != len(names):
            raise ValueError(f"Claim {self.id}: duplicate hypothesis names {names}")
        for f in self.falsifiers:
            if f.hypothesis not in names:
                raise ValueError(f"Claim {self.id}: falsifier drops unknown hypothesis {f.hypothesis!r}")
        # A read-only copy: the registry is shared by every test, command and report.
        object.__setattr__(self, "no_falsifier", MappingProxyType(dict(self.no_falsifier)))
        for name, reason in self.no_falsifier.items():
            if name not in names:
                raise ValueError(f"Claim {self.id}: no_falsifier names unknown hypothesis {name!r}")
            if not isinstance(reason, str) or not reason.strip():
                raise ValueError(f"Claim {self.id}: no_falsifier[{name!r}] must state a reason")
        unknown = [e for e in self.live if e not in EVENTS]
        if unknown:
            raise ValueError(f"Claim {self.id}: live names unknown training events {unknown} (known: {list(EVENTS)})")
        if self.live and (not self.implemented or self.invariant is None):
            raise ValueError(f"Claim {self.id}: a claim checked live must be implemented, with an invariant")
        if self.live and self.not_live:
            raise ValueError(f"Claim {self.id}: checked live at {list(self.live)}, so not_live must be empty")
        if self.implemented and self.label is Label.PROVED and not self.live and not self.not_live.strip():
            raise ValueError(f"Claim {self.id}: a proved claim no training event checks must say why (not_live)")
        if self.implemented and self.label is Label.PROVED:
            if self.invariant is None:
                raise ValueError(f"Claim {self.id}: an implemented proved claim needs an invariant")
            if self.conclusion is None:
                raise ValueError(f"Claim {self.id}: an implemented proved claim needs a conclusion predicate")
            self._check_coverage(names)

    def _check_coverage(self, names: list[str]) -> None:
        """Every hypothesis covered exactly once: by one falsifier or by one stated reason, never both."""
        dropped = [f.hypothesis for f in self.falsifiers]
        twice = sorted({n for n in dropped if dropped.count(n) > 1})
        if twice:
            raise ValueError(f"Claim {self.id}: more than one falsifier drops {twice}")
        both = sorted(set(dropped) & set(self.no_falsifier))
        if both:
            raise ValueError(f"Claim {self.id}: {both} have a falsifier, so no reason may say none can exist")
        uncovered = [n for n in names if n not in dropped and n not in self.no_falsifier]
        if uncovered:
            raise ValueError(
                f"Claim {self.id}: hypotheses {uncovered} have neither a falsifier nor a stated reason why "
                "none can exist (no_falsifier)"
            )

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

    def conclusion_holds(self, **inputs: Any) -> bool:
        """Evaluate the conclusion predicate on ``inputs`` (a claim without one raises)."""
        if self.conclusion is None:
            raise ValueError(f"Claim {self.id}: no conclusion predicate")
        return bool(self.conclusion(**inputs))


def invariant_inputs(
    invariant: Callable[..., tuple[InvariantResult, ...]], inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """The entries of ``inputs`` that ``invariant`` takes as keywords (falsifiers' inputs may carry more,
    e.g. seeds or a spectrum, which only the observation or a hypothesis reads)."""
    params = inspect.signature(invariant).parameters
    return {k: v for k, v in inputs.items() if k in params and k != "raise_on_violation"}


def conclusion_from_invariant(invariant: Callable[..., tuple[InvariantResult, ...]]) -> Callable[..., bool]:
    """The conclusion predicate "every check of ``invariant`` holds on these inputs" — the invariant the
    trainer calls, evaluated without raising, on the entries of the inputs it takes."""

    def conclusion(**inputs: Any) -> bool:
        results = invariant(**invariant_inputs(invariant, inputs), raise_on_violation=False)
        return all(r.holds for r in results)

    conclusion.__qualname__ = f"conclusion_from_invariant({invariant.__qualname__})"
    conclusion.__doc__ = f"Every check of {invariant.__module__}.{invariant.__qualname__} holds."
    return conclusion


__all__ = [
    "Claim",
    "Counterexample",
    "Falsifier",
    "Hypothesis",
    "Label",
    "conclusion_from_invariant",
    "invariant_inputs",
]
