"""The one tolerance table of the project (SPEC §6).

Every comparison in code and tests takes its tolerance from here. Two kinds of entries:

* **Fixed tolerances** (:data:`TABLE`) keyed by ``(dtype, CheckKind)``: used where the quantity is
  O(1)-scaled by construction (probabilities, cosines) or compared against a finite-difference
  estimate whose error is dominated by truncation, not by the size of the problem.
* **Accumulation bounds** (:func:`accumulation_bound`): the classical a-priori rounding bound for a
  computed sum/product of ``m`` floating-point operations on terms whose absolute values add up to
  ``scale``: ``|computed − exact| ≤ γ_m · scale`` with ``γ_m = m·u / (1 − m·u)`` and ``u`` the unit
  roundoff (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1). Invariant residuals use
  these, scaled by the problem size and magnitude, so a tolerance never depends on a picked literal.

The derivation of every bound used by an invariant is written out in ``docs/tolerances.md``.
Overrides are data with a reason (:data:`OVERRIDES`), never literals in tests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class CheckKind(StrEnum):
    VALUE = "value"  # same quantity computed two ways (e.g. reference vs accelerated)
    GRADIENT = "gradient"  # analytic gradient vs central finite difference
    INVARIANT = "invariant"  # multiplier of the accumulation bound for an invariant residual
    DECISION = "decision"  # margin below which a discrete decision (grow/prune) is a near-tie
    STOCHASTIC = "stochastic"  # |row sum − 1| of an assignment matrix, per unit of K


UNIT_ROUNDOFF: dict[str, float] = {
    "float64": float(np.finfo(np.float64).eps) / 2.0,  # 2^-53
    "float32": float(np.finfo(np.float32).eps) / 2.0,  # 2^-24
}


@dataclass(frozen=True)
class Tolerance:
    """``|a − b| ≤ atol + rtol·|b|``; ``reason`` says where the numbers come from."""

    rtol: float
    atol: float
    reason: str

    def __post_init__(self) -> None:
        if not (self.rtol >= 0.0 and self.atol >= 0.0):
            raise ValueError(f"Tolerance: rtol and atol must be >= 0, got {self.rtol}, {self.atol}")

    def allows(self, value: float, reference: float) -> bool:
        return abs(value - reference) <= self.atol + self.rtol * abs(reference)


TABLE: dict[tuple[str, CheckKind], Tolerance] = {
    ("float64", CheckKind.VALUE): Tolerance(
        rtol=1e-12, atol=1e-12, reason="O(1)-scaled quantities after O(10²) float64 ops: 10² · 2^-53 ≈ 1e-14, x100"
    ),
    ("float32", CheckKind.VALUE): Tolerance(
        rtol=1e-4, atol=1e-5, reason="O(1)-scaled quantities after O(10²) float32 ops: 10² · 2^-24 ≈ 6e-6, x10"
    ),
    ("float64", CheckKind.GRADIENT): Tolerance(
        rtol=1e-6,
        atol=1e-9,
        reason="central differences, h = u^(1/3): error ~u^(2/3) ≈ 4e-11, curvature margin 1e4; "
        "atol is per unit of max(1, |f|) (rounding part u·|f|/h), see reference.gradcheck.gradient_atol",
    ),
    ("float32", CheckKind.GRADIENT): Tolerance(
        rtol=1e-2, atol=1e-4, reason="central differences in float32: u^(2/3) ≈ 4e-6, curvature margin 1e3"
    ),
    ("float64", CheckKind.INVARIANT): Tolerance(
        rtol=4.0,
        atol=0.0,
        reason="multiplier on γ_m·scale: covers the 2-4 separately rounded sums an invariant compares",
    ),
    ("float32", CheckKind.INVARIANT): Tolerance(rtol=4.0, atol=0.0, reason="as float64"),
    ("float64", CheckKind.DECISION): Tolerance(
        rtol=1e-9, atol=1e-12, reason="statistic vs threshold: eigenvalues via eigh are backward stable to ~d·u·‖A‖"
    ),
    ("float32", CheckKind.DECISION): Tolerance(rtol=1e-4, atol=1e-6, reason="as float64, float32 unit roundoff"),
    ("float64", CheckKind.STOCHASTIC): Tolerance(
        rtol=0.0, atol=4.0 * 2.0**-53, reason="a softmax row sums to 1 within ~K·u; atol is per unit of K"
    ),
    ("float32", CheckKind.STOCHASTIC): Tolerance(rtol=0.0, atol=4.0 * 2.0**-24, reason="as float64"),
}

# Declared overrides: (dtype, kind, context) -> Tolerance, each with its reason. Empty for now.
OVERRIDES: dict[tuple[str, CheckKind, str], Tolerance] = {}


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: str | np.dtype[np.floating]) -> str:
    # NumPy's dtype parsing and naming cost microseconds, and a growth check looks tolerances up dozens of
    # times (every near-tie test): the names of the few dtypes in use are remembered
    return str(np.dtype(dtype))


def tolerance(dtype: str | np.dtype[np.floating], kind: CheckKind, context: str = "") -> Tolerance:
    """Look up the tolerance for a dtype and kind of check (an override for ``context`` wins)."""
    try:
        name = _dtype_name(dtype)
    except TypeError:  # an unhashable argument: NumPy's own error names it
        name = str(np.dtype(dtype))
    key = (name, kind)
    if (name, kind, context) in OVERRIDES:
        return OVERRIDES[(name, kind, context)]
    if key not in TABLE:
        raise KeyError(f"tolerance: no entry for dtype={name!r}, kind={kind.value!r}")
    return TABLE[key]


# The precision whose rounding the a-priori bounds describe when their caller names none: float64 (the
# reference's), unless a block runs under :func:`rounding_precision` — the conformance kit's property mode
# checks a float32 port's operations against float32 bounds this way (docs/tolerances.md, "Float32 ports
# in property mode"), without every invariant threading a dtype argument through.
_ROUNDING_DTYPE: ContextVar[str] = ContextVar("rounding_dtype", default="float64")


def current_rounding_dtype() -> str:
    """The dtype :func:`gamma`, :func:`accumulation_bound` and :mod:`reference.gradcheck` use when not given one."""
    return _ROUNDING_DTYPE.get()


@contextmanager
def rounding_precision(dtype: str | np.dtype[np.floating]) -> Iterator[str]:
    """Within the block, bounds computed without an explicit dtype are those of ``dtype`` (``float64`` or
    ``float32``): its unit roundoff in ``γ_m``, its smallest subnormal in the underflow term, its rows of
    the table (INVARIANT, GRADIENT). Outside, float64 as always."""
    name = str(np.dtype(dtype))
    if name not in UNIT_ROUNDOFF:
        raise ValueError(f"rounding_precision: expected one of {sorted(UNIT_ROUNDOFF)}, got {name!r}")
    token = _ROUNDING_DTYPE.set(name)
    try:
        yield name
    finally:
        _ROUNDING_DTYPE.reset(token)


def gamma(m: int, dtype: str | None = None) -> float:
    """Higham's ``γ_m = m·u/(1 − m·u)``: relative error bound of ``m`` successive roundings (``dtype``'s
    ``u``; by default the current rounding precision, float64 unless inside :func:`rounding_precision`)."""
    if m < 0:
        raise ValueError(f"gamma: m must be >= 0, got {m}")
    u = UNIT_ROUNDOFF[str(np.dtype(dtype or current_rounding_dtype()))]
    if m * u >= 1.0:
        raise ValueError(f"gamma: m·u >= 1 (m={m}); no a-priori bound exists at this size")
    return m * u / (1.0 - m * u)


def accumulation_bound(m: int, scale: float, dtype: str | None = None) -> float:
    """Bound on an invariant residual: ``c · γ_m · scale`` with ``c`` from the INVARIANT table row.

    ``m`` is the length of the longest chain of roundings in the compared quantities and ``scale``
    the sum of the absolute values of the terms they accumulate (see docs/tolerances.md). ``dtype``
    defaults to the current rounding precision (float64 unless inside :func:`rounding_precision`).
    """
    dtype = dtype or current_rounding_dtype()
    if not (scale >= 0.0):
        raise ValueError(f"accumulation_bound: scale must be >= 0, got {scale}")
    if scale == float("inf"):
        # The worst-case error scale overflowed float64: no finite a-priori bound is available, and the
        # check says nothing (callers report such results as uncertified rather than hide them).
        return float("inf")
    c = tolerance(dtype, CheckKind.INVARIANT).rtol
    # Gradual underflow adds an absolute error of at most one subnormal unit per operation (Higham's
    # model fl(x op y) = (x op y)(1 + δ) + η, |η| ≤ smallest subnormal), which matters when scale ≈ 0.
    eta = float(np.finfo(np.dtype(dtype)).smallest_subnormal)
    return c * (gamma(m, dtype) * scale + m * eta)


def centred_distance_error(d: int, max_distance: float) -> float:
    """Bound on ``|D̂_tj − D_tj|`` for the squared distances computed in float64 by the centred expanded
    form ``‖y'‖² + ‖p'‖² − 2y'ᵀp'`` (``y' = y − c``, ``p' = p − c``, ``c`` the prototypes' mean; the
    accelerated engine's fast path), for every prototype ``j`` of a token whose largest distance to a
    prototype is ``max_distance``: ``9·γ⁶⁴_{d+4}·max_j D_tj``.

    Why (docs/tolerances.md, "Distances"): each of the ``d`` terms of the three sums is rounded at most
    ``d + 4`` times (two translations, a product, the sum, the assembly), so the entry is within
    ``γ_{d+4}(‖y'‖ + ‖p'_j‖)²``; and ``‖y'‖ + max_j ‖p'_j‖ ≤ 3 max_j ‖y − p_j‖``, because the
    prototypes' mean (the origin after the translation) lies in their convex hull, so the farthest
    prototype is at least ``‖y'‖`` from the token and at least ``max_j ‖p'_j‖ / 2``.
    """
    if d < 1:
        raise ValueError(f"centred_distance_error: d must be >= 1, got {d}")
    if not (max_distance >= 0.0):
        raise ValueError(f"centred_distance_error: max_distance must be >= 0, got {max_distance}")
    return 9.0 * gamma(d + 4, "float64") * max_distance


def assignment_relative_error(d: int, K: int, max_distance: float, T_P: float, dtype: str) -> float:
    """Bound on ``|Q̂_tj − Q_tj| / Q_tj`` for the fast path's assignments: ``D`` by the centred form
    (:func:`centred_distance_error`, at most ``Δ·T_P`` per entry), ``softmax(−D/T_P)`` in float64
    (``γ⁶⁴_{K+2}``), rounded once to ``dtype`` (``u``): ``u + expm1(2Δ) + γ⁶⁴_{K+2}``, since logits
    each within ``Δ`` move every ``Q_tj`` by a factor in ``[e^{−2Δ}, e^{2Δ}]``."""
    if not (T_P > 0.0):
        raise ValueError(f"assignment_relative_error: T_P must be > 0, got {T_P}")
    delta = centred_distance_error(d, max_distance) / T_P
    return UNIT_ROUNDOFF[str(np.dtype(dtype))] + float(np.expm1(2.0 * delta)) + gamma(K + 2, "float64")


__all__ = [
    "OVERRIDES",
    "TABLE",
    "UNIT_ROUNDOFF",
    "CheckKind",
    "Tolerance",
    "accumulation_bound",
    "assignment_relative_error",
    "centred_distance_error",
    "current_rounding_dtype",
    "gamma",
    "rounding_precision",
    "tolerance",
]
