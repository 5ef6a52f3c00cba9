"""Central finite differences, the independent check of every hand-derived gradient.

Step ``h = u^(1/3)·max(1, |x_i|)`` balances truncation (``~h²|f'''|``) and rounding (``~u|f|/h``);
agreement is judged with the GRADIENT row of the tolerance table (float64's, unless the caller runs under
:func:`reference.tolerances.rounding_precision`: property mode on a float32 port).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reference._arrays import F64Array, arr, f64
from reference.tolerances import UNIT_ROUNDOFF, CheckKind, current_rounding_dtype, tolerance


def central_difference(f: Callable[[F64Array], float], x: F64Array) -> F64Array:
    """Estimate ``∇f(x)`` entry by entry (``x`` is not modified)."""
    grad = np.zeros_like(x)
    base = UNIT_ROUNDOFF[current_rounding_dtype()] ** (1.0 / 3.0)  # float64 unless under rounding_precision
    for idx in np.ndindex(x.shape):
        h = base * max(1.0, abs(f64(x[idx])))
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        grad[idx] = (f(xp) - f(xm)) / (xp[idx] - xm[idx])  # the exactly representable step
    return arr(grad)


def gradient_atol(value_scale: float = 1.0) -> float:
    """The GRADIENT atol in units of the differentiated function's value.

    The rounding part of a central difference is ≈ u·|f|/h (each evaluation of ``f`` carries a relative
    rounding error), so the table's absolute floor, stated for O(1) functions, scales with ``max(1, |f|)``.
    """
    return tolerance(current_rounding_dtype(), CheckKind.GRADIENT).atol * max(1.0, abs(value_scale))


def gradient_bound(numeric: F64Array, *, value_scale: float = 1.0) -> float:
    """Allowed ``‖analytic − numeric‖_∞``: ``atol·max(1, |f|) + rtol·‖numeric‖_∞`` (GRADIENT row)."""
    rtol = tolerance(current_rounding_dtype(), CheckKind.GRADIENT).rtol
    return gradient_atol(value_scale) + rtol * f64(np.abs(numeric).max())


def gradient_error(analytic: F64Array, numeric: F64Array, *, value_scale: float = 1.0) -> float:
    """Relative error ``‖a − n‖_∞ / ‖n‖_∞``, the denominator floored where the atol takes over."""
    rtol = tolerance(current_rounding_dtype(), CheckKind.GRADIENT).rtol
    denom = max(f64(np.abs(numeric).max()), gradient_atol(value_scale) / rtol)
    return f64(np.abs(analytic - numeric).max()) / denom


def gradient_matches(analytic: F64Array, numeric: F64Array, *, value_scale: float = 1.0) -> bool:
    """Whether ``analytic`` agrees with the finite-difference estimate within :func:`gradient_bound`."""
    return f64(np.abs(analytic - numeric).max()) <= gradient_bound(numeric, value_scale=value_scale)


__all__ = [
    "central_difference",
    "gradient_atol",
    "gradient_bound",
    "gradient_error",
    "gradient_matches",
]
