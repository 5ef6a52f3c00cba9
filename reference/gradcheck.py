"""Central finite differences, the independent check of every hand-derived gradient.

Step ``h = u^(1/3)·max(1, |x_i|)`` balances truncation (``~h²|f'''|``) and rounding (``~u|f|/h``);
agreement is judged with the GRADIENT row of the tolerance table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reference._arrays import F64Array, arr, f64
from reference.tolerances import UNIT_ROUNDOFF, CheckKind, tolerance


def central_difference(f: Callable[[F64Array], float], x: F64Array) -> F64Array:
    """Estimate ``∇f(x)`` entry by entry (``x`` is not modified)."""
    grad = np.zeros_like(x)
    base = UNIT_ROUNDOFF["float64"] ** (1.0 / 3.0)
    for idx in np.ndindex(x.shape):
        h = base * max(1.0, abs(f64(x[idx])))
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        grad[idx] = (f(xp) - f(xm)) / (xp[idx] - xm[idx])  # the exactly representable step
    return arr(grad)


def gradient_error(analytic: F64Array, numeric: F64Array) -> float:
    """Relative error ``‖a − n‖_∞ / max(‖n‖_∞, atol/rtol)`` (the table's atol guards near-zero gradients)."""
    tol = tolerance("float64", CheckKind.GRADIENT)
    denom = max(f64(np.abs(numeric).max()), tol.atol / tol.rtol)
    return f64(np.abs(analytic - numeric).max()) / denom


def gradient_matches(analytic: F64Array, numeric: F64Array) -> bool:
    """Whether ``analytic`` agrees with the finite-difference estimate within the GRADIENT tolerance."""
    return gradient_error(analytic, numeric) <= tolerance("float64", CheckKind.GRADIENT).rtol
