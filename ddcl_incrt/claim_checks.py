"""The checks of the claims made outside training, as data: every sympy derivation step (``prove``) and
every falsifier's counterexample (``falsify``). The commands print them; the audit embeds them for the
claims it cannot check live (and for every claim's proof)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from reference.claims.records import Label
from reference.claims.registry import REGISTRY


@dataclass(frozen=True)
class StepResult:
    """One sympy step: ``symbolic`` is "ok", "FAILED" or "ERROR" (the step raised; ``numeric`` says what)."""

    claim: str
    step: str
    statement: str
    symbolic: str
    numeric: str
    proved: bool
    seconds: float


@dataclass(frozen=True)
class FalsifierResult:
    """One hypothesis of an implemented proved claim: its counterexample, or the reason none can exist.

    ``dropped_false``: the dropped hypothesis is false on the counterexample, ``others_false`` the other
    hypotheses false there (none, for a counterexample that drops one); ``conclusion_fails``: the claim's
    conclusion predicate is false there; ``agrees``: the falsifier's own report says the same. A
    counterexample holds up when it drops exactly its hypothesis and the conclusion fails, as reported."""

    claim: str
    hypothesis: str
    observed: str
    reason: str = ""
    dropped_false: bool = True
    others_false: tuple[str, ...] = ()
    conclusion_fails: bool = True
    agrees: bool = True

    @property
    def only_this_false(self) -> bool:
        return self.dropped_false and not self.others_false

    @property
    def holds_up(self) -> bool:
        return bool(self.reason) or (self.only_this_false and self.conclusion_fails and self.agrees)


def proof_steps(claims: Iterable[str] | None = None) -> list[StepResult]:
    """Run the sympy steps (of ``claims``, or all); a step that raises is a failed step with its error."""
    from proofs_check import ALL_STEPS

    wanted = None if claims is None else set(claims)
    out = []
    for step in ALL_STEPS:
        if wanted is not None and step.claim not in wanted:
            continue
        t0 = time.perf_counter()
        try:
            res = step.run()
            proved, sym = res.proved, "ok" if res.symbolic_ok else "FAILED"
            num = f"{res.numeric_error:.2e} / {res.numeric_bound:.2e}"
        except Exception as exc:  # a crashing step is a failed step, reported with its error
            proved, sym, num = False, "ERROR", f"{type(exc).__name__}: {exc}"
        out.append(StepResult(step.claim, step.id, step.statement, sym, num, proved, time.perf_counter() - t0))
    return out


def falsifier_results() -> list[FalsifierResult]:
    """One row per hypothesis of every implemented ``proved`` claim of the registry."""
    out = []
    for claim in REGISTRY.values():
        if claim.label is not Label.PROVED or not claim.implemented:
            continue
        by_hypothesis = {f.hypothesis: f for f in claim.falsifiers}
        for h in claim.hypotheses:
            if h.name in claim.no_falsifier:
                out.append(FalsifierResult(claim.id, h.name, "", reason=claim.no_falsifier[h.name]))
                continue
            ce = by_hypothesis[h.name].run()
            holds = claim.hypotheses_hold(**ce.inputs)
            others = tuple(k for k, v in holds.items() if k != h.name and not v)
            concluded = claim.conclusion_holds(**ce.inputs)
            out.append(
                FalsifierResult(
                    claim.id,
                    h.name,
                    ce.observed,
                    dropped_false=not holds[h.name],
                    others_false=others,
                    conclusion_fails=not concluded,
                    agrees=ce.conclusion_fails == (not concluded),
                )
            )
    return out


__all__ = ["FalsifierResult", "StepResult", "falsifier_results", "proof_steps"]
