"""The hand-derived backward of the layer (no autodiff), in reverse order of :mod:`reference.model`.

``∂L/∂θ`` for every parameter, keyed like :func:`reference.surgery.flatten`. The formulas are written
out in ``docs/model.md`` (section "Backward", same order), checked symbolically in
``proofs_check/backprop_steps.py`` (steps BP.1–BP.7) and numerically against central finite
differences in ``tests/test_model_gradients.py``; the accelerated path's autograd is the third check.
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Float64, Int
from numpy.typing import NDArray

from reference._arrays import F64Array, arr, check_array, check_count, check_temperature, f64, finite_result
from reference.ddcl import grad_quantisation_full, pullback_distances
from reference.model import (
    ForwardCache,
    HeadCache,
    HeadParams,
    LayerConfig,
    ModelParams,
    check_params,
    forward,
    score_operator,
)
from reference.surgery import HEAD_PARAM_NAMES, head_param_name

# ==================================================================================================
# The whole layer: L → parameters, composing the sublayers' backward passes below (reverse order)
# ==================================================================================================


@finite_result("params", "cache")
def backward(params: ModelParams, cfg: LayerConfig, cache: ForwardCache) -> dict[str, F64Array]:
    """``∂L/∂θ`` for every parameter, keyed like :func:`reference.surgery.flatten` (hand-derived; see docs/model.md).

    Order is the reverse of :func:`forward`: cross-entropy → readout → DDCL block (through ``Z`` and,
    weighted by ``λ_q``, through ``L_q``; both differentiate ``Q``) → residual ``Y = X + U`` → heads →
    input embedding.
    """
    check_params(params, cfg)
    if not isinstance(cache, ForwardCache):
        raise TypeError(f"cache: expected the ForwardCache returned by forward(), got {type(cache).__name__}")
    if sorted(cache.heads) != sorted(params.heads) or cache.T_P != cfg.T_P:
        raise ValueError(
            f"cache: computed with heads {sorted(cache.heads)} and T_P = {cache.T_P}, but params have heads "
            f"{sorted(params.heads)} and cfg.T_P = {cfg.T_P}; call forward() with these params and cfg"
        )
    if cache.Q.shape[1] != params.P.shape[1]:
        raise ValueError(f"cache: computed with K = {cache.Q.shape[1]} prototypes, params have {params.P.shape[1]}")
    return _backward(params, cfg, cache)


def _backward(params: ModelParams, cfg: LayerConfig, cache: ForwardCache) -> dict[str, F64Array]:
    """:func:`backward` for a cache known to come from ``forward(params, cfg, ·)`` (no checks)."""
    B, T, d = cache.Y.shape
    dlogits = _cross_entropy_backward(cache.log_probs, cache.labels)
    dZ, dW_c, db_c = _readout_backward(cache.z_bar, params.W_c, dlogits, T)
    Y_flat = cache.tokens()
    dY_flat, dP = _ddcl_block_backward(Y_flat, params.P, cache.Q, cfg.T_P, arr(dZ.reshape(B * T, d)))
    if cfg.lambda_q != 0.0:
        dY_q, dP_q = grad_quantisation_full(Y_flat, params.P, cfg.T_P)
        dY_flat = arr(dY_flat + cfg.lambda_q * dY_q)
        dP = arr(dP + cfg.lambda_q * dP_q)
    dY = arr(dY_flat.reshape(B, T, d))
    dX = dY.copy()  # the residual Y = X + U passes dY to X unchanged; U = Σ_h (head terms) gets dY
    grads_heads: dict[str, F64Array] = {}
    for hid, head in params.heads.items():
        dX_h, g = _head_backward(head, cache.X, cache.heads[hid], dY)
        dX += dX_h
        for name in HEAD_PARAM_NAMES:
            grads_heads[head_param_name(hid, name)] = g[name]
    dW_in, dE_pos = _layer_input_backward(cache.x, dX)
    return {"W_in": dW_in, "E_pos": dE_pos, **grads_heads, "P": dP, "W_c": dW_c, "b_c": db_c}


@finite_result("params", "x")
def loss_and_gradients(
    params: ModelParams, cfg: LayerConfig, x: Float64[np.ndarray, "B T d_in"], labels: Int[np.ndarray, " B"]
) -> tuple[ForwardCache, dict[str, F64Array]]:
    """:func:`forward` then :func:`backward` (what one training step needs)."""
    cache = forward(params, cfg, x, labels)
    return cache, _backward(params, cfg, cache)


# ==================================================================================================
# Validation of the helpers' arguments (the whole-layer backward above runs the unchecked bodies on a
# cache forward() built, so a training step pays for none of it)
# ==================================================================================================


def _array(name: str, value: object, shape: tuple[int | None, ...]) -> F64Array:
    """A finite float64 array of ``len(shape)`` dimensions whose sizes match ``shape`` (``None``: any size)."""
    out = check_array(name, value, len(shape))
    for axis, size in enumerate(shape):
        if size is not None and out.shape[axis] != size:
            expected = tuple("·" if s is None else s for s in shape)
            raise ValueError(f"{name}: expected shape {expected}, got {out.shape}")
    return out


def _check_head(head: object) -> HeadParams:
    if not isinstance(head, HeadParams):
        raise TypeError(f"head: expected reference.model.HeadParams, got {type(head).__name__}")
    return head


def _check_labels(labels: object, B: int, n_classes: int) -> NDArray[np.integer]:
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels: expected an integer numpy.ndarray, got {type(labels).__name__}")
    if labels.shape != (B,):
        raise ValueError(f"labels: expected shape ({B},), one per row of log_probs, got {labels.shape}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels: class ids must lie in [0, {n_classes}), got min {labels.min()}, max {labels.max()}")
    return labels


# ==================================================================================================
# Sublayer 4 backward: task loss and readout (BP.5)
# ==================================================================================================


@finite_result("log_probs")
def cross_entropy_backward(
    log_probs: Float64[np.ndarray, "B n_classes"], labels: Int[np.ndarray, " B"]
) -> Float64[np.ndarray, "B n_classes"]:
    """``∂L_task/∂logits = (softmax(logits) − onehot(labels)) / B`` (step BP.5)."""
    lp = check_array("log_probs", log_probs, 2)
    return _cross_entropy_backward(lp, _check_labels(labels, *lp.shape))


def _cross_entropy_backward(log_probs: F64Array, labels: NDArray[np.integer]) -> F64Array:
    B = labels.shape[0]
    G = np.exp(log_probs)
    G[np.arange(B), labels] -= 1.0
    return arr(G / B)


@finite_result("z_bar", "W_c", "dlogits", "T")
def readout_backward(
    z_bar: Float64[np.ndarray, "B d"],
    W_c: Float64[np.ndarray, "d n_classes"],
    dlogits: Float64[np.ndarray, "B n_classes"],
    T: int,
) -> tuple[Float64[np.ndarray, "B T d"], Float64[np.ndarray, "d n_classes"], Float64[np.ndarray, " n_classes"]]:
    """``(∂L/∂Z, ∂L/∂W_c, ∂L/∂b_c)``: ``z̄ᵀ dlogits``, ``Σ_b dlogits``, and ``∂L/∂Z_{b,t} = (dlogits W_cᵀ)_b / T``."""
    z = check_array("z_bar", z_bar, 2)
    W = _array("W_c", W_c, (z.shape[1], None))
    g = _array("dlogits", dlogits, (z.shape[0], W.shape[1]))
    # T sequence positions are materialised (B×T×d): bounded like an array size
    return _readout_backward(z, W, g, check_count("T", T, 1))


def _readout_backward(z_bar: F64Array, W_c: F64Array, dlogits: F64Array, T: int) -> tuple[F64Array, F64Array, F64Array]:
    dz_bar = dlogits @ W_c.T
    dZ = np.repeat(dz_bar[:, None, :] / T, T, axis=1)
    return arr(dZ), arr(z_bar.T @ dlogits), arr(dlogits.sum(axis=0))


# ==================================================================================================
# Sublayer 3 backward: the DDCL block, Q differentiated (BP.6, BP.7)
# ==================================================================================================


@finite_result("Y", "P", "Q", "T_P", "dZ")
def ddcl_block_backward(
    Y: Float64[np.ndarray, "n d"],
    P: Float64[np.ndarray, "d K"],
    Q: Float64[np.ndarray, "n K"],
    T_P: float,
    dZ: Float64[np.ndarray, "n d"],
) -> tuple[Float64[np.ndarray, "n d"], Float64[np.ndarray, "d K"]]:
    """``(∂L/∂Y, ∂L/∂P)`` through ``Z = Y + Q(Y, P) Pᵀ`` with ``Q`` differentiated (step BP.6).

    ``dQ = dZ P``; the softmax ``Q = softmax(−D/T_P)`` gives ``∂L/∂D = −(1/T_P) Q ⊙ (dQ − (Q ⊙ dQ)1)``,
    pulled back through ``D_tj = ‖y_t − p_j‖²`` (:func:`reference.ddcl.pullback_distances`). The
    direct terms are ``dZ`` (from ``Y``) and ``dZᵀ Q`` (from ``Pᵀ``).
    """
    Y_ = check_array("Y", Y, 2)
    n, d = Y_.shape
    P_ = _array("P", P, (d, None))
    Q_ = _array("Q", Q, (n, P_.shape[1]))
    dZ_ = _array("dZ", dZ, (n, d))
    T = check_temperature("T_P", T_P)
    try:
        return _ddcl_block_backward(Y_, P_, Q_, T, dZ_)
    except ValueError as exc:
        # pullback_distances refuses a non-finite ∂L/∂D under its own name, G: from finite inputs that
        # is float64 overflowing here
        raise FloatingPointError(
            f"ddcl_block_backward: ∂L/∂D overflowed float64 for these inputs Y, P, Q, T_P, dZ ({exc})"
        ) from exc


def _ddcl_block_backward(Y: F64Array, P: F64Array, Q: F64Array, T_P: float, dZ: F64Array) -> tuple[F64Array, F64Array]:
    dQ = dZ @ P
    dD = -_softmax_rows_backward(Q, arr(dQ)) / T_P
    dY_D, dP_D = pullback_distances(Y, P, arr(dD))
    return arr(dZ + dY_D), arr(dZ.T @ Q + dP_D)


# ==================================================================================================
# Sublayer 2 backward: attention heads (BP.4, then BP.1–BP.3)
# ==================================================================================================


@finite_result("head", "X", "cache", "dH")
def head_backward(
    head: HeadParams, X: Float64[np.ndarray, "B T d"], cache: HeadCache, dH: Float64[np.ndarray, "B T d"]
) -> tuple[Float64[np.ndarray, "B T d"], dict[str, F64Array]]:
    """``∂L/∂X`` (this head's share) and ``{W_Q, W_K, W_V, W_O, s}`` gradients from ``dH = ∂L/∂(A_h V_h W_O)``.

    ``dA = dH (V W_O)ᵀ``, ``d(V W_O) = Aᵀ dH``; then ``dW_O = Σ_b V_bᵀ d(V W_O)_b``,
    ``dV = d(V W_O) W_Oᵀ``, ``dW_V = Σ_b X_bᵀ dV_b``; the scores go through BP.1–BP.3.
    """
    h = _check_head(head)
    X_ = _array("X", X, (None, None, h.W_Q.shape[0]))
    B, T, d = X_.shape
    if not isinstance(cache, HeadCache):
        raise TypeError(f"cache: expected the reference.model.HeadCache of this head, got {type(cache).__name__}")
    for name, value, shape in (
        ("cache.M", cache.M, (d, d)),
        ("cache.A", cache.A, (B, T, T)),
        ("cache.values", cache.values, (B, T, h.W_V.shape[1])),
    ):
        _array(name, value, shape)
    return _head_backward(h, X_, cache, _array("dH", dH, (B, T, d)))


def _head_backward(
    head: HeadParams, X: F64Array, cache: HeadCache, dH: F64Array
) -> tuple[F64Array, dict[str, F64Array]]:
    O = cache.values @ head.W_O
    dA = np.einsum("btj,buj->btu", dH, O)
    dO = np.einsum("but,buj->btj", cache.A, dH)  # Aᵀ dH per sequence
    dW_O = np.einsum("btv,btj->vj", cache.values, dO)
    dV = dO @ head.W_O.T
    dW_V = np.einsum("bti,btv->iv", X, dV)
    dS = _softmax_rows_backward(cache.A, arr(dA))
    dX_scores, dM = _attention_scores_backward(X, cache.M, dS)
    dW_Q, dW_K, ds = _score_operator_backward(head, dM)
    grads = {"W_Q": dW_Q, "W_K": dW_K, "W_V": arr(dW_V), "W_O": arr(dW_O), "s": np.array(ds, dtype=np.float64)}
    return arr(dV @ head.W_V.T + dX_scores), grads


@finite_result("A", "dA")
def softmax_rows_backward(
    A: Float64[np.ndarray, "*batch m"], dA: Float64[np.ndarray, "*batch m"]
) -> Float64[np.ndarray, "*batch m"]:
    """``∂L/∂S = A ⊙ (dA − (A ⊙ dA)1)`` for ``A = softmax_row(S)`` (step BP.1)."""
    A_ = check_array("A", A, None)
    return _softmax_rows_backward(A_, _array("dA", dA, A_.shape))


def _softmax_rows_backward(A: F64Array, dA: F64Array) -> F64Array:
    return arr(A * (dA - np.sum(A * dA, axis=-1, keepdims=True)))


@finite_result("X", "M", "dS")
def attention_scores_backward(
    X: Float64[np.ndarray, "B T d"], M: Float64[np.ndarray, "d d"], dS: Float64[np.ndarray, "B T T"]
) -> tuple[Float64[np.ndarray, "B T d"], Float64[np.ndarray, "d d"]]:
    """``(∂L/∂X, ∂L/∂M)`` through ``S = X M Xᵀ``: ``dS X Mᵀ + dSᵀ X M`` and ``Σ_b X_bᵀ dS_b X_b`` (BP.2)."""
    X_ = check_array("X", X, 3)
    B, T, d = X_.shape
    return _attention_scores_backward(X_, _array("M", M, (d, d)), _array("dS", dS, (B, T, T)))


def _attention_scores_backward(X: F64Array, M: F64Array, dS: F64Array) -> tuple[F64Array, F64Array]:
    dX = dS @ X @ M.T + dS.transpose(0, 2, 1) @ X @ M
    dM = np.einsum("bti,btj->ij", X, dS @ X)
    return arr(dX), arr(dM)


@finite_result("head", "dM")
def score_operator_backward(
    head: HeadParams, dM: Float64[np.ndarray, "d d"]
) -> tuple[Float64[np.ndarray, "d d_k"], Float64[np.ndarray, "d d_k"], float]:
    """``(∂L/∂W_Q, ∂L/∂W_K, ∂L/∂s)`` from ``G = ∂L/∂M_h`` (step BP.3).

    With ``c = exp(−s)/√d_k``: ``∂L/∂W_Q = c G W_K``, ``∂L/∂W_K = c Gᵀ W_Q`` and, because
    ``∂M_h/∂s = −M_h``, ``∂L/∂s = −⟨G, M_h⟩_F``.
    """
    h = _check_head(head)
    d = h.W_Q.shape[0]
    return _score_operator_backward(h, _array("dM", dM, (d, d)))


def _score_operator_backward(head: HeadParams, dM: F64Array) -> tuple[F64Array, F64Array, float]:
    c = math.exp(-head.s) / math.sqrt(head.W_Q.shape[1])
    M = score_operator(head)
    return arr(c * (dM @ head.W_K)), arr(c * (dM.T @ head.W_Q)), -f64(np.sum(dM * M))


# ==================================================================================================
# Sublayer 1 backward: input embedding
# ==================================================================================================


@finite_result("x", "dX")
def layer_input_backward(
    x: Float64[np.ndarray, "B T d_in"], dX: Float64[np.ndarray, "B T d"]
) -> tuple[Float64[np.ndarray, "d_in d"], Float64[np.ndarray, "T d"]]:
    """``(∂L/∂W_in, ∂L/∂E_pos) = (Σ_{b,t} x_{bt}ᵀ dX_{bt}, Σ_b dX_b)``."""
    x_ = check_array("x", x, 3)
    B, T, _ = x_.shape
    return _layer_input_backward(x_, _array("dX", dX, (B, T, None)))


def _layer_input_backward(x: F64Array, dX: F64Array) -> tuple[F64Array, F64Array]:
    return arr(np.einsum("bti,btj->ij", x, dX)), arr(dX.sum(axis=0))


__all__ = [
    "attention_scores_backward",
    "backward",
    "cross_entropy_backward",
    "ddcl_block_backward",
    "head_backward",
    "layer_input_backward",
    "loss_and_gradients",
    "readout_backward",
    "score_operator_backward",
    "softmax_rows_backward",
]
