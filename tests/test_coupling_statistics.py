"""The coupling statistics (reference.coupling_statistics) on constructed cases with known answers.

They are measurements for R1, R2, R4, not claims: these tests check that each statistic is computed
as defined (docs/theory.md, "Coupling statistics"), never that a phenomenon holds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.coupling_statistics import (
    attention_entropy,
    log_temperature_variance,
    pearson,
    prototype_separation,
    variance_gradient_norm,
)
from reference.ddcl import prototype_variance

# prototypes at (0, 0), (3, 0), (0, 4): pairwise distances 3, 4, 5
P345 = np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 4.0]])


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


def test_attention_entropy_is_zero_for_hard_rows_and_log_t_for_uniform_ones() -> None:
    T = 4
    assert attention_entropy(np.full((2, T, T), 1.0 / T)) == pytest.approx(math.log(T), rel=1e-15)
    assert attention_entropy(np.tile(np.eye(T), (3, 1, 1))) == 0.0
    half = np.zeros((1, 2, 2))
    half[0, 0] = (1.0, 0.0)
    half[0, 1] = (0.5, 0.5)
    assert attention_entropy(half) == pytest.approx(0.5 * math.log(2.0), rel=1e-15)


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
