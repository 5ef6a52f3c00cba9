"""Hypothesis strategies for the DDCL block: tokens, prototypes, temperatures, assignments.

Scales span ``10^-70 … 10^74`` per coordinate (squared distances up to ~1e150) and temperatures
``10^-6 … 10^6``, with ``K = 1`` included: the extremes SPEC §6 asks the invariants to survive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from ddcl_incrt.strategies._caps import MAX_PROTOTYPES, MAX_TOKENS, MAX_WIDTH, check_size
from reference._arrays import check_array, check_dim, check_temperature

# Mostly moderate scales; sometimes the extremes.
scale_exponents = st.one_of(st.integers(-3, 3), st.sampled_from([-70, 74]))
temperatures = st.floats(-6.0, 6.0).map(lambda e: float(10.0**e))
_unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


@dataclass(frozen=True)
class DDCLProblem:
    Y: np.ndarray  # n×d
    P: np.ndarray  # d×K
    T_P: float

    def __post_init__(self) -> None:
        """Refuse a problem the DDCL functions would refuse (e.g. from a ``temps`` strategy of the caller's)."""
        Y = check_array("Y", self.Y, 2)
        check_dim("P", check_array("P", self.P, 2), 0, Y.shape[1], "Y's width d")
        check_temperature("T_P", self.T_P)

    @property
    def K(self) -> int:
        return int(self.P.shape[1])


# A well-conditioned regime (D/T_P of order 1–100), where every bound is finite and far below the
# size of the quantities it bounds, so a planted error must be detected on every example.
moderate_scale_exponents = st.just(0)
moderate_temperatures = st.floats(-1.0, 1.0).map(lambda e: float(10.0**e))


def ddcl_problems(
    *,
    min_K: int = 1,
    max_K: int = MAX_PROTOTYPES,
    scales: st.SearchStrategy[int] = scale_exponents,
    temps: st.SearchStrategy[float] = temperatures,
) -> st.SearchStrategy[DDCLProblem]:
    """Tokens and prototypes at one common scale ``10^e`` (``e`` from ``scales``), plus a temperature.

    Needs ``1 <= min_K <= max_K``; ``scales`` and ``temps`` must be strategies."""
    lo = check_size("min_K", min_K, 1)
    hi = check_size("max_K", max_K, lo)
    for name, strategy in (("scales", scales), ("temps", temps)):
        if not isinstance(strategy, st.SearchStrategy):
            raise InvalidArgument(f"{name}: expected a hypothesis strategy, got {type(strategy).__name__}")
    return _ddcl_problems(lo, hi, scales, temps)


@st.composite
def _ddcl_problems(
    draw: st.DrawFn, min_K: int, max_K: int, scales: st.SearchStrategy[int], temps: st.SearchStrategy[float]
) -> DDCLProblem:
    n = draw(st.integers(1, MAX_TOKENS))
    d = draw(st.integers(1, MAX_WIDTH))
    K = draw(st.integers(min_K, max_K))
    e = draw(scales)
    Y = draw(hnp.arrays(np.float64, (n, d), elements=_unit)) * 10.0**e
    P = draw(hnp.arrays(np.float64, (d, K), elements=_unit)) * 10.0**e
    return DDCLProblem(Y=Y, P=P, T_P=draw(temps))


def moderate_ddcl_problems(*, min_K: int = 1) -> st.SearchStrategy[DDCLProblem]:
    """:func:`ddcl_problems` in the well-conditioned regime (unit scale, ``T_P ∈ [0.1, 10]``)."""
    return ddcl_problems(min_K=min_K, scales=moderate_scale_exponents, temps=moderate_temperatures)


def row_stochastic(n: int, K: int) -> st.SearchStrategy[np.ndarray]:
    """Any row-stochastic n×K matrix (``n, K >= 1``): dense rows, sparse rows and one-hot rows."""
    return _row_stochastic(check_size("n", n, 1), check_size("K", K, 1))


@st.composite
def _row_stochastic(draw: st.DrawFn, n: int, K: int) -> np.ndarray:
    W = draw(hnp.arrays(np.float64, (n, K), elements=st.floats(0.0, 1.0)))
    hot = draw(hnp.arrays(np.bool_, (n,)))
    pick = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, K - 1)))
    W[hot] = 0.0
    W[hot, pick[hot]] = 1.0
    W[W.sum(axis=1) == 0.0, 0] = 1.0
    out: np.ndarray = W / W.sum(axis=1, keepdims=True)
    return out


@st.composite
def dcl_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """``(Y_b, W, b, grad_P, eta)`` for the dual competitive layer."""
    n_b = draw(st.integers(1, MAX_TOKENS))
    d = draw(st.integers(1, MAX_WIDTH))
    K = draw(st.integers(1, MAX_PROTOTYPES))
    e = draw(st.integers(-3, 3))
    Y_b = draw(hnp.arrays(np.float64, (n_b, d), elements=_unit)) * 10.0**e
    W = draw(hnp.arrays(np.float64, (n_b, K), elements=_unit))
    b = draw(hnp.arrays(np.float64, (K,), elements=_unit))
    G = draw(hnp.arrays(np.float64, (d, K), elements=_unit))
    eta = draw(st.floats(-4.0, 0.0).map(lambda x: float(10.0**x)))
    return Y_b, W, b, G, eta


__all__ = [
    "DDCLProblem",
    "dcl_problems",
    "ddcl_problems",
    "moderate_ddcl_problems",
    "moderate_scale_exponents",
    "moderate_temperatures",
    "row_stochastic",
    "scale_exponents",
    "temperatures",
]
