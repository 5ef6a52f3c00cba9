"""Axis conventions of the measured statistics, on inputs where the wrong axis gives another value.

Expected values are computed by hand below (dyadic inputs, so they are exact):

* prototype masses ``n_j/n``: the mean of ``Q``'s column ``j`` over the probe's tokens (not over the
  prototypes, which is ``1/K`` for every token of a row-stochastic ``Q``), matched by prototype id;
* ``C = X̄ᵀX̄/n``: the second moment (not centred) over all ``n = B·T`` tokens of the layer input
  ``X = xW_in + E_pos`` (divided by the token count, not by the width);
* ``Cov Y`` of D4's critical temperature: centred over the tokens (each coordinate's mean), 1/n;
* attention entropy: ``−Σ_s a_ts log a_ts`` over the keys ``s`` of each query row ``t``, averaged over
  rows and sequences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.coupling_statistics import attention_entropy
from reference.ddcl import collapse_critical_temperatures
from reference.growth_statistics import Probe, probe_second_moment, prototype_masses
from reference.incrt.controller import GrowthState, HeadRecord, PrototypeRecord
from reference.model import HeadParams, LayerConfig, ModelParams

FAR = 1024.0  # squared distance ≥ 2^18 to every token: the assignment exp(−D/T_P) underflows to 0


def _params(*, P: np.ndarray, prototype_ids: tuple[int, ...], E_pos: np.ndarray) -> ModelParams:
    head = HeadParams(W_Q=np.ones((2, 1)), W_K=np.ones((2, 1)), W_V=np.zeros((2, 1)), W_O=np.zeros((1, 2)), s=0.0)
    return ModelParams(
        W_in=np.eye(2),
        E_pos=E_pos,
        heads={0: head},
        next_head_id=1,
        P=P,
        prototype_ids=prototype_ids,
        W_c=np.zeros((2, 2)),
        b_c=np.zeros(2),
    )


def test_prototype_masses_are_column_means_over_the_tokens() -> None:
    """Six of the eight probe tokens sit on prototype 4, two on prototype 7, none near prototype 9, and
    the others are ≥ 128 away from each token (``W_V = 0``, so the tokens are ``Y = X = x``): ``Q`` is
    one-hot, and the masses are exactly (6/8, 2/8, 0) — not 1/3 each, the mean over a row."""
    layer = LayerConfig(d_in=2, d=2, d_k=1, d_v=1, seq_len=2, K_max=3, n_classes=2, T_P=1.0, lambda_q=0.0)
    P = np.array([[64.0, -64.0, FAR], [0.0, 0.0, FAR]])
    params = _params(P=P, prototype_ids=(4, 7, 9), E_pos=np.zeros((2, 2)))
    plus, minus = [64.0, 0.0], [-64.0, 0.0]
    x = np.array([[plus, plus], [plus, minus], [plus, plus], [minus, plus]])
    probe = Probe(x=x, labels=np.array([0, 1, 0, 1]))
    growth = GrowthState(np.zeros((2, 0)), 0, (HeadRecord(0, 0),), tuple(PrototypeRecord(j) for j in (4, 7, 9)))
    np.testing.assert_array_equal(prototype_masses(params, layer, probe, growth), [0.75, 0.25, 0.0])


def test_the_second_moment_is_over_all_tokens_of_the_layer_input_and_not_centred() -> None:
    """Tokens ``x + E_pos``: (1,0)+(1,1) = (2,1), (0,1)+(0,0) = (0,1), (1,2)+(1,1) = (2,3), (3,0)+(0,0)
    = (3,0). ``Σx₁² = 4+0+4+9 = 17``, ``Σx₁x₂ = 2+0+6+0 = 8``, ``Σx₂² = 1+1+9+0 = 11``; n = 4, d = 2."""
    params = _params(P=np.zeros((2, 1)), prototype_ids=(0,), E_pos=np.array([[1.0, 1.0], [0.0, 0.0]]))
    x = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [3.0, 0.0]]])
    C = probe_second_moment(params, Probe(x=x, labels=np.array([0, 1])))
    np.testing.assert_array_equal(C, np.array([[17 / 4, 8 / 4], [8 / 4, 11 / 4]]))


def test_the_covariance_of_the_collapse_temperature_is_centred_over_the_tokens() -> None:
    """Y = (0,0), (4,0), (0,0), (0,0): each coordinate's mean is (1, 0), deviations (−1,0), (3,0), (−1,0),
    (−1,0), so ``Cov Y = diag((1+9+1+1)/4, 0) = diag(3, 0)`` and ``T_c = (2·3, 4·3)``. (Centring each
    token over its own coordinates gives λ_max = 2; dividing by n − 1 gives 4.)"""
    Y = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    assert collapse_critical_temperatures(Y) == pytest.approx((6.0, 12.0), rel=1e-15)


def test_attention_entropy_is_over_the_keys_of_each_query() -> None:
    """Sequence 0: rows (1, 0, 0), (½, ½, 0), (¼, ¼, ½) have entropies 0, log 2, 3/2·log 2; sequence 1:
    uniform rows, log 3 each. The mean over the six rows is (5/2·log 2 + 3·log 3)/6.

    Summing ``−a log a`` over the queries of each key instead gives the same mean: over a square
    attention matrix both average the same ``B·T²`` terms over ``B·T`` rows or columns, so that axis
    cannot be observed through this statistic (its mutant is recorded as equivalent)."""
    A = np.zeros((2, 3, 3))
    A[0] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]]
    A[1] = 1.0 / 3.0
    expected = (2.5 * math.log(2.0) + 3.0 * math.log(3.0)) / 6.0
    assert attention_entropy(A) == pytest.approx(expected, rel=1e-14)
    # per row, not per sequence: the second sequence alone has log 3, the first alone 5/6·log 2
    assert attention_entropy(A[1:]) == pytest.approx(math.log(3.0), rel=1e-14)
    assert attention_entropy(A[:1]) == pytest.approx(2.5 * math.log(2.0) / 3.0, rel=1e-14)
