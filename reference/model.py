"""The DDCL-INCRT layer in plain NumPy (float64): config → parameters → sublayers → model.

Read top to bottom in the paper's order (SPEC §1):

    X = x W_in + E_pos                                   input embedding          (B×T×d)
    M_h = W_Q^h W_K^hᵀ / (τ_h √d_k),  τ_h = exp(s_h)     score operator of head h (d×d)
    A_h = softmax_row(X M_h Xᵀ)                          attention of head h      (B×T×T)
    U = Σ_h A_h X W_V^h W_O^h,  Y = X + U                attention sublayer       (B×T×d)
    D_tj = ‖y_t − p_j‖²,  Q = softmax(−D/T_P),  Z = Y + Q Pᵀ   DDCL block (replaces the FFN)
    z̄_b = mean_t Z_{b,t},  logits = z̄ W_c + b_c           mean-pool readout
    L = L_task + λ_q L_q(Y, P)                           cross-entropy + soft quantisation loss

This file is the forward maths only, the mirror target of ``accelerated/model.py`` (same names, same
order): configuration → parameters → sublayers → :func:`forward` and the loss. The hand-derived
backward is :mod:`reference.backward` (in reverse order, steps BP.*); growing, pruning and flattening
the parameter set is :mod:`reference.surgery`.

Validation happens at the boundary: the constructors (:class:`LayerConfig`, :class:`HeadParams`,
:class:`ModelParams`), :func:`forward` and every public sublayer function check their inputs and raise
errors that name the argument; a result that overflows float64 from finite inputs is refused
(``FloatingPointError`` naming the inputs, :func:`reference._arrays.finite_result`).

There is no LayerNorm in v1 (SPEC §1): the layer is exactly the equations above.

Heads and prototypes carry stable integer ids that are never reused, so that growth/prune events,
optimiser state and reports can name them across the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from jaxtyping import Float64, Int

from reference._arrays import (
    F64Array,
    arr,
    check_array,
    check_count,
    check_dim,
    check_log_temperature,
    check_overflow,
    check_real,
    check_rng,
    check_temperature,
    f64,
    finite_result,
)
from reference.ddcl import (
    free_energy,
    mean_entropy,
    ols_loss,
    prototype_variance,
    quantisation_loss,
    soft_assignments,
    squared_distances,
)

# ==================================================================================================
# Configuration
# ==================================================================================================


@dataclass(frozen=True)
class LayerConfig:
    """Sizes and fixed hyper-parameters of one DDCL-INCRT layer (SPEC §1 names).

    ``T_P`` is fixed here; an annealing schedule replaces the config (``dataclasses.replace(cfg,
    T_P=...)``) between steps.
    """

    d_in: int  # input width of the tokens x
    d: int  # model width
    d_k: int  # key width of every head
    d_v: int  # value width of every head
    seq_len: int  # the paper's T (not called T, so that it cannot be confused with the temperature T_P)
    K_max: int  # initial prototype count; the active count K only shrinks (SPEC §3.5)
    n_classes: int  # classes of the readout (≥ 2: one class would make the cross-entropy identically 0)
    T_P: float  # DDCL assignment temperature > 0 (the DDCL paper's T)
    lambda_q: float  # weight of L_q in L = L_task + λ_q L_q (≥ 0; 0 switches L_q off)
    s_init: float = 0.0  # log-temperature of every new head: τ_h = exp(s_init); 0 gives the 1/√d_k scaling

    def __post_init__(self) -> None:
        for name in ("d_in", "d", "d_k", "d_v", "seq_len", "K_max"):
            check_count(f"LayerConfig.{name}", getattr(self, name), 1)
        # One class makes the cross-entropy identically zero: no task to learn.
        check_count("LayerConfig.n_classes", self.n_classes, 2)
        check_temperature("LayerConfig.T_P", self.T_P)
        lam = check_real("LayerConfig.lambda_q", self.lambda_q)
        if lam < 0.0:
            raise ValueError(f"LayerConfig.lambda_q: must be >= 0 (0 switches L_q off), got {lam!r}")
        check_log_temperature("LayerConfig.s_init", self.s_init)


# ==================================================================================================
# Parameters
# ==================================================================================================


def _frozen_copy(name: str, value: object, ndim: int) -> F64Array:
    """Validate, copy and mark read-only: parameters are values, never mutated in place."""
    out = check_array(name, value, ndim).copy()
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class HeadParams:
    """One attention head: ``W_Q, W_K`` (d×d_k), ``W_V`` (d×d_v), ``W_O`` (d_v×d), log-temperature ``s``.

    ``τ_h = exp(s)`` is parametrised through its log so that gradient steps keep it positive.
    """

    W_Q: Float64[np.ndarray, "d d_k"]
    W_K: Float64[np.ndarray, "d d_k"]
    W_V: Float64[np.ndarray, "d d_v"]
    W_O: Float64[np.ndarray, "d_v d"]
    s: float

    def __post_init__(self) -> None:
        W_Q = _frozen_copy("W_Q", self.W_Q, 2)
        W_K = _frozen_copy("W_K", self.W_K, 2)
        W_V = _frozen_copy("W_V", self.W_V, 2)
        W_O = _frozen_copy("W_O", self.W_O, 2)
        d, d_k = W_Q.shape
        if W_K.shape != (d, d_k):
            raise ValueError(f"W_K: expected shape {(d, d_k)} (the shape of W_Q), got {W_K.shape}")
        check_dim("W_V", W_V, 0, d, "W_Q's model width d")
        check_dim("W_O", W_O, 0, W_V.shape[1], "W_V's value width d_v")
        check_dim("W_O", W_O, 1, d, "W_Q's model width d")
        object.__setattr__(self, "W_Q", W_Q)
        object.__setattr__(self, "W_K", W_K)
        object.__setattr__(self, "W_V", W_V)
        object.__setattr__(self, "W_O", W_O)
        object.__setattr__(self, "s", check_log_temperature("s", self.s))

    @property
    def tau(self) -> float:
        """``τ_h = exp(s_h)``."""
        return math.exp(self.s)


@dataclass(frozen=True)
class ModelParams:
    """All parameters of the layer, for the active heads 𝓗 and active prototypes 𝓚 only.

    ``heads`` maps a stable head id to its parameters; ``next_head_id`` is the id the next grown head
    gets (ids are never reused, even after a prune). ``prototype_ids[j]`` is the stable id of column
    ``j`` of ``P``. Arrays are stored as read-only copies; the mapping is read-only too.
    """

    W_in: Float64[np.ndarray, "d_in d"]
    E_pos: Float64[np.ndarray, "T d"]
    heads: Mapping[int, HeadParams]
    next_head_id: int
    P: Float64[np.ndarray, "d K"]
    prototype_ids: tuple[int, ...]
    W_c: Float64[np.ndarray, "d n_classes"]
    b_c: Float64[np.ndarray, " n_classes"]

    def __post_init__(self) -> None:
        W_in = _frozen_copy("W_in", self.W_in, 2)
        d = W_in.shape[1]
        E_pos = _frozen_copy("E_pos", self.E_pos, 2)
        check_dim("E_pos", E_pos, 1, d, "W_in's model width d")
        if not isinstance(self.heads, Mapping):
            raise TypeError(f"heads: expected a mapping head id -> HeadParams, got {type(self.heads).__name__}")
        if len(self.heads) == 0:
            raise ValueError("heads: the layer needs at least one active head (SPEC §1: 𝓗 starts with one)")
        next_id = check_count("next_head_id", self.next_head_id, 1)
        heads: dict[int, HeadParams] = {}
        for key in sorted(self.heads):
            hid = check_count("heads (a head id)", key, 0)
            if hid >= next_id:
                raise ValueError(f"heads: head id {hid} must be < next_head_id = {next_id} (ids are never reused)")
            head = self.heads[key]
            if not isinstance(head, HeadParams):
                raise TypeError(f"heads[{hid}]: expected HeadParams, got {type(head).__name__}")
            check_dim(f"heads[{hid}].W_Q", head.W_Q, 0, d, "W_in's model width d")
            heads[hid] = head
        P = _frozen_copy("P", self.P, 2)
        check_dim("P", P, 0, d, "W_in's model width d")
        ids = tuple(self.prototype_ids)
        if len(ids) != P.shape[1]:
            raise ValueError(f"prototype_ids: expected {P.shape[1]} ids (one per column of P), got {len(ids)}")
        for pid in ids:
            check_count("prototype_ids (an id)", pid, 0)
        if len(set(ids)) != len(ids):
            raise ValueError(f"prototype_ids: ids must be distinct, got {ids}")
        W_c = _frozen_copy("W_c", self.W_c, 2)
        check_dim("W_c", W_c, 0, d, "W_in's model width d")
        b_c = _frozen_copy("b_c", self.b_c, 1)
        check_dim("b_c", b_c, 0, W_c.shape[1], "W_c's class count n_classes")
        object.__setattr__(self, "W_in", W_in)
        object.__setattr__(self, "E_pos", E_pos)
        object.__setattr__(self, "heads", MappingProxyType(heads))
        object.__setattr__(self, "next_head_id", next_id)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "prototype_ids", tuple(int(i) for i in ids))
        object.__setattr__(self, "W_c", W_c)
        object.__setattr__(self, "b_c", b_c)


def check_params(params: object, cfg: LayerConfig) -> ModelParams:
    """Raise unless ``params`` is a :class:`ModelParams` whose shapes agree with ``cfg``."""
    if not isinstance(params, ModelParams):
        raise TypeError(f"params: expected ModelParams, got {type(params).__name__}")
    if not isinstance(cfg, LayerConfig):
        raise TypeError(f"cfg: expected LayerConfig, got {type(cfg).__name__}")
    check_dim("params.W_in", params.W_in, 0, cfg.d_in, "cfg.d_in")
    check_dim("params.W_in", params.W_in, 1, cfg.d, "cfg.d")
    check_dim("params.E_pos", params.E_pos, 0, cfg.seq_len, "cfg.seq_len (the paper's T)")
    for hid, head in params.heads.items():
        check_dim(f"params.heads[{hid}].W_Q", head.W_Q, 1, cfg.d_k, "cfg.d_k")
        check_dim(f"params.heads[{hid}].W_V", head.W_V, 1, cfg.d_v, "cfg.d_v")
    K = params.P.shape[1]
    if not 1 <= K <= cfg.K_max:
        raise ValueError(f"params.P: the active prototype count K must lie in [1, cfg.K_max = {cfg.K_max}], got {K}")
    check_dim("params.W_c", params.W_c, 1, cfg.n_classes, "cfg.n_classes")
    return params


def check_batch(
    cfg: LayerConfig, x: object, labels: object
) -> tuple[Float64[np.ndarray, "B T d_in"], Int[np.ndarray, " B"]]:
    """Raise unless ``x`` is a finite float64 B×T×d_in batch (B ≥ 1) with integer labels in [0, n_classes)."""
    x_ = check_array("x", x, 3)  # also rejects the empty batch B = 0
    check_dim("x", x_, 1, cfg.seq_len, "cfg.seq_len (the paper's T)")
    check_dim("x", x_, 2, cfg.d_in, "cfg.d_in")
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels: expected a numpy.ndarray of integer class ids, got {type(labels).__name__}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels: expected an integer dtype (class ids), got {labels.dtype}")
    if labels.shape != (x_.shape[0],):
        raise ValueError(f"labels: expected shape ({x_.shape[0]},) (one label per sequence of x), got {labels.shape}")
    if np.any(labels < 0) or np.any(labels >= cfg.n_classes):
        bad = labels[(labels < 0) | (labels >= cfg.n_classes)]
        raise ValueError(f"labels: class ids must lie in [0, cfg.n_classes = {cfg.n_classes}), got {bad.tolist()}")
    return x_, labels


# --------------------------------------------------------------------------------------------------
# Initialisation (growth and pruning of the parameter set: reference.surgery)
# --------------------------------------------------------------------------------------------------


def init_head(cfg: LayerConfig, rng: np.random.Generator) -> HeadParams:
    """A new head with variance-1/fan-in weights and ``s = cfg.s_init`` (used at init and at every birth)."""
    # Variance 1/fan_in keeps X W_Q, X W_K, X W_V and the head output O(1) when X is O(1).
    return HeadParams(
        W_Q=arr(rng.standard_normal((cfg.d, cfg.d_k)) / math.sqrt(cfg.d)),
        W_K=arr(rng.standard_normal((cfg.d, cfg.d_k)) / math.sqrt(cfg.d)),
        W_V=arr(rng.standard_normal((cfg.d, cfg.d_v)) / math.sqrt(cfg.d)),
        W_O=arr(rng.standard_normal((cfg.d_v, cfg.d)) / math.sqrt(cfg.d_v)),
        s=cfg.s_init,
    )


def init_params(cfg: LayerConfig, *, rng: np.random.Generator) -> ModelParams:
    """Random parameters with ONE head (id 0) and ``K_max`` prototypes (ids 0..K_max−1).

    Prototypes are drawn at the scale of the tokens (unit variance per coordinate) so that soft
    assignments start neither collapsed nor hard; ``b_c`` starts at zero.
    """
    gen = check_rng(rng)
    W_in = arr(gen.standard_normal((cfg.d_in, cfg.d)) / math.sqrt(cfg.d_in))
    E_pos = arr(0.1 * gen.standard_normal((cfg.seq_len, cfg.d)))  # small: position is a perturbation
    head = init_head(cfg, gen)
    P = arr(gen.standard_normal((cfg.d, cfg.K_max)))
    W_c = arr(gen.standard_normal((cfg.d, cfg.n_classes)) / math.sqrt(cfg.d))
    return ModelParams(
        W_in=W_in,
        E_pos=E_pos,
        heads={0: head},
        next_head_id=1,
        P=P,
        prototype_ids=tuple(range(cfg.K_max)),
        W_c=W_c,
        b_c=np.zeros(cfg.n_classes),
    )


# ==================================================================================================
# Sublayer 1: input embedding  X = x W_in + E_pos
# ==================================================================================================


@finite_result("params", "x")
def layer_input(params: ModelParams, x: Float64[np.ndarray, "B T d_in"]) -> Float64[np.ndarray, "B T d"]:
    """``X = x W_in + E_pos`` (``E_pos`` broadcast over the batch): the layer input INCRT probes."""
    p = _check_model_params(params)
    x_ = check_array("x", x, 3)
    check_dim("x", x_, 1, p.E_pos.shape[0], "params.E_pos's sequence length T")
    check_dim("x", x_, 2, p.W_in.shape[0], "params.W_in's input width d_in")
    return arr(x_ @ p.W_in + p.E_pos[None, :, :])


def _check_model_params(params: object) -> ModelParams:
    if not isinstance(params, ModelParams):
        raise TypeError(f"params: expected ModelParams, got {type(params).__name__}")
    return params


def _check_head(head: object) -> HeadParams:
    if not isinstance(head, HeadParams):
        raise TypeError(f"head: expected HeadParams, got {type(head).__name__}")
    return head


# ==================================================================================================
# Sublayer 2: attention heads  A_h = softmax_row(X M_h Xᵀ),  U = Σ_h A_h X W_V^h W_O^h
# ==================================================================================================


@finite_result("head (its weights W_Q, W_K and log-temperature s)")
def score_operator(head: HeadParams) -> Float64[np.ndarray, "d d"]:
    """``M_h = W_Q W_Kᵀ / (τ_h √d_k)``, ``τ_h = exp(s_h)``: the head's effective bilinear score operator."""
    h = _check_head(head)
    d_k = h.W_Q.shape[1]
    return arr((h.W_Q @ h.W_K.T) * (math.exp(-h.s) / math.sqrt(d_k)))


def softmax_rows(S: Float64[np.ndarray, "*batch m"]) -> Float64[np.ndarray, "*batch m"]:
    """Softmax over the last axis, stabilised by subtracting each row's maximum (finite for finite ``S``)."""
    S_ = check_array("S", S, None)
    E = np.exp(S_ - S_.max(axis=-1, keepdims=True))
    return arr(E / E.sum(axis=-1, keepdims=True))


@finite_result("X", "M")
def attention_scores(X: Float64[np.ndarray, "B T d"], M: Float64[np.ndarray, "d d"]) -> Float64[np.ndarray, "B T T"]:
    """``S_b = X_b M X_bᵀ`` per sequence (the pre-softmax scores of one head)."""
    X_ = check_array("X", X, 3)
    M_ = check_array("M", M, 2)
    check_dim("M", M_, 0, X_.shape[2], "X's model width d")
    check_dim("M", M_, 1, X_.shape[2], "X's model width d")
    return arr((X_ @ M_) @ X_.transpose(0, 2, 1))


@dataclass(frozen=True)
class HeadCache:
    """Intermediates of one head: ``M_h``, ``A_h``, ``V_h = X W_V^h`` and the output term ``A_h V_h W_O^h``."""

    M: Float64[np.ndarray, "d d"]
    A: Float64[np.ndarray, "B T T"]
    values: Float64[np.ndarray, "B T d_v"]
    out: Float64[np.ndarray, "B T d"]


def head_output(
    A_h: Float64[np.ndarray, "B T T"],
    X: Float64[np.ndarray, "B T d"],
    W_V: Float64[np.ndarray, "d d_v"],
    W_O: Float64[np.ndarray, "d_v d"],
) -> Float64[np.ndarray, "B T d"]:
    """``U_h = A_h X W_V^h W_O^h`` per sequence: the head's term of ``U``, exactly what pruning head ``h``
    removes from ``Y`` (claim G5)."""
    X_ = check_array("X", X, 3)
    A_ = check_array("A_h", A_h, 3)
    W_V_ = check_array("W_V", W_V, 2)
    W_O_ = check_array("W_O", W_O, 2)
    B, T, d = X_.shape
    if A_.shape != (B, T, T):
        raise ValueError(f"A_h: expected shape {(B, T, T)} (X's batch and sequence length), got {A_.shape}")
    check_dim("W_V", W_V_, 0, d, "X's model width d")
    check_dim("W_O", W_O_, 0, W_V_.shape[1], "W_V's value width d_v")
    return arr(A_ @ ((X_ @ W_V_) @ W_O_))


@finite_result("head", "X")
def head_forward(head: HeadParams, X: Float64[np.ndarray, "B T d"]) -> HeadCache:
    """One head: ``A_h = softmax_row(X M_h Xᵀ)`` and its output term :func:`head_output`."""
    M = score_operator(head)
    A = softmax_rows(attention_scores(X, M))
    values = check_overflow("head_forward", arr(X @ head.W_V), "head, X")
    return HeadCache(M=M, A=A, values=values, out=head_output(A, X, head.W_V, head.W_O))


# ==================================================================================================
# Sublayer 3: the DDCL block  D_tj = ‖y_t − p_j‖²,  Q = softmax(−D/T_P),  Z = Y + Q Pᵀ
# ==================================================================================================


@finite_result("Y", "P", "T_P")
def ddcl_block(
    Y: Float64[np.ndarray, "n d"], P: Float64[np.ndarray, "d K"], T_P: float
) -> tuple[Float64[np.ndarray, "n K"], Float64[np.ndarray, "n K"], Float64[np.ndarray, "n d"]]:
    """``(D, Q, Z)`` for tokens ``Y`` (flattened, n = B·T): the prototype mixture replaces the FFN."""
    D = squared_distances(Y, P)  # validates Y and P
    Q = soft_assignments(D, T_P)
    return D, Q, arr(Y + Q @ P.T)


# ==================================================================================================
# Sublayer 4: readout and task loss  z̄_b = mean_t Z_{b,t},  logits = z̄ W_c + b_c,  L_task = CE
# ==================================================================================================


@finite_result("Z", "W_c", "b_c")
def readout(
    Z: Float64[np.ndarray, "B T d"], W_c: Float64[np.ndarray, "d n_classes"], b_c: Float64[np.ndarray, " n_classes"]
) -> tuple[Float64[np.ndarray, "B d"], Float64[np.ndarray, "B n_classes"]]:
    """Mean-pool over the sequence, then a linear classifier: ``(z̄, z̄ W_c + b_c)``."""
    Z_ = check_array("Z", Z, 3)
    W_c_ = check_array("W_c", W_c, 2)
    b_c_ = check_array("b_c", b_c, 1)
    check_dim("W_c", W_c_, 0, Z_.shape[2], "Z's model width d")
    check_dim("b_c", b_c_, 0, W_c_.shape[1], "W_c's class count n_classes")
    z_bar = Z_.mean(axis=1)
    return arr(z_bar), arr(z_bar @ W_c_ + b_c_[None, :])


def log_softmax(logits: Float64[np.ndarray, "B n_classes"]) -> Float64[np.ndarray, "B n_classes"]:
    """``ℓ − max ℓ − log Σ exp(ℓ − max ℓ)`` per row (stabilised log-sum-exp)."""
    logits = check_array("logits", logits, 2)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return arr(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def cross_entropy(log_probs: Float64[np.ndarray, "B n_classes"], labels: Int[np.ndarray, " B"]) -> float:
    """``L_task = −(1/B) Σ_b log p_b[label_b]`` (mean over the batch).

    ``labels`` must hold one class id in ``[0, n_classes)`` per row of ``log_probs``: NumPy indexing
    would wrap a label −1 to the last class, and a short label array would average only its rows."""
    B, n_classes = check_array("log_probs", log_probs, 2).shape
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels: expected an integer numpy.ndarray, got {type(labels).__name__}")
    if labels.shape != (B,):
        raise ValueError(f"labels: expected shape ({B},), one per row of log_probs, got {labels.shape}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels: class ids must lie in [0, {n_classes}), got min {labels.min()}, max {labels.max()}")
    return -f64(np.mean(log_probs[np.arange(B), labels]))


# ==================================================================================================
# The model: forward with every intermediate kept (the backward: reference.backward)
# ==================================================================================================


@dataclass(frozen=True)
class ForwardCache:
    """Everything :func:`forward` computed, in order, plus the loss decomposition.

    ``L = L_task + λ_q L_q`` is the training objective. ``L_OLS``, ``V`` (prototype variance, not a
    value matrix), ``F`` and ``H_bar`` are reported only (claims D1, D2: ``L_q = L_OLS + V = F + T_P·H̄``).
    ``D``, ``Q`` are over the ``n = B·T`` flattened tokens, row ``b·T + t``.
    """

    x: Float64[np.ndarray, "B T d_in"]
    labels: Int[np.ndarray, " B"]
    X: Float64[np.ndarray, "B T d"]
    heads: Mapping[int, HeadCache]
    U: Float64[np.ndarray, "B T d"]
    Y: Float64[np.ndarray, "B T d"]
    D: Float64[np.ndarray, "n K"]
    Q: Float64[np.ndarray, "n K"]
    Z: Float64[np.ndarray, "B T d"]
    z_bar: Float64[np.ndarray, "B d"]
    logits: Float64[np.ndarray, "B n_classes"]
    log_probs: Float64[np.ndarray, "B n_classes"]
    L: float
    L_task: float
    L_q: float
    L_OLS: float
    V: float
    F: float
    H_bar: float
    T_P: float  # the temperature used, so that backward() can refuse a cache from another config

    def tokens(self) -> Float64[np.ndarray, "n d"]:
        """``Y`` flattened to n×d (the DDCL block's view of the tokens)."""
        return arr(self.Y.reshape(-1, self.Y.shape[-1]))


def forward(
    params: ModelParams, cfg: LayerConfig, x: Float64[np.ndarray, "B T d_in"], labels: Int[np.ndarray, " B"]
) -> ForwardCache:
    """The whole layer and its loss ``L = L_task + λ_q L_q(Y, P)``, keeping every intermediate.

    A float64 overflow anywhere inside (huge inputs or parameters: a diverged run) is refused as one
    ``FloatingPointError`` naming ``x`` and ``params``, with the inner step's message attached.
    """
    check_params(params, cfg)
    x_, labels_ = check_batch(cfg, x, labels)
    try:
        return _forward(params, cfg, x_, labels_)
    except FloatingPointError as exc:
        raise FloatingPointError(
            f"forward: float64 overflowed inside the layer for these x and params (a diverged run, or inputs "
            f"beyond the trustworthy range): {exc}"
        ) from None


def _forward(params: ModelParams, cfg: LayerConfig, x_: F64Array, labels_: np.ndarray) -> ForwardCache:
    """:func:`forward` on checked inputs; every step refuses a result that overflowed."""
    X = layer_input(params, x_)
    heads = {hid: head_forward(head, X) for hid, head in params.heads.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        U = arr(sum((hc.out for hc in heads.values()), start=np.zeros_like(X)))
        Y = check_overflow("forward (Y = X + U)", arr(X + U), "x, params")
    B, T, d = Y.shape
    Y_flat = arr(Y.reshape(B * T, d))
    D, Q, Z_flat = ddcl_block(Y_flat, params.P, cfg.T_P)
    Z = arr(Z_flat.reshape(B, T, d))
    z_bar, logits = readout(Z, params.W_c, params.b_c)
    log_probs = log_softmax(logits)
    L_task = cross_entropy(log_probs, labels_)
    L_q = quantisation_loss(Y_flat, params.P, Q)
    L = check_overflow("forward (L = L_task + λ_q L_q)", L_task + cfg.lambda_q * L_q, "x, params, cfg.lambda_q")
    return ForwardCache(
        x=x_,
        labels=labels_,
        X=X,
        heads=MappingProxyType(heads),
        U=U,
        Y=Y,
        D=D,
        Q=Q,
        Z=Z,
        z_bar=z_bar,
        logits=logits,
        log_probs=log_probs,
        L=L,
        L_task=L_task,
        L_q=L_q,
        L_OLS=ols_loss(Y_flat, params.P, Q),
        V=prototype_variance(params.P, Q),
        F=free_energy(Y_flat, params.P, cfg.T_P),
        H_bar=mean_entropy(Q),
        T_P=cfg.T_P,
    )


__all__ = [
    "ForwardCache",
    "HeadCache",
    "HeadParams",
    "LayerConfig",
    "ModelParams",
    "attention_scores",
    "check_batch",
    "check_params",
    "cross_entropy",
    "ddcl_block",
    "forward",
    "head_forward",
    "head_output",
    "init_head",
    "init_params",
    "layer_input",
    "log_softmax",
    "readout",
    "score_operator",
    "softmax_rows",
]
