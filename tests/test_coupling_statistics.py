"""The coupling statistics (reference.coupling_statistics) on constructed cases with known answers.

They are measurements for R1, R2, R4, not claims: these tests check that each statistic is computed
as defined (docs/theory.md, "Coupling statistics"), never that a phenomenon holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.coupling_statistics import (
    attention_entropy,
    log_temperature_variance,
    pearson,
    prototype_separation,
    variance_gradient_norm,
)
from reference.ddcl import prototype_variance
from reference.invariants.coupling import assignment_has_mass, r1a_orthogonal_split, rows_orthogonal
from reference.tolerances import CheckKind, tolerance

# np.log dispatches to CPU-specific kernels (AVX-512 machines use their own, a few ulp from glibc's):
# known answers that go through it are held to the VALUE row, not to this machine's rounding.
LOG_RTOL = tolerance("float64", CheckKind.VALUE).rtol

# prototypes at (0, 0), (3, 0), (0, 4): pairwise distances 3, 4, 5
P345 = np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 4.0]])


@pytest.mark.claim("R1", "property")
@pytest.mark.claim("R4", "property")
def test_separation_is_the_mass_weighted_mean_pairwise_distance_and_its_minimum() -> None:
    assert prototype_separation(P345, np.full(3, 1.0 / 3.0)) == pytest.approx((4.0, 3.0), rel=1e-15)
    # only the pair (0, 1) carries weight: S is its distance; the minimum is over all pairs
    assert prototype_separation(P345, np.array([0.5, 0.5, 0.0])) == pytest.approx((3.0, 3.0), rel=1e-15)
    S, S_min = prototype_separation(P345, np.array([0.2, 0.2, 0.6]))
    w = {(0, 1): 0.04, (0, 2): 0.12, (1, 2): 0.12}
    d = {(0, 1): 3.0, (0, 2): 4.0, (1, 2): 5.0}
    assert pytest.approx(sum(w[k] * d[k] for k in w) / sum(w.values()), rel=1e-15) == S
    assert S_min == 3.0


def test_separation_is_undefined_for_one_prototype_and_refuses_negative_mass() -> None:
    assert prototype_separation(np.array([[1.0], [2.0]]), np.array([1.0])) == (None, None)
    with pytest.raises(ValueError, match="mass"):
        prototype_separation(P345, np.array([0.5, 0.6, -0.1]))
    # a length mismatch is refused by the run-time shape check under pytest, by check_dim otherwise
    with pytest.raises((ValueError, TypeError), match="mass"):
        prototype_separation(P345, np.array([0.5, 0.5]))


@pytest.mark.claim("R4", "property")
def test_variance_gradient_norm_on_a_hand_computed_case_and_against_finite_differences() -> None:
    # q = (½, ½) for every token, p = (±1, 0): Σ_q = ¼[[1, −1], [−1, 1]], 2PΣ_q = [[1, −1], [0, 0]]
    P = np.array([[1.0, -1.0], [0.0, 0.0]])
    Q = np.full((5, 2), 0.5)
    assert variance_gradient_norm(P, Q) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert variance_gradient_norm(P, np.eye(2)[[0, 1, 1, 0, 1]]) == 0.0  # hard assignments: V ≡ 0
    rng = np.random.default_rng(0)
    P = rng.standard_normal((3, 4))
    Q = rng.dirichlet(np.ones(4), size=7)
    h, G = 1e-6, np.zeros_like(P)
    for i in np.ndindex(P.shape):
        E = np.zeros_like(P)
        E[i] = h
        G[i] = (prototype_variance(P + E, Q) - prototype_variance(P - E, Q)) / (2 * h)
    assert variance_gradient_norm(P, Q) == pytest.approx(float(np.linalg.norm(G)), rel=1e-7)


@pytest.mark.claim("R2", "property")
def test_attention_entropy_is_zero_for_hard_rows_and_log_t_for_uniform_ones() -> None:
    T = 4
    assert attention_entropy(np.full((2, T, T), 1.0 / T)) == pytest.approx(math.log(T), rel=LOG_RTOL)
    assert attention_entropy(np.tile(np.eye(T), (3, 1, 1))) == 0.0
    half = np.zeros((1, 2, 2))
    half[0, 0] = (1.0, 0.0)
    half[0, 1] = (0.5, 0.5)
    assert attention_entropy(half) == pytest.approx(0.5 * math.log(2.0), rel=LOG_RTOL)


@pytest.mark.claim("R2", "property")
@pytest.mark.claim("R4", "property")
def test_log_temperature_variance_and_pearson() -> None:
    assert log_temperature_variance({0: 1.0, 1: math.e}) == pytest.approx(0.25, rel=1e-15)
    assert log_temperature_variance({}) is None
    with pytest.raises(ValueError, match=r"tau\[3\]"):
        log_temperature_variance({3: 0.0})
    x = [0.0, 1.0, 2.0, 5.0]
    assert pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0, rel=1e-15)
    assert pearson(x, [-v for v in x]) == pytest.approx(-1.0, rel=1e-15)
    assert pearson(x, [3.0] * 4) is None
    assert pearson([1.0], [2.0]) is None
    with pytest.raises(ValueError, match="length"):
        pearson(x, [1.0])


# ---- planted errors: the known-answer checks above fire on a wrong statistic -----------------------


def _r4_known_answers() -> list[str]:
    """The R4 known answers as a list of failures (empty: all hold)."""
    out = []
    P, Q = np.array([[1.0, -1.0], [0.0, 0.0]]), np.full((5, 2), 0.5)
    if variance_gradient_norm(P, Q) != pytest.approx(math.sqrt(2.0), rel=1e-12):
        out.append("‖∇_P V‖ at q = (½, ½), p = (±1, 0)")
    x = [0.0, 1.0, 2.0, 5.0]
    if pearson(x, [-v for v in x]) != pytest.approx(-1.0, rel=1e-12):
        out.append("pearson(x, −x)")
    return out


def _r2_known_answers() -> list[str]:
    out = []
    if attention_entropy(np.full((2, 4, 4), 0.25)) != pytest.approx(math.log(4.0), rel=1e-12):
        out.append("entropy of uniform rows")
    if log_temperature_variance({0: 1.0, 1: math.e}) != pytest.approx(0.25, rel=1e-12):
        out.append("Var(log τ) of (1, e)")
    return out


@pytest.mark.claim("R4", "planted")
def test_r4_known_answers_fire_on_a_forgotten_factor_two(monkeypatch: pytest.MonkeyPatch) -> None:
    import reference.coupling_statistics as cs

    assert _r4_known_answers() == []
    right = cs.grad_variance_fixed_Q
    monkeypatch.setattr(cs, "grad_variance_fixed_Q", lambda P, Q: 0.5 * right(P, Q))  # PΣ_q instead of 2PΣ_q
    assert "‖∇_P V‖ at q = (½, ½), p = (±1, 0)" in _r4_known_answers()


@pytest.mark.claim("R2", "planted")
def test_r2_known_answers_fire_on_entropy_in_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    import reference.coupling_statistics as cs

    assert _r2_known_answers() == []
    monkeypatch.setattr(cs, "np", _Log2Numpy())
    assert "entropy of uniform rows" in _r2_known_answers()


class _Log2Numpy:
    """NumPy with ``log`` in base 2 (entropy in bits instead of nats: the planted unit error)."""

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)

    @staticmethod
    def log(x: object) -> object:
        return np.log2(x)  # type: ignore[call-overload]


# ---- R1(a): the orthogonal-subspace lemma ------------------------------------------------------------


def _orthogonal_case(seed: int, n: int = 6, d: int = 5, K: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    B = np.linalg.qr(rng.standard_normal((d, d)))[0]
    k = int(rng.integers(1, d))
    Y = rng.standard_normal((n, k)) @ B[:, :k].T
    U = rng.standard_normal((n, d - k)) @ B[:, k:].T
    Q = rng.dirichlet(np.ones(K), size=n)
    return Y, U, Q


@pytest.mark.claim("R1", "property")
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-60, 1e-3, 1.0, 1e5, 1e60]))
def test_r1a_split_holds_for_orthogonal_subspaces(seed: int, scale: float) -> None:
    Y, U, Q = _orthogonal_case(seed)
    Y, U = Y * scale, U * scale
    assert rows_orthogonal(Y=Y, U=U)
    assert assignment_has_mass(Q=Q)
    results = r1a_orthogonal_split(Y=Y, U=U, Q=Q)
    assert all(r.holds for r in results), [str(r) for r in results]


@pytest.mark.claim("R1", "planted")
def test_r1a_fires_on_a_non_orthogonal_write_and_just_past_its_bound() -> None:
    """Without orthogonality the split fails by the cross term 2cᵀYUᵀc; a tilt of U towards Y sized to
    put that term at 2× the bound fires, at 0.5× it holds (the bound is the decision, not a constant)."""
    Y, U, Q = _orthogonal_case(3)
    results = r1a_orthogonal_split(Y=Y, U=U, Q=Q)
    bound = results[0].bound
    split_0 = results[0].value

    def residual(eps: float) -> float:
        return r1a_orthogonal_split(Y=Y, U=U + eps * Y, Q=Q)[0].value

    slope = (residual(1e-6) - split_0) / 1e-6  # the cross term is linear in the tilt (plus O(eps²))
    assert slope > 0
    over = r1a_orthogonal_split(Y=Y, U=U + (2.0 * bound / slope) * Y, Q=Q)[0]
    under = r1a_orthogonal_split(Y=Y, U=U + (0.5 * bound / slope) * Y, Q=Q)[0]
    assert not over.holds
    assert under.holds
    assert not rows_orthogonal(Y=Y, U=U + 0.5 * Y)
    assert not all(r.holds for r in r1a_orthogonal_split(Y=Y, U=U + 0.5 * Y, Q=Q))
