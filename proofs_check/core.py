"""Stepwise symbolic checks (nerva-sympy style): tiny symbolic sizes, declared assumptions, numbered
steps, equality as ``simplify(lhs − rhs) == 0``, each result also evaluated numerically against
``reference`` with a tolerance from :mod:`reference.tolerances`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class StepOutcome:
    """Result of one step: the symbolic verdict and the numeric cross-check against the reference."""

    symbolic_ok: bool
    numeric_error: float
    numeric_bound: float
    detail: str = ""

    @property
    def proved(self) -> bool:
        return self.symbolic_ok and self.numeric_error <= self.numeric_bound


@dataclass(frozen=True)
class Step:
    """A numbered derivation step ``id`` (e.g. ``"D2.3"``) of claim ``claim``."""

    id: str
    claim: str
    statement: str
    run: Callable[[], StepOutcome]

    def __post_init__(self) -> None:
        if not self.id.startswith(self.claim + "."):
            raise ValueError(f"Step {self.id!r}: id must start with its claim id {self.claim!r} and a dot")


def is_zero(expr: sp.Expr | sp.MatrixBase) -> bool:
    """``simplify(expr) == 0`` entrywise (the only notion of symbolic equality we use)."""
    if isinstance(expr, sp.MatrixBase):
        return all(sp.simplify(e) == 0 for e in expr)
    return bool(sp.simplify(expr) == 0)
