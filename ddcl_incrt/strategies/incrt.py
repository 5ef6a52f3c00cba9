"""Hypothesis strategies for the INCRT growth rule: operators with planted spectra, thresholds,
second moments, antisymmetric score parts, orthonormal captured sets.

Spectra are planted on a grid: eigenvalues are ``scale · k / GRID`` for integer levels ``k``, so two
eigenvalues either coincide (a planted multiplicity) or differ by at least ``scale/GRID`` (a planted
gap), and thresholds sit on half-levels, ``scale/(2·GRID)`` away from every eigenvalue (no planted
near-tie). The eigenbasis is the orthogonal factor of a QR decomposition of a drawn matrix (always
orthogonal, whatever the draw), so examples shrink towards simple bases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from ddcl_incrt.strategies._caps import MAX_HEADS, MAX_TOKENS, MAX_WIDTH, StrategyArgumentError, check_size
from reference._arrays import check_array, check_dim, check_positive
from reference.incrt.operators import spectral_operator

GRID = 8  # levels per unit of scale; gaps are multiples of scale/GRID
MAX_LEVEL = 2 * GRID  # eigenvalues in [−2·scale, 2·scale]
scale_exponents = st.integers(-3, 3)
_unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


@dataclass(frozen=True)
class PlantedOperator:
    """``A = V diag(λ) Vᵀ`` (symmetrised), ``λ`` non-increasing; ``theta`` on a half-level, ``> 0``."""

    A: np.ndarray  # d×d
    eigenvalues: np.ndarray  # d, non-increasing
    V: np.ndarray  # d×d orthogonal, column i ↔ eigenvalues[i]
    theta: float
    scale: float

    def __post_init__(self) -> None:
        A = check_array("A", self.A, 2)
        check_dim("eigenvalues", check_array("eigenvalues", self.eigenvalues, 1), 0, A.shape[0], "A's width d")
        check_dim("V", check_array("V", self.V, 2), 0, A.shape[0], "A's width d")
        check_positive("theta", self.theta)
        check_positive("scale", self.scale)

    @property
    def d(self) -> int:
        return int(self.A.shape[0])

    @property
    def m_star(self) -> int:
        return int(np.count_nonzero(self.eigenvalues > self.theta))

    @property
    def simple_above_theta(self) -> bool:
        above = self.eigenvalues[self.eigenvalues > self.theta]
        return bool(np.all(np.diff(above) != 0.0))


def orthogonal_matrices(d: int) -> st.SearchStrategy[np.ndarray]:
    """A d×d orthogonal matrix (``d >= 1``): the Q factor (signs fixed by diag R ≥ 0) of a drawn matrix."""
    return _orthogonal_matrices(check_size("d", d, 1))


@st.composite
def _orthogonal_matrices(draw: st.DrawFn, d: int) -> np.ndarray:
    G = draw(hnp.arrays(np.float64, (d, d), elements=_unit))
    Q, R = np.linalg.qr(G)
    signs = np.where(np.diag(R) < 0.0, -1.0, 1.0)
    out: np.ndarray = Q * signs[None, :]
    return out


def planted_operators(
    *, min_d: int = 1, max_d: int = MAX_WIDTH, simple: bool = False, min_m_star: int = 0
) -> st.SearchStrategy[PlantedOperator]:
    """A symmetric operator with planted spectrum and a threshold θ > 0 between levels.

    ``simple=True`` makes all eigenvalues distinct (the G4 spectral gap); otherwise repeats are
    drawn with positive probability. ``min_m_star`` asks for at least that many eigenvalues above θ.
    Needs ``1 <= min_d <= max_d`` and ``0 <= min_m_star <= max_d``.
    """
    lo = check_size("min_d", min_d, 1)
    hi = check_size("max_d", max_d, lo)
    if not isinstance(simple, bool):
        raise InvalidArgument(f"simple: expected a bool, got {type(simple).__name__} {simple!r}")
    if simple and hi > 2 * MAX_LEVEL + 1:
        raise StrategyArgumentError(f"max_d: at most {2 * MAX_LEVEL + 1} distinct levels exist, got max_d = {hi}")
    return _planted_operators(lo, hi, simple, check_size("min_m_star", min_m_star, 0, hi))


@st.composite
def _planted_operators(draw: st.DrawFn, min_d: int, max_d: int, simple: bool, min_m_star: int) -> PlantedOperator:
    d = draw(st.integers(max(min_d, min_m_star, 1), max_d))
    levels_st = st.integers(-MAX_LEVEL, MAX_LEVEL)
    if simple:
        levels = draw(st.lists(levels_st, min_size=d, max_size=d, unique=True))
    else:
        levels = draw(st.lists(levels_st, min_size=d, max_size=d))
    levels = sorted(levels, reverse=True)
    # θ = (k + ½)·scale/GRID with k ≥ 0, below the min_m_star-th level when one is asked for.
    top_k = MAX_LEVEL if min_m_star == 0 else levels[min_m_star - 1] - 1
    if top_k < 0:
        levels = [lv + (-top_k) for lv in levels]  # shift up so a positive θ fits below
        top_k = 0
    k = draw(st.integers(0, max(0, top_k)))
    scale = float(10.0 ** draw(scale_exponents))
    lam = np.asarray(levels, dtype=np.float64) * scale / GRID
    V = draw(orthogonal_matrices(d))
    A = spectral_operator(V, lam)  # the reference's one V diag(λ) Vᵀ (planted_operator draws V from an rng)
    return PlantedOperator(A=A, eigenvalues=lam, V=V, theta=(k + 0.5) * scale / GRID, scale=scale)


def antisymmetric_matrices(d: int, scale: float = 1.0) -> st.SearchStrategy[np.ndarray]:
    """``M_a = (M − Mᵀ)/2`` for a drawn d×d ``M`` with entries in ``[−scale, scale]`` (exactly antisymmetric)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise InvalidArgument(f"scale: expected a finite number > 0, got {type(scale).__name__} {scale!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise StrategyArgumentError(f"scale: expected a finite number > 0, got {scale!r}")
    return _antisymmetric_matrices(check_size("d", d, 1), float(scale))


@st.composite
def _antisymmetric_matrices(draw: st.DrawFn, d: int, scale: float) -> np.ndarray:
    M = draw(hnp.arrays(np.float64, (d, d), elements=_unit)) * scale
    out: np.ndarray = 0.5 * (M - M.T)
    return out


def second_moments(d: int) -> st.SearchStrategy[np.ndarray]:
    """``C = XᵀX/n`` (PSD, exactly symmetric) for drawn tokens ``X`` (n×d, ``d >= 1``)."""
    return _second_moments(check_size("d", d, 1))


@st.composite
def _second_moments(draw: st.DrawFn, d: int) -> np.ndarray:
    n = draw(st.integers(1, MAX_TOKENS))
    X = draw(hnp.arrays(np.float64, (n, d), elements=_unit)) * float(10.0 ** draw(st.integers(-2, 2)))
    G = X.T @ X / n
    out: np.ndarray = 0.5 * (G + G.T)  # symmetric in exact arithmetic: symmetrising a computed product
    return out


def orthonormal_sets(d: int, m: int) -> st.SearchStrategy[np.ndarray]:
    """A d×m matrix with orthonormal columns, ``0 <= m <= d`` (``m = 0`` gives d×0)."""
    dd = check_size("d", d, 1)
    return _orthonormal_sets(dd, check_size("m", m, 0, dd))


@st.composite
def _orthonormal_sets(draw: st.DrawFn, d: int, m: int) -> np.ndarray:
    if m == 0:
        return np.zeros((d, 0))
    out: np.ndarray = draw(orthogonal_matrices(d))[:, :m]
    return out


@dataclass(frozen=True)
class PruneProblem:
    """Second moment, the active heads' ``M_a^h``, the captured set and a head ``h`` to remove."""

    C: np.ndarray
    head_operators: tuple[np.ndarray, ...]
    Q_cap: np.ndarray
    h: int
    theta: float


@st.composite
def prune_problems(draw: st.DrawFn) -> PruneProblem:
    d = draw(st.integers(1, MAX_WIDTH))
    H = draw(st.integers(1, MAX_HEADS))
    C = draw(second_moments(d))
    heads = tuple(draw(antisymmetric_matrices(d, float(10.0 ** draw(st.integers(-2, 1))))) for _ in range(H))
    m = draw(st.integers(0, d))
    Q = draw(orthonormal_sets(d, m))
    theta = float(10.0 ** draw(st.integers(-3, 2)))
    return PruneProblem(C=C, head_operators=heads, Q_cap=Q, h=draw(st.integers(0, H - 1)), theta=theta)


__all__ = [
    "GRID",
    "MAX_LEVEL",
    "PlantedOperator",
    "PruneProblem",
    "antisymmetric_matrices",
    "orthogonal_matrices",
    "orthonormal_sets",
    "planted_operators",
    "prune_problems",
    "scale_exponents",
    "second_moments",
]
