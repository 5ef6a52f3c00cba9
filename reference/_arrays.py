"""Typed coercion and input validation shared by every reference function.

NumPy's stubs return ``Any`` from many reductions; instead of scattering ``# type: ignore`` we pass
results through :func:`f64` / :func:`arr` (one explicit, typed way across that boundary).

Validation never corrects input: a wrong dtype, shape, non-finite entry or out-of-range scalar raises
a ``TypeError``/``ValueError`` that names the argument, what was expected and what was given.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

F64Array: TypeAlias = NDArray[np.float64]


def f64(value: Any) -> float:
    """A NumPy scalar (or 0-d array) as a Python float; rejects anything that is not a scalar."""
    out = np.asarray(value, dtype=np.float64)
    if out.ndim != 0:
        raise TypeError(f"expected a scalar, got an array of shape {out.shape}")
    return float(out)


def arr(value: Any) -> F64Array:
    """A NumPy result as a float64 array (used only on values the reference itself computed)."""
    out = np.asarray(value)
    if out.dtype != np.float64:
        raise TypeError(f"internal: expected a float64 result, got {out.dtype}")
    return out


def check_array(name: str, value: object, ndim: int, *, allow_empty: bool = False) -> F64Array:
    """Validate a float64, finite array argument of a given rank; return it unchanged."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float64, got {type(value).__name__}")
    if value.dtype != np.float64:
        raise TypeError(
            f"{name}: expected dtype float64 (the reference computes in float64 only), got {value.dtype}; "
            f"convert explicitly with numpy.asarray({name}, dtype=numpy.float64)"
        )
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {value.shape}")
    if not allow_empty and value.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {value.shape}")
    if not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ValueError(f"{name}: contains {bad} NaN/Inf entries; the reference never computes on them")
    return value


def check_dim(name: str, value: F64Array, axis: int, expected: int, expected_from: str) -> None:
    """Raise if ``value.shape[axis] != expected`` (``expected_from`` says where ``expected`` came from)."""
    if value.shape[axis] != expected:
        raise ValueError(
            f"{name}: axis {axis} has size {value.shape[axis]}, but {expected_from} requires {expected} "
            f"(got shape {value.shape})"
        )


def _to_float(name: str, value: int | float | np.floating | np.integer) -> float:
    """``float(value)``; an integer beyond float64's range is refused naming ``name`` (not OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name}: must be finite in float64, got an integer of {len(str(value))} digits") from None


def check_positive(name: str, value: object) -> float:
    """A finite, strictly positive real scalar (temperatures, step sizes, thresholds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    out = _to_float(name, value)
    if not np.isfinite(out) or out <= 0.0:
        raise ValueError(f"{name}: must be finite and > 0, got {out!r}")
    return out


def check_count(name: str, value: object, minimum: int) -> int:
    """An integer (not a bool) ``>= minimum``: sizes, steps, counts, ids."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    out = int(value)
    if out < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {out}")
    return out


def check_real(name: str, value: object) -> float:
    """A finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    out = _to_float(name, value)
    if not np.isfinite(out):
        raise ValueError(f"{name}: must be finite, got {out!r}")
    return out


def check_index(name: str, value: object, size: int) -> int:
    """An integer index in ``[0, size)``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    out = int(value)
    if not 0 <= out < size:
        raise ValueError(f"{name}: must lie in [0, {size}), got {out}")
    return out


def check_rng(rng: object, name: str = "rng") -> np.random.Generator:
    """An explicit ``numpy.random.Generator`` (all randomness enters through one; no global seeding)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: expected a numpy.random.Generator, got {type(rng).__name__}")
    return rng


__all__ = [
    "F64Array",
    "arr",
    "check_array",
    "check_count",
    "check_dim",
    "check_index",
    "check_positive",
    "check_real",
    "check_rng",
    "f64",
]
