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


def _admissible_point(symbols: set[sp.Symbol]) -> dict[sp.Symbol, sp.Rational] | None:
    """Distinct rationals in (1/2, 3/2], one per symbol, each satisfying that symbol's assumptions.

    ``None`` when some symbol's declared assumptions exclude such a value (e.g. ``integer=True``).
    """
    point: dict[sp.Symbol, sp.Rational] = {}
    for k, s in enumerate(sorted(symbols, key=str)):
        v = sp.Rational(1, 2) + sp.Rational((37 * k) % 101 + 1, 101)
        if any(getattr(v, f"is_{name}") is not value for name, value in s.assumptions0.items()):
            return None
        point[s] = v
    return point


def _certainly_nonzero(e: sp.Expr) -> bool:
    """A witness: ``e`` is clearly non-zero (to 30 significant digits) at one admissible point."""
    point = _admissible_point(e.free_symbols)
    if point is None:
        return False
    value = e.xreplace(point).evalf(30)
    if not value.is_number or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return False
    return bool(abs(value) > sp.Float("1e-15"))


def _is_zero_scalar(expr: sp.Expr) -> bool:
    """Cheap exact rewritings first, a counterexample probe next, ``simplify`` last.

    ``cancel(together(·))`` puts the expression over one denominator and cancels, treating
    transcendental atoms (``exp(·)``, ``log(·)``) as independent generators: a result of 0 proves the
    expression is identically 0, and it is much faster than ``simplify`` on the rational functions of
    exponentials the derivations produce. Before paying for ``simplify`` (which knows e.g.
    ``log(exp(x)) = x`` for real ``x``, and can take minutes on a large non-zero expression) we
    evaluate at one point allowed by the symbols' assumptions: a clearly non-zero value disproves the
    identity. So ``True`` is always a proof and ``False`` is a counterexample or a failure to prove.
    """
    e = sp.sympify(expr)
    if e == 0:
        return True
    try:
        if sp.cancel(sp.together(e)) == 0:
            return True
    except sp.PolynomialError:  # e.g. a piecewise or non-commutative atom: leave it to simplify
        pass
    if _certainly_nonzero(e):
        return False
    return bool(sp.simplify(e) == 0)


def is_zero(expr: sp.Expr | sp.MatrixBase) -> bool:
    """``simplify(expr) == 0`` entrywise (the only notion of symbolic equality we use).

    A cheaper exact rewriting (``cancel(together(·))``) is tried before ``simplify``; see
    :func:`_is_zero_scalar`.
    """
    if isinstance(expr, sp.MatrixBase):
        return all(_is_zero_scalar(e) for e in expr)
    return _is_zero_scalar(expr)
