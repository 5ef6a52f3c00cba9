"""The planted-pairs task and its constructed m-head solution (docs/studies/planted-heads.md §1).

The task's rule is re-derived here from the features (``_decode``), independently of the generator's
code; the constructed weights are evaluated by the reference ``forward`` in float64.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from reference.model import HeadParams, LayerConfig, forward
from reference.planted_solution import attention_on_partner, channel_value, constructed_params, required_width
from reference.tolerances import CheckKind, tolerance
from training.data import planted_pairs

SEQ_LEN = 6


def _layer(m: int, *, d_in: int | None = None, width: int = 1) -> LayerConfig:
    d_in_ = 4 * m if d_in is None else d_in
    return LayerConfig(
        d_in=d_in_,
        d=d_in_ + m + 1,
        d_k=width,
        d_v=width,
        seq_len=SEQ_LEN,
        K_max=4,
        n_classes=2**m,
        T_P=1.0,
        lambda_q=0.1,
        s_init=0.3,  # the construction compensates any s_init
    )


def _decode(x: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(signs of A_k, signs of B_k), each B×m, read off the features as the docstring defines them."""
    s = x[:, :, 2 * m : 4 * m].sum(axis=1)  # one typed token per type: the signed one-hot summed over t
    return s[:, :m], s[:, m:]


def _label(x: np.ndarray, m: int) -> np.ndarray:
    sA, sB = _decode(x, m)
    return ((sA == sB).astype(np.int64) * (2 ** np.arange(m))).sum(axis=1)


def _accuracy(params: object, cfg: LayerConfig, x: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    cache = forward(params, cfg, x, labels)  # type: ignore[arg-type]
    pred = cache.logits.argmax(axis=1)
    return float(np.mean(pred == labels)), pred


@pytest.mark.parametrize("m", [1, 2, 3])
def test_generator_follows_its_documented_rule(m: int) -> None:
    data = planted_pairs(n_relations=m, n_train=200, n_test=50, seq_len=SEQ_LEN, rng=np.random.default_rng(m))
    assert data.n_classes == 2**m
    assert data.d_in == 4 * m
    x = data.x_train
    types = x[:, :, : 2 * m]
    np.testing.assert_array_equal(types.sum(axis=1), np.ones((200, 2 * m)))  # each type exactly once
    assert np.all(types.sum(axis=2) <= 1.0)  # at most one type per token; the rest are blank
    np.testing.assert_array_equal(np.abs(x[:, :, 2 * m :]), types)  # the sign lives on the typed token
    np.testing.assert_array_equal(_label(x, m), data.labels_train)
    assert set(np.unique(data.labels_train)) == set(range(2**m))  # every class occurs


def test_each_bit_is_an_xor_of_two_tokens() -> None:
    # The key step of the zero-routing proof (§1.2): flipping s_A alone flips bit k, flipping s_B alone
    # flips it, flipping both leaves it — so no f(s_A) + g(s_B) can threshold it.
    m = 2
    data = planted_pairs(n_relations=m, n_train=64, n_test=8, seq_len=SEQ_LEN, rng=np.random.default_rng(7))
    cfg = _layer(m)
    params = constructed_params(cfg, m)
    base = _label(data.x_train, m)
    for k in range(m):
        flip_a, flip_b = data.x_train.copy(), data.x_train.copy()
        flip_a[:, :, 2 * m + k] *= -1.0
        flip_b[:, :, 3 * m + k] *= -1.0
        both = flip_a.copy()
        both[:, :, 3 * m + k] *= -1.0
        for x, changed in ((flip_a, True), (flip_b, True), (both, False)):
            expected = base ^ (1 << k) if changed else base
            np.testing.assert_array_equal(_label(x, m), expected)
            acc, _ = _accuracy(params, cfg, x, expected)  # the constructed model follows every flip
            assert acc == 1.0


@pytest.mark.parametrize("m", [1, 2, 3])
def test_constructed_m_heads_fit_the_task(m: int) -> None:
    cfg = _layer(m, d_in=12)
    data = planted_pairs(n_relations=m, n_train=8, n_test=1000, seq_len=SEQ_LEN, d_in=12, rng=np.random.default_rng(m))
    params = constructed_params(cfg, m)
    assert len(params.heads) == m
    acc, _ = _accuracy(params, cfg, data.x_test, data.labels_test)
    assert acc >= 0.99
    assert acc == 1.0  # exact by construction (docs §1.1): every input, no sampling margin


def test_channels_take_the_derived_values() -> None:
    # z̄ on channel k is α_± + (T − 1)/T exactly (up to float64 rounding), α_+ > 1/T > α_−.
    m = 2
    cfg = _layer(m)
    data = planted_pairs(n_relations=m, n_train=8, n_test=200, seq_len=SEQ_LEN, rng=np.random.default_rng(3))
    cache = forward(constructed_params(cfg, m), cfg, data.x_test, data.labels_test)
    sA, sB = _decode(data.x_test, m)
    tol = tolerance("float64", CheckKind.VALUE)
    for k in range(m):
        match = sA[:, k] == sB[:, k]
        want = np.where(match, channel_value(4.0, SEQ_LEN, match=True), channel_value(4.0, SEQ_LEN, match=False))
        np.testing.assert_allclose(cache.z_bar[:, cfg.d_in + k], want, rtol=tol.rtol, atol=tol.atol)
    assert (
        attention_on_partner(4.0, SEQ_LEN, match=True) > 1 / SEQ_LEN > attention_on_partner(4.0, SEQ_LEN, match=False)
    )


def test_without_a_relations_head_its_bit_is_predicted_constant() -> None:
    # m − 1 heads of the construction: the dropped relation's channel is 0, so its bit is always 0 and
    # the accuracy is the fraction of sequences with b_k = 0 (about 1/2); the other bits stay exact.
    m = 3
    cfg = _layer(m)
    data = planted_pairs(n_relations=m, n_train=8, n_test=2000, seq_len=SEQ_LEN, rng=np.random.default_rng(11))
    labels = data.labels_test
    for k in range(m):
        params = constructed_params(cfg, m, heads_for=[j for j in range(m) if j != k])
        acc, pred = _accuracy(params, cfg, data.x_test, labels)
        np.testing.assert_array_equal(pred, labels & ~(1 << k))
        assert acc == pytest.approx(float(np.mean((labels >> k) & 1 == 0)))
        assert acc < 0.6


def test_one_wide_head_routes_two_relations() -> None:
    # Why the study's heads have d_k = d_v = 1: with d_k = d_v = 2 ONE head (rank-2 score, two value
    # channels) fits m = 2, so "m − 1 heads cannot" fails for wide heads (docs §1.2).
    m = 2
    cfg = _layer(m, width=2)
    two = constructed_params(cfg, m)
    h0, h1 = two.heads[0], two.heads[1]
    merged = HeadParams(
        W_Q=np.stack([h0.W_Q[:, 0], h1.W_Q[:, 0]], axis=1),
        W_K=np.stack([h0.W_K[:, 0], h1.W_K[:, 0]], axis=1),
        W_V=np.stack([h0.W_V[:, 0], h1.W_V[:, 0]], axis=1),
        W_O=np.stack([h0.W_O[0], h1.W_O[0]], axis=0),
        s=h0.s,
    )
    one = replace(two, heads={0: merged})
    data = planted_pairs(n_relations=m, n_train=8, n_test=1000, seq_len=SEQ_LEN, rng=np.random.default_rng(5))
    acc, _ = _accuracy(one, cfg, data.x_test, data.labels_test)
    assert acc == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_relations": 0}, "n_relations"),
        ({"n_relations": 4, "seq_len": 7}, "seq_len"),
        ({"n_relations": 2, "d_in": 7}, "d_in"),
        ({"n_relations": 1, "n_train": 0}, "n_train"),
    ],
)
def test_generator_refuses_bad_arguments(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        planted_pairs(rng=np.random.default_rng(0), **{"n_test": 4, **kwargs})


def test_construction_refuses_a_layer_that_cannot_hold_it() -> None:
    cfg = _layer(2)
    assert required_width(2, cfg.d_in) == cfg.d_in + 2
    with pytest.raises(ValueError, match="d = "):
        constructed_params(replace(cfg, d=cfg.d_in + 1), 2)
    with pytest.raises(ValueError, match="n_classes"):
        constructed_params(replace(cfg, n_classes=3), 2)
    with pytest.raises(ValueError, match="d_in"):
        constructed_params(cfg, 3)
    with pytest.raises(ValueError, match="heads_for"):
        constructed_params(cfg, 2, heads_for=[0, 0])
    with pytest.raises(ValueError, match="score_scale"):
        constructed_params(cfg, 2, score_scale=0.0)
