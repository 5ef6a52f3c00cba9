"""Stepwise symbolic checks (nerva-sympy style): tiny symbolic sizes, declared assumptions, numbered
steps, equality as ``simplify(lhs − rhs) == 0``, each result also evaluated numerically against
``reference`` with a tolerance from :mod:`reference.tolerances`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import sympy as sp
from numpy.typing import NDArray

from reference.tolerances import CheckKind, tolerance

F64: TypeAlias = NDArray[np.float64]
Sym: TypeAlias = Any  # a sympy expression, symbol or matrix (sympy ships no type information)


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
    """A numbered derivation step ``id`` (e.g. ``"D2.3"``) of claim ``claim``.

    ``checks`` names the reference functions (``module.function``, in their defining module) whose
    results the step's numeric part compares with the symbolic result: a test perturbs each one and
    requires the step to fail, so a declared cross-check cannot be silently deleted.
    """

    id: str
    claim: str
    statement: str
    run: Callable[[], StepOutcome]
    checks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id.startswith(self.claim + "."):
            raise ValueError(f"Step {self.id!r}: id must start with its claim id {self.claim!r} and a dot")


def step(step_id: str, *, checks: tuple[str, ...]) -> Callable[[Callable[[], StepOutcome]], Step]:
    """Decorator: the function becomes :class:`Step` ``step_id``; its docstring's first paragraph is the
    statement (so the statement sits on the code that checks it), the claim is the id's prefix."""

    def make(run: Callable[[], StepOutcome]) -> Step:
        doc = inspect.getdoc(run)
        if not doc:
            raise ValueError(f"step {step_id}: the function needs a docstring stating the step")
        statement = " ".join(doc.split("\n\n", 1)[0].split())
        return Step(id=step_id, claim=step_id.split(".", 1)[0], statement=statement, run=run, checks=tuple(checks))

    return make


def collect_steps(namespace: Mapping[str, object]) -> tuple[Step, ...]:
    """The :class:`Step` objects of a module namespace (``globals()``), in definition order."""
    return tuple(v for v in namespace.values() if isinstance(v, Step))


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


# --------------------------------------------------------------------------------------------------
# Step bookkeeping shared by the step modules: symbolic verdicts and numeric comparisons of one step
# --------------------------------------------------------------------------------------------------


def value_bound(magnitude: float) -> float:
    """``atol + rtol·magnitude`` from the float64 VALUE row of the tolerance table."""
    tol = tolerance("float64", CheckKind.VALUE)
    return tol.atol + tol.rtol * magnitude


def as_f64(value: object) -> F64:
    """A number, NumPy array or lambdified sympy result as a float64 array (the typed boundary)."""
    return np.asarray(value, dtype=np.float64)


def max_abs(value: F64) -> float:
    """``max|value|``, 0 for an empty array."""
    return float(np.max(np.abs(value))) if value.size else 0.0


@dataclass
class StepChecks:
    """The sub-checks of one step: symbolic verdicts, and numeric ``(name, error, bound)`` triples.

    ``rewrite`` (optional) is applied to an expression before :func:`is_zero` in :meth:`zero`; it must
    be sound, i.e. map an expression that is not identically 0 to one that is not either (e.g.
    ``backprop_steps`` replaces opaque exponentials by positive symbols).
    """

    symbolic: list[tuple[str, bool]] = field(default_factory=list)
    numeric: list[tuple[str, float, float]] = field(default_factory=list)
    rewrite: Callable[[Sym], Sym] | None = field(default=None, repr=False)

    def sym(self, name: str, ok: bool) -> None:
        """A symbolic verdict computed by the caller (a sign certified by sympy's assumptions, …)."""
        self.symbolic.append((name, bool(ok)))

    def zero(self, name: str, expr: Sym) -> None:
        """Symbolic equality ``lhs = rhs`` recorded as ``is_zero(lhs − rhs)``."""
        self.sym(name, is_zero(expr if self.rewrite is None else self.rewrite(expr)))

    def close(self, name: str, value: object, reference: object, *, scale: float = 0.0) -> None:
        """``max|value − reference| ≤ atol + rtol·max(max|reference|, scale)``.

        ``scale`` is the magnitude of the terms that were summed when ``reference`` is (near) zero by
        a cancellation (a gradient at a stationary point, ``Σ_q 1``). A shape mismatch, an empty
        comparison or a non-finite difference fails the check.
        """
        a, b = as_f64(value), as_f64(reference)
        if a.shape != b.shape:
            self.numeric.append((f"{name} (shape {a.shape} vs {b.shape})", float("inf"), 0.0))
            return
        if a.size == 0:
            self.numeric.append((f"{name} (empty comparison)", float("inf"), 0.0))
            return
        err = max_abs(a - b)
        self.numeric.append((name, err if np.isfinite(err) else float("inf"), value_bound(max(max_abs(b), scale))))

    def at_most(self, name: str, value: float, limit: float, *, scale: float) -> None:
        """The inequality ``value ≤ limit``, allowing the rounding error of quantities of size ``scale``."""
        excess = value - limit
        err = max(0.0, excess) if np.isfinite(excess) else float("inf")
        self.numeric.append((name, err, value_bound(scale)))

    def outcome(self) -> StepOutcome:
        """Symbolic verdict = all symbolic sub-checks; numeric = the worst comparison by error/bound.

        A step with no symbolic sub-check, or with no numeric comparison, is not proved.
        """
        failed = [name for name, ok in self.symbolic if not ok]
        if self.numeric:
            worst = max(self.numeric, key=lambda c: c[1] / c[2] if c[2] > 0 else float("inf"))
        else:
            worst = ("no numeric comparison", float("inf"), 0.0)
        name, err, bound = worst
        detail = (
            f"symbolic {len(self.symbolic) - len(failed)}/{len(self.symbolic)} ok"
            + (f" (failed: {', '.join(failed)})" if failed else "")
            + f"; {len(self.numeric)} numeric checks, worst: {name}: {err:.3e} vs bound {bound:.3e}"
        )
        return StepOutcome(
            symbolic_ok=not failed and bool(self.symbolic), numeric_error=err, numeric_bound=bound, detail=detail
        )


def step_rng(step_id: str) -> np.random.Generator:
    """One seeded generator per step (``crc32`` of its id), so each step's random point is fixed and independent."""
    return np.random.default_rng(zlib.crc32(step_id.encode()))


def symbol_matrix(name: str, rows: int, cols: int, **assumptions: bool) -> Sym:
    """A rows×cols matrix of symbols ``name_rc`` (default assumption: real)."""
    kw = assumptions or {"real": True}
    return sp.Matrix(rows, cols, lambda r, c: sp.Symbol(f"{name}_{r}{c}", **kw))


# --------------------------------------------------------------------------------------------------
# Planted violations of a step's cross-checks
# --------------------------------------------------------------------------------------------------

_PLANT_REL, _PLANT_ABS = 1e-6, 1e-9  # a plausible small bug: far above the float64 VALUE tolerance (1e-12)


def perturb(value: Any, sign: float = 1.0, *, offset: bool = True) -> Any:
    """``value·(1 ± 1e-6) ± 1e-9`` (``sign`` ±1) for every float or float array in ``value`` (through
    tuples, lists, dicts and dataclasses; the additive part shows up at zeros); integers, booleans and
    the rest are returned unchanged. Downwards is the direction that breaks an upper bound.
    ``offset=False`` scales only, which keeps linear structure (antisymmetry, zero patterns)."""
    add = sign * _PLANT_ABS if offset else 0.0
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | np.floating):
        return float(value) * (1.0 + sign * _PLANT_REL) + add
    if isinstance(value, np.ndarray):
        return value * (1.0 + sign * _PLANT_REL) + add if np.issubdtype(value.dtype, np.floating) else value
    if isinstance(value, tuple):
        return tuple(perturb(v, sign, offset=offset) for v in value)
    if isinstance(value, list):
        return [perturb(v, sign, offset=offset) for v in value]
    if isinstance(value, dict):
        return {k: perturb(v, sign, offset=offset) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: perturb(getattr(value, f.name), sign, offset=offset) for f in dataclasses.fields(value) if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


def perturbed(fn: Callable[..., Any], sign: float = 1.0, *, offset: bool = True) -> Callable[..., Any]:
    """``fn`` with :func:`perturb` applied to its result: the planted bug a step's cross-check must catch."""

    def wrong(*args: Any, **kwargs: Any) -> Any:
        return perturb(fn(*args, **kwargs), sign, offset=offset)

    return wrong


# (direction, with additive offset): the plants tried on a declared cross-check
PLANTS: tuple[tuple[float, bool], ...] = ((1.0, True), (-1.0, True), (1.0, False), (-1.0, False))


def planted_outcome(step: Step, qualified: str, plant: tuple[float, bool]) -> str:
    """Run ``step`` with :func:`perturbed` planted into the reference function ``qualified``
    (``module.function``, patched in its defining module and restored afterwards).

    ``"numeric"``: the numeric part failed (a real cross-check); ``"refused"``: a validator raised on the
    planted output; ``"proved"``: nothing noticed; ``"symbolic"``: the symbolic part failed, which a
    planted reference error must never cause.
    """
    module_name, _, name = qualified.rpartition(".")
    module = importlib.import_module(module_name)
    right = getattr(module, name)
    setattr(module, name, perturbed(right, plant[0], offset=plant[1]))
    try:
        outcome = step.run()
    except (ValueError, TypeError, ArithmeticError):
        return "refused"
    finally:
        setattr(module, name, right)
    if not outcome.symbolic_ok:
        return "symbolic"
    return "proved" if outcome.proved else "numeric"


__all__ = [
    "F64",
    "PLANTS",
    "Step",
    "StepChecks",
    "StepOutcome",
    "Sym",
    "as_f64",
    "collect_steps",
    "is_zero",
    "max_abs",
    "perturb",
    "perturbed",
    "planted_outcome",
    "step",
    "step_rng",
    "symbol_matrix",
    "value_bound",
]
