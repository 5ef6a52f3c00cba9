"""Structured results of invariant checks, and the error raised when one is asserted and fails."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class InvariantResult:
    """One checked inequality ``value ≤ bound`` of a claim.

    ``margin = bound − value`` (positive: holds with room to spare). Equalities are checked as
    ``|residual| ≤ error bound``; lower bounds (``x ≥ 0``) as ``−x ≤ error bound``. ``details``
    carries the inputs' summary and a copy-paste reproduction when one is available.

    ``vacuous_at``: a bound at or above it certifies nothing, because every input satisfies it (``sin∠ ≤ 1``,
    ``∠ ≤ π/2``, a Rayleigh quotient within the spectral spread) or because it is too wide to decide what
    the check protects (an eigenvalue bound wider than the eigenvalue's distance to θ). Such a check, like
    one with an infinite bound, is :attr:`certified` False: it holds, but it is not evidence.
    """

    claim_id: str
    check: str
    value: float
    bound: float
    details: str = ""
    vacuous_at: float = math.inf

    def __post_init__(self) -> None:
        # Invariants often pass NumPy scalars; store plain floats so comparisons yield plain bools.
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "bound", float(self.bound))
        object.__setattr__(self, "vacuous_at", float(self.vacuous_at))
        if math.isnan(self.vacuous_at):
            raise ValueError(f"InvariantResult({self.claim_id}/{self.check}): vacuous_at must not be NaN")
        if math.isnan(self.value) or math.isnan(self.bound):
            # From an invariant's validated (finite) inputs a NaN can only come from a float64 overflow;
            # the invariant's finite_result wrapper adds which inputs.
            raise FloatingPointError(
                f"InvariantResult({self.claim_id}/{self.check}): value and bound must not be NaN "
                "(float64 overflowed computing them)"
            )

    @property
    def margin(self) -> float:
        return self.bound - self.value

    @property
    def holds(self) -> bool:
        return self.value <= self.bound

    @property
    def certified(self) -> bool:
        """Whether the bound could have failed: it is finite (an infinite one means the worst-case rounding
        scale overflowed float64) and below :attr:`vacuous_at`. An uncertified check says nothing and is
        reported as such, never counted as evidence."""
        return math.isfinite(self.bound) and self.bound < self.vacuous_at

    @property
    def used(self) -> float | None:
        """The fraction of the bound the value used, ``value / bound`` (1 at the bound; negative: a lower
        bound met with room), for a certified check with a positive bound; None otherwise (an exact
        check, ``bound = 0``, holds or fails with nothing in between)."""
        return self.value / self.bound if self.certified and self.bound > 0.0 else None

    def describe(self) -> str:
        why = "infinite bound" if not math.isfinite(self.bound) else f"bound ≥ {self.vacuous_at:.6g}, vacuous"
        status = ("holds" if self.certified else f"UNCERTIFIED ({why})") if self.holds else "VIOLATED"
        text = (
            f"[{self.claim_id}] {self.check}: value {self.value:.6g} vs bound {self.bound:.6g} "
            f"(margin {self.margin:.3g}) {status}"
        )
        return f"{text}; {self.details}" if self.details else text


class ClaimViolation(AssertionError):
    """An invariant asserted to hold did not; the message names the claim, values, bound and inputs."""

    def __init__(self, results: Sequence[InvariantResult]) -> None:
        self.results = tuple(results)
        claims = sorted({r.claim_id for r in self.results})
        lines = "\n  ".join(r.describe() for r in self.results)
        super().__init__(f"claim {', '.join(claims)} violated:\n  {lines}")


def assert_all(results: Iterable[InvariantResult]) -> tuple[InvariantResult, ...]:
    """Return ``results`` unchanged, or raise :class:`ClaimViolation` listing every failed check."""
    out = tuple(results)
    failed = [r for r in out if not r.holds]
    if failed:
        raise ClaimViolation(failed)
    return out


def finish(results: Iterable[InvariantResult], raise_on_violation: bool) -> tuple[InvariantResult, ...]:
    """Common tail of every invariant: return the results, asserting them when asked.

    A certified check (finite bound) whose value is infinite is refused: from validated, finite inputs
    that means float64 overflowed computing it, and reporting it as a violation would blame the claim
    (the invariant's ``finite_result`` wrapper adds which inputs)."""
    out = tuple(results)
    for r in out:
        if r.certified and not math.isfinite(r.value):
            raise FloatingPointError(
                f"[{r.claim_id}] {r.check}: the checked value overflowed float64 ({r.value}) for inputs of this "
                "magnitude; it is neither a violation nor evidence"
            )
    return assert_all(out) if raise_on_violation else out


__all__ = [
    "ClaimViolation",
    "InvariantResult",
    "assert_all",
    "finish",
]
