"""The tolerance table and the a-priori rounding bounds (``reference.tolerances``, docs/tolerances.md).

Expected values are derived here from the documented definitions, not read back from the module:
``γ_m = m·u/(1 − m·u)`` with ``u = 2^-53`` evaluated in exact rational arithmetic, the INVARIANT
multiplier ``c = 4`` and Higham's underflow term ``m·η`` (docs/tolerances.md).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from reference.tolerances import Tolerance, accumulation_bound, gamma

U64 = Fraction(1, 2**53)  # float64 unit roundoff, docs/tolerances.md
C_INVARIANT = 4  # the INVARIANT row of docs/tolerances.md: c = 4
ETA64 = float(np.finfo(np.float64).smallest_subnormal)


def _gamma_exact(m: int) -> float:
    return float(m * U64 / (1 - m * U64))


@pytest.mark.parametrize("m", [1, 2, 10, 137, 10**6, 2**40])
def test_gamma_is_higham_gamma_m(m: int) -> None:
    # Kills mutant tol-gamma-off-by-one: γ_{m−1} differs from γ_m by a relative 1/m.
    assert gamma(m) == pytest.approx(_gamma_exact(m), rel=4.0 * float(U64), abs=0.0)


def test_gamma_of_zero_roundings_is_zero() -> None:
    assert gamma(0) == 0.0


def test_gamma_refuses_exactly_at_m_u_equal_one() -> None:
    # Kills mutant tol-gamma-boundary: at m·u = 1 exactly no bound exists; the check must be m·u >= 1
    # (a ValueError naming the problem), not a ZeroDivisionError from 1 − m·u = 0.
    with pytest.raises(ValueError, match=r"m·u >= 1"):
        gamma(2**53)
    assert gamma(2**53 - 1) == pytest.approx(_gamma_exact(2**53 - 1), rel=1e-9)  # the last m that has one


def test_accumulation_bound_is_c_gamma_scale_plus_underflow() -> None:
    m, scale = 40, 3.25
    expected = C_INVARIANT * (_gamma_exact(m) * scale + m * ETA64)
    # Kills mutant tol-invariant-multiplier-doubled (c = 8 gives twice this).
    assert accumulation_bound(m, scale) == pytest.approx(expected, rel=8.0 * float(U64))


def test_accumulation_bound_of_a_zero_scale_keeps_the_underflow_term() -> None:
    # Kills mutant tol-drops-underflow-term (and tol-invariant-multiplier-doubled): a residual of
    # quantities that underflowed to subnormals (scale 0) is still allowed m·η per operation (Higham's
    # fl(x op y) = (x op y)(1 + δ) + η).
    assert accumulation_bound(12, 0.0) == C_INVARIANT * 12 * ETA64
    assert accumulation_bound(12, 0.0) > 0.0


def test_accumulation_bound_is_infinite_for_an_infinite_scale() -> None:
    assert accumulation_bound(12, float("inf")) == float("inf")


def test_tolerance_allows_a_difference_exactly_at_the_limit() -> None:
    # Kills mutant tol-allows-strict. Binary fractions, so every quantity below is exact:
    # the limit is atol + rtol·|reference| = 0.5 + 0.25·1 = 0.75.
    tol = Tolerance(rtol=0.25, atol=0.5, reason="test")
    assert tol.allows(1.75, 1.0)
    assert tol.allows(-1.75, -1.0)
    assert not tol.allows(1.75 + 2.0**-50, 1.0)
