"""Constructed weights with which the DDCL-INCRT layer fits :func:`training.data.planted_pairs` exactly.

The layer has ``m`` heads, one per relation ``k`` (docs/studies/planted-heads.md derives every value):

    W_in = [I_{d_in} 0]            X_t = x_t in the first d_in coordinates; E_pos = 0
    M_k  = c · e_{sA_k} e_{sB_k}ᵀ   score(t → j) = c·s_t·s_j if t is A_k and j is B_k, else 0
    W_V^k = e_{uB_k}                the value is "this key is B_k" (1 on B_k, 0 elsewhere)
    W_O^k = T · e_{d_in + k}ᵀ       head k writes channel k, outside the inputs' coordinates
    P = 0                           every prototype at the same point: Q is uniform and Q Pᵀ = 0

Head k's query at ``A_k`` puts weight ``α_± = e^{±c}/(e^{±c} + T − 1)`` on ``B_k`` (``+`` when the two
signs match); every other query has all scores 0 and puts ``1/T`` on it. So channel ``k`` of the
mean-pooled ``z̄`` is ``α_± + (T − 1)/T`` exactly, and ``α_+ > 1/T > α_−`` for every ``c > 0``: bit ``k``
is the side of the midpoint. The readout gives class ``c`` the logit ``w Σ_k σ_k(c)(z̄_k − mid)``,
``σ_k(c) = ±1`` by bit ``k`` of ``c``: the arg-max is the class whose bits agree with every channel,
which is the label, for every input of the task (no sampling, no tolerance).

:func:`constructed_params` builds these weights for any subset of the relations: with a relation's
head left out, its channel is identically 0 and its bit is predicted constant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from reference._arrays import arr, check_count, check_positive
from reference.model import HeadParams, LayerConfig, ModelParams

# c: the score gap; any c > 0 separates the classes, a larger one widens the margin α_+ − α_−.
DEFAULT_SCORE_SCALE = 4.0
# w: the readout's scale; any w > 0 gives the same arg-max, a larger one a smaller cross-entropy.
DEFAULT_READOUT_SCALE = 20.0


def required_width(n_relations: int, d_in: int) -> int:
    """The smallest model width ``d`` the construction needs: the inputs' ``d_in`` coordinates plus one
    output channel per relation."""
    return check_count("d_in", d_in, 1) + check_count("n_relations", n_relations, 1)


def attention_on_partner(score_scale: float, seq_len: int, *, match: bool) -> float:
    """``α_± = e^{±c}/(e^{±c} + T − 1)``: head k's weight, from the ``A_k`` query, on the ``B_k`` key."""
    c = check_positive("score_scale", score_scale)
    T = check_count("seq_len", seq_len, 2)
    e = math.exp(c if match else -c)
    return e / (e + T - 1)


def channel_value(score_scale: float, seq_len: int, *, match: bool) -> float:
    """Channel ``k`` of ``z̄`` for a sequence whose relation ``k`` matches (or not): ``α_± + (T − 1)/T``."""
    T = check_count("seq_len", seq_len, 2)
    return attention_on_partner(score_scale, T, match=match) + (T - 1) / T


def constructed_params(
    cfg: LayerConfig,
    n_relations: int,
    *,
    heads_for: Sequence[int] | None = None,
    score_scale: float = DEFAULT_SCORE_SCALE,
    readout_scale: float = DEFAULT_READOUT_SCALE,
) -> ModelParams:
    """The weights of the module docstring for ``planted_pairs(n_relations=m, seq_len=cfg.seq_len,
    d_in=cfg.d_in)``: one head per relation in ``heads_for`` (default: all ``m``; head id = relation).

    ``cfg`` needs ``d_in ≥ 4m``, ``d ≥ d_in + m``, ``n_classes = 2^m``; ``d_k``, ``d_v`` ≥ 1 (only the
    first column of each head's matrices is used) and any ``K_max``, ``T_P``, ``λ_q``, ``s_init``
    (the heads' ``s = cfg.s_init`` is compensated in ``W_Q``, ``W_K``).
    """
    m = check_count("n_relations", n_relations, 1)
    if not isinstance(cfg, LayerConfig):
        raise TypeError(f"cfg: expected a LayerConfig, got {type(cfg).__name__}")
    if cfg.d_in < 4 * m:
        raise ValueError(f"cfg: d_in = {cfg.d_in} is below 4·n_relations = {4 * m} (the task's feature width)")
    if cfg.d < required_width(m, cfg.d_in):
        raise ValueError(f"cfg: d = {cfg.d} is below d_in + n_relations = {cfg.d_in + m} (one channel per relation)")
    if cfg.n_classes != 2**m:
        raise ValueError(f"cfg: n_classes = {cfg.n_classes}, but the task has 2^n_relations = {2**m} classes")
    c = check_positive("score_scale", score_scale)
    w = check_positive("readout_scale", readout_scale)
    relations = tuple(range(m)) if heads_for is None else tuple(heads_for)
    if len(relations) == 0 or len(set(relations)) != len(relations) or any(not 0 <= k < m for k in relations):
        raise ValueError(f"heads_for: expected distinct relations in [0, {m}), at least one, got {relations}")
    d, T = cfg.d, cfg.seq_len

    def e(i: int) -> np.ndarray:
        v = np.zeros(d)
        v[i] = 1.0
        return v

    # M = W_Q W_Kᵀ · exp(−s)/√d_k, so a² · exp(−s)/√d_k = c.
    a = math.sqrt(c * math.sqrt(cfg.d_k) * math.exp(cfg.s_init))
    heads: dict[int, HeadParams] = {}
    for k in relations:
        W_Q, W_K = np.zeros((d, cfg.d_k)), np.zeros((d, cfg.d_k))
        W_Q[:, 0] = a * e(2 * m + k)  # signed A_k coordinate
        W_K[:, 0] = a * e(2 * m + m + k)  # signed B_k coordinate
        W_V = np.zeros((d, cfg.d_v))
        W_V[:, 0] = e(m + k)  # unsigned B_k coordinate
        W_O = np.zeros((cfg.d_v, d))
        W_O[0, :] = T * e(cfg.d_in + k)  # channel k, scaled so that z̄_k = α + (T − 1)/T
        heads[k] = HeadParams(W_Q=arr(W_Q), W_K=arr(W_K), W_V=arr(W_V), W_O=arr(W_O), s=cfg.s_init)

    mid = 0.5 * (channel_value(c, T, match=True) + channel_value(c, T, match=False))
    W_c = np.zeros((d, cfg.n_classes))
    b_c = np.zeros(cfg.n_classes)
    for cls in range(cfg.n_classes):
        for k in range(m):
            sigma = 1.0 if (cls >> k) & 1 else -1.0
            W_c[cfg.d_in + k, cls] = w * sigma
            b_c[cls] -= w * sigma * mid
    W_in = np.zeros((cfg.d_in, d))
    W_in[:, : cfg.d_in] = np.eye(cfg.d_in)
    return ModelParams(
        W_in=arr(W_in),
        E_pos=arr(np.zeros((T, d))),
        heads=heads,
        next_head_id=m,
        P=arr(np.zeros((d, cfg.K_max))),
        prototype_ids=tuple(range(cfg.K_max)),
        W_c=arr(W_c),
        b_c=arr(b_c),
    )


__all__ = [
    "DEFAULT_READOUT_SCALE",
    "DEFAULT_SCORE_SCALE",
    "attention_on_partner",
    "channel_value",
    "constructed_params",
    "required_width",
]
