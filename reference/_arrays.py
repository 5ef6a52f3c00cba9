"""Typed coercion and input validation shared by every reference function.

NumPy's stubs return ``Any`` from many reductions; instead of scattering ``# type: ignore`` we pass
results through :func:`f64` / :func:`arr` (one explicit, typed way across that boundary).

Validation never corrects input: a wrong dtype, shape, non-finite entry or out-of-range scalar raises
a ``TypeError``/``ValueError`` that names the argument, what was expected and what was given.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

F64Array: TypeAlias = NDArray[np.float64]

_P = ParamSpec("_P")
_R = TypeVar("_R")

# ``τ = exp(s)`` and ``1/τ = exp(−s)`` are both finite, normal float64 numbers exactly when
# ``|s| ≤ −log(smallest normal) = 1022·log 2 ≈ 708.40`` (``log(max) ≈ 709.78`` bounds only one side).
LOG_TEMPERATURE_MAX: float = -math.log(float(np.finfo(np.float64).tiny))

TRUSTWORTHY_RANGES = "docs/tolerances.md, 'Trustworthy ranges'"
_INT64_MAX = int(np.iinfo(np.int64).max)


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


def check_array(name: str, value: object, ndim: int | None, *, allow_empty: bool = False) -> F64Array:
    """Validate a float64, finite array argument of rank ``ndim`` (``None``: any rank >= 1); return it unchanged.

    Only a plain ``numpy.ndarray`` is accepted, never a subclass: ``numpy.matrix`` redefines ``*`` as the
    matrix product and keeps every result 2-d, and a masked array carries a mask that ``numpy.asarray``
    (and every ufunc's ``out=``) silently drops, so either would give a wrong answer without a word.
    Converting is not provably correct for an arbitrary subclass, so none is converted: the caller
    says what it means (``numpy.asarray(m)`` for a matrix, ``a.filled(...)`` or ``a.compressed()`` for a
    masked array). Lists and other array-likes are refused the same way (nothing is coerced).
    """
    if type(value) is not np.ndarray:
        if isinstance(value, np.ndarray):
            raise TypeError(
                f"{name}: expected a plain numpy.ndarray, got the subclass {type(value).__module__}."
                f"{type(value).__name__} (its arithmetic or mask would change the result); convert it "
                f"explicitly, e.g. numpy.asarray({name}) for a matrix or {name}.filled(...) for a masked array"
            )
        raise TypeError(f"{name}: expected a numpy.ndarray of float64, got {type(value).__name__}")
    if value.dtype != np.float64:
        raise TypeError(
            f"{name}: expected dtype float64 (the reference computes in float64 only), got {value.dtype}; "
            f"convert explicitly with numpy.asarray({name}, dtype=numpy.float64)"
        )
    if ndim is None and value.ndim == 0:
        raise ValueError(f"{name}: expected an array of rank >= 1, got a 0-d array")
    if ndim is not None and value.ndim != ndim:
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


def check_temperature(name: str, value: object) -> float:
    """A temperature: finite and at least the smallest *normal* float64 (``2.2e-308``).

    A subnormal temperature carries fewer than 53 significant bits, and ``1/T`` overflows once
    ``T < 1/max ≈ 5.6e-309``: every ``D/T`` the softmax forms would then be ``inf`` or imprecise, so it
    is refused rather than computed on. Large temperatures are accepted; a result that overflows
    because of one (``F ≈ −T log K``) is refused by :func:`check_overflow`.
    """
    out = check_positive(name, value)
    tiny = float(np.finfo(np.float64).tiny)
    if out < tiny:
        raise ValueError(
            f"{name}: a temperature must be >= {tiny!r} (the smallest normal float64; below it 1/{name} "
            f"overflows and {name} loses precision), got {out!r}; see {TRUSTWORTHY_RANGES}"
        )
    return out


def check_count(name: str, value: object, minimum: int) -> int:
    """An integer (not a bool) ``>= minimum``: sizes, steps, counts, ids."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    out = int(value)
    if out < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {out}")
    if out > _INT64_MAX:  # NumPy sizes and indices are int64: beyond it NumPy raises OverflowError
        raise ValueError(f"{name}: must be <= {_INT64_MAX} (int64), got an integer of {len(str(out))} digits")
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


def check_log_temperature(name: str, value: object) -> float:
    """A log-temperature ``s`` (``τ = exp(s)``) with ``|s| ≤`` :data:`LOG_TEMPERATURE_MAX`: beyond it
    ``τ`` or ``1/τ`` overflows float64 or is subnormal (``math.exp`` would raise ``OverflowError``)."""
    out = check_real(name, value)
    if abs(out) > LOG_TEMPERATURE_MAX:
        raise ValueError(
            f"{name}: a log-temperature must satisfy |{name}| <= {LOG_TEMPERATURE_MAX:.4f} (so that exp({name}) "
            f"and exp(-{name}) are finite normal float64 numbers), got {out!r}; see {TRUSTWORTHY_RANGES}"
        )
    return out


def _non_finite_count(value: object) -> int:
    """Non-finite entries of a float result (a float, an array, or a tuple or mapping of them); 0 for
    anything else."""
    if isinstance(value, tuple):
        return sum(_non_finite_count(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_non_finite_count(v) for v in value.values())
    if isinstance(value, float):
        return 0 if math.isfinite(value) else 1
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return int(value.size - np.count_nonzero(np.isfinite(value)))
    return 0


def check_overflow(what: str, value: _R, inputs: str) -> _R:
    """Return ``value`` unless it holds a non-finite entry, which from validated (finite) inputs can only
    mean that float64 overflowed; then raise ``FloatingPointError`` naming the ``inputs`` responsible."""
    bad = _non_finite_count(value)
    if bad:
        raise FloatingPointError(
            f"{what}: the result overflowed float64 ({bad} non-finite entries from finite inputs): the inputs {inputs} "
            f"are outside the range where float64 results are trustworthy (see {TRUSTWORTHY_RANGES}); "
            "in training this means the run diverged"
        )
    return value


def finite_result(*inputs: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator for a public function whose inputs are validated finite: run it with NumPy's overflow
    warnings off (an intermediate ``±inf`` is either harmless, e.g. ``exp(−inf) = 0``, or shows up in the
    result) and refuse a non-finite result through :func:`check_overflow`, naming ``inputs``. An
    overflow refused by a step it called is re-raised with this function's name and ``inputs`` prefixed."""
    names = ", ".join(inputs)

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        # The wrapper only forwards: ``fn`` itself is what the run-time type checker checks (jaxtyping's
        # import hook decorates it innermost); checking ``*args`` again would sample them at random.
        @typing.no_type_check
        @functools.wraps(fn)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    out = fn(*args, **kwargs)
            except FloatingPointError as exc:
                # An overflow inside a step this function called: say which of *its* inputs caused it.
                if str(exc).startswith(f"{fn.__name__}"):
                    raise
                raise FloatingPointError(f"{fn.__name__} (inputs {names}): {exc}") from None
            return check_overflow(fn.__name__, out, names)

        return typing.cast(Callable[_P, _R], guarded)

    return decorate


def check_rng(rng: object, name: str = "rng") -> np.random.Generator:
    """An explicit ``numpy.random.Generator`` (all randomness enters through one; no global seeding)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: expected a numpy.random.Generator, got {type(rng).__name__}")
    return rng


__all__ = [
    "LOG_TEMPERATURE_MAX",
    "TRUSTWORTHY_RANGES",
    "F64Array",
    "arr",
    "check_array",
    "check_count",
    "check_dim",
    "check_index",
    "check_log_temperature",
    "check_overflow",
    "check_positive",
    "check_real",
    "check_rng",
    "check_temperature",
    "f64",
    "finite_result",
]
