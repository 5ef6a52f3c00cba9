"""The DDCL-INCRT layer in PyTorch: the mirror of :mod:`reference.model`, name for name and in order.

    X = x W_in + E_pos                                   input embedding          (B×T×d)
    M_h = W_Q^h W_K^hᵀ / (τ_h √d_k),  τ_h = exp(s_h)     score operator of head h (d×d)
    A_h = softmax_row(X M_h Xᵀ)                          attention of head h      (B×T×T)
    U = Σ_h A_h X W_V^h W_O^h,  Y = X + U                attention sublayer       (B×T×d)
    D_tj = ‖y_t − p_j‖²,  Q = softmax(−D/T_P),  Z = Y + Q Pᵀ   DDCL block (replaces the FFN)
    z̄_b = mean_t Z_{b,t},  logits = z̄ W_c + b_c           mean-pool readout
    L = L_task + λ_q L_q(Y, P)                           cross-entropy + soft quantisation loss

The configuration object *is* the reference's (:class:`reference.model.LayerConfig`). Parameters are
tensors with the reference's ids, and their flat view has the reference's names (``heads.{id}.W_Q``, …;
:func:`accelerated.backward.flatten`), so comparing gradients with the reference is a dictionary
comparison. Device and dtype
are those of the parameters (CPU or CUDA, float64 or float32). Gradients come from autograd
(:mod:`accelerated.backward`).

What differs from the reference, on purpose: the heads are stored stacked (:class:`HeadStack`: one
tensor per head weight kind, ``W_Q`` H×d×d_k …, rows in id order, the ids alongside), and
:func:`forward` computes all active heads together (:func:`heads_forward` with
:func:`stacked_score_operators`, no Python loop over heads). A training step differentiates and updates
those five tensors, not one tensor per head; a birth appends a row and a prune deletes one (of the
weights and of the optimiser's moments, :mod:`accelerated.growth_phases`), leaving the other rows'
values as they were. ``params.heads[id]`` is a :class:`HeadParams` of views into the rows (what the
mirror's :func:`head_forward`, the flat names of :func:`accelerated.backward.flatten` and the
reference conversion read).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import Tensor

from accelerated.checks import SUPPORTED_DTYPES, check_device, check_dtype, check_tensor
from accelerated.ddcl import (
    free_energy,
    mean_entropy,
    ols_loss,
    prototype_variance,
    quantisation_loss,
    soft_assignments,
    squared_distances,
)
from reference._arrays import LOG_TEMPERATURE_MAX
from reference.model import LayerConfig
from reference.surgery import HEAD_PARAM_NAMES

# ==================================================================================================
# Configuration: reference.model.LayerConfig, re-exported (one configuration object for both engines)
# ==================================================================================================

# ==================================================================================================
# Parameters
# ==================================================================================================


def _check_head_fields(head: HeadParams | HeadStack, prefix: str, lead: int) -> None:
    """The five fields of one head (``lead = 0``) or of the stacked heads (``lead = 1``, a leading axis H):
    floating tensors of ``W_Q``'s dtype and device, ``W_K`` shaped as ``W_Q`` (…×d×d_k), ``W_V`` …×d×d_v,
    ``W_O`` …×d_v×d, ``s`` the leading axes only; an error names the field (``prefix`` + its name)."""
    W_Q = check_tensor(f"{prefix}W_Q", head.W_Q, 2 + lead)
    for name in ("W_K", "W_V", "W_O"):
        check_tensor(f"{prefix}{name}", getattr(head, name), 2 + lead, like=W_Q)
    check_tensor(f"{prefix}s", head.s, lead, like=W_Q)
    *H, d, d_k = W_Q.shape
    d_v = head.W_V.shape[-1]
    expected = {"W_K": (*H, d, d_k), "W_V": (*H, d, d_v), "W_O": (*H, d_v, d), "s": tuple(H)}
    for name, shape in expected.items():
        if tuple(getattr(head, name).shape) != shape:
            raise ValueError(f"{prefix}{name}: expected shape {shape}, got {tuple(getattr(head, name).shape)}")


@dataclass(frozen=True)
class HeadParams:
    """One attention head: ``W_Q, W_K`` (d×d_k), ``W_V`` (d×d_v), ``W_O`` (d_v×d), log-temperature ``s`` (0-d)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    s: Tensor

    def __post_init__(self) -> None:
        _check_head_fields(self, "", lead=0)

    @property
    def tau(self) -> float:
        """``τ_h = exp(s_h)``; a log-temperature whose exponential overflows float64 is refused naming ``s``."""
        s = float(self.s.detach())
        try:
            return math.exp(s)
        except OverflowError as exc:
            raise ValueError(
                f"s: a log-temperature of {s!r} has no float64 temperature exp(s) (|s| must be <= "
                f"{LOG_TEMPERATURE_MAX:.4f}); training diverged"
            ) from exc


@dataclass(frozen=True, eq=False)
class HeadStack(Mapping[int, HeadParams]):
    """The active heads, stacked: ``W_Q``, ``W_K`` H×d×d_k, ``W_V`` H×d×d_v, ``W_O`` H×d_v×d, ``s`` H, row
    ``i`` being head ``ids[i]`` (ids ascending). These five tensors are the parameters a step
    differentiates and updates. As a mapping it is ``{id: HeadParams}`` of views into the rows (no copy;
    gradients do not flow to the stacked tensors through a view taken after the forward)."""

    ids: tuple[int, ...]
    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    s: Tensor

    def __post_init__(self) -> None:
        _check_head_fields(self, "heads.", lead=1)
        ids = tuple(self.ids)
        if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 0 for h in ids) or list(ids) != sorted(
            set(ids)
        ):
            raise ValueError(f"heads.ids: expected distinct ascending non-negative integer ids, got {self.ids!r}")
        H = self.W_Q.shape[0]
        if H == 0:
            raise ValueError("heads: the layer needs at least one active head (SPEC §1: 𝓗 starts with one)")
        if len(ids) != H:
            raise ValueError(f"heads.ids: expected {H} ids (one per row), got {len(ids)}")
        object.__setattr__(self, "ids", ids)

    @staticmethod
    def of(heads: Mapping[int, HeadParams]) -> HeadStack:
        """The heads of ``heads`` stacked in id order (``torch.stack``: the graph reaches the given tensors)."""
        if not isinstance(heads, Mapping) or len(heads) == 0:
            raise ValueError("heads: expected a non-empty mapping of head ids to HeadParams")
        first = next(iter(heads.values()))
        for hid, head in heads.items():
            if not isinstance(head, HeadParams):
                raise TypeError(f"heads[{hid}]: expected HeadParams, got {type(head).__name__}")
            if head.W_Q.dtype != first.W_Q.dtype or head.W_Q.device != first.W_Q.device:  # stack would promote
                raise TypeError(
                    f"heads[{hid}]: dtype and device must be every head's ({first.W_Q.dtype} on {first.W_Q.device})"
                )
        ids = tuple(sorted(heads))
        return HeadStack(ids, *(torch.stack([getattr(heads[h], f) for h in ids]) for f in HEAD_PARAM_NAMES))

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(W_Q, W_K, W_V, W_O, s)``, in :data:`reference.surgery.HEAD_PARAM_NAMES` order."""
        return self.W_Q, self.W_K, self.W_V, self.W_O, self.s

    def map(self, fn: Callable[[str, Tensor], Tensor], ids: tuple[int, ...] | None = None) -> HeadStack:
        """Every stacked tensor replaced by ``fn(field, tensor)``, for the same ids or ``ids`` (a birth's or
        a prune's rows)."""
        tensors = (fn(f, t) for f, t in zip(HEAD_PARAM_NAMES, self.tensors(), strict=True))
        return HeadStack(self.ids if ids is None else ids, *tensors)

    def row(self, head_id: int) -> int:
        """The row of head ``head_id``."""
        try:
            return self.ids.index(head_id)
        except ValueError:
            raise KeyError(head_id) from None

    def __getitem__(self, head_id: int) -> HeadParams:
        i = self.row(head_id)
        return HeadParams(W_Q=self.W_Q[i], W_K=self.W_K[i], W_V=self.W_V[i], W_O=self.W_O[i], s=self.s[i])

    def __contains__(self, head_id: object) -> bool:
        return head_id in self.ids

    # identity, not Mapping's item-wise comparison (HeadParams of tensors has no truth value)
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class ModelParams:
    """All parameters of the layer for the active heads 𝓗 and prototypes 𝓚, with the reference's ids."""

    W_in: Tensor
    E_pos: Tensor
    heads: HeadStack
    next_head_id: int
    P: Tensor
    prototype_ids: tuple[int, ...]
    W_c: Tensor
    b_c: Tensor

    def __post_init__(self) -> None:
        W_in = check_tensor("W_in", self.W_in, 2)
        d = W_in.shape[1]
        for name, ndim in (("E_pos", 2), ("P", 2), ("W_c", 2), ("b_c", 1)):
            check_tensor(name, getattr(self, name), ndim, like=W_in)
        if self.E_pos.shape[1] != d or self.P.shape[0] != d or self.W_c.shape[0] != d:
            raise ValueError(f"E_pos, P, W_c: must have the model width d = {d} (W_in's columns)")
        if self.b_c.shape[0] != self.W_c.shape[1]:
            raise ValueError(f"b_c: expected {self.W_c.shape[1]} entries (W_c's classes), got {self.b_c.shape[0]}")
        if not isinstance(self.heads, HeadStack):
            raise TypeError(f"heads: expected accelerated.model.HeadStack, got {type(self.heads).__name__}")
        # (a HeadStack has at least one row, HeadStack refuses none: SPEC §1's 𝓗 starts with one head)
        for hid in self.heads.ids:
            if not 0 <= hid < self.next_head_id:
                raise ValueError(f"heads: head id {hid} must lie in [0, next_head_id = {self.next_head_id})")
        W_Q = self.heads.W_Q
        if W_Q.shape[1] != d or W_Q.dtype != W_in.dtype or W_Q.device != W_in.device:
            raise ValueError("heads: width, dtype and device must match W_in's")
        if len(self.prototype_ids) != self.P.shape[1] or len(set(self.prototype_ids)) != len(self.prototype_ids):
            raise ValueError(f"prototype_ids: expected {self.P.shape[1]} distinct ids, got {self.prototype_ids}")


def check_params(params: object, cfg: LayerConfig) -> ModelParams:
    """Raise unless ``params`` is a :class:`ModelParams` whose shapes agree with ``cfg``."""
    if not isinstance(params, ModelParams):
        raise TypeError(f"params: expected accelerated.model.ModelParams, got {type(params).__name__}")
    if not isinstance(cfg, LayerConfig):
        raise TypeError(f"cfg: expected reference.model.LayerConfig, got {type(cfg).__name__}")
    expected = {"W_in": (cfg.d_in, cfg.d), "E_pos": (cfg.seq_len, cfg.d), "W_c": (cfg.d, cfg.n_classes)}
    for name, shape in expected.items():
        if tuple(getattr(params, name).shape) != shape:
            raise ValueError(
                f"params.{name}: expected shape {shape} from cfg, got {tuple(getattr(params, name).shape)}"
            )
    if params.heads.W_Q.shape[2] != cfg.d_k or params.heads.W_V.shape[2] != cfg.d_v:
        raise ValueError(f"params.heads: expected d_k = {cfg.d_k}, d_v = {cfg.d_v} from cfg")
    if not 1 <= params.P.shape[1] <= cfg.K_max:
        raise ValueError(f"params.P: the active prototype count must lie in [1, cfg.K_max = {cfg.K_max}]")
    return params


def check_batch(cfg: LayerConfig, x: object, labels: object, like: Tensor) -> tuple[Tensor, Tensor]:
    """Raise unless ``x`` is a finite B×T×d_in tensor (B ≥ 1) of the parameters' dtype and device, with
    integer labels in [0, n_classes)."""
    x_ = check_tensor("x", x, 3, like=like)
    if x_.shape[0] == 0 or tuple(x_.shape[1:]) != (cfg.seq_len, cfg.d_in):
        raise ValueError(f"x: expected shape (B ≥ 1, {cfg.seq_len}, {cfg.d_in}), got {tuple(x_.shape)}")
    if not bool(torch.isfinite(x_).all()):
        raise ValueError("x: contains NaN or Inf")
    if not isinstance(labels, Tensor) or labels.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"labels: expected an integer torch.Tensor of class ids, got {type(labels).__name__}")
    if tuple(labels.shape) != (x_.shape[0],):
        raise ValueError(f"labels: expected shape ({x_.shape[0]},), got {tuple(labels.shape)}")
    if bool((labels < 0).any()) or bool((labels >= cfg.n_classes).any()):
        raise ValueError(f"labels: class ids must lie in [0, cfg.n_classes = {cfg.n_classes})")
    return x_, labels.to(device=x_.device)


def _check_init_args(cfg: object, generator: object, dtype: object, device: object) -> None:
    if not isinstance(cfg, LayerConfig):
        raise TypeError(f"cfg: expected reference.model.LayerConfig, got {type(cfg).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    check_dtype(dtype)
    check_device(device)


def init_head(cfg: LayerConfig, generator: torch.Generator, *, dtype: torch.dtype, device: torch.device) -> HeadParams:
    """A new head with variance-1/fan-in weights and ``s = cfg.s_init`` (as :func:`reference.model.init_head`)."""
    _check_init_args(cfg, generator, dtype, device)

    def normal(rows: int, cols: int, fan_in: int) -> Tensor:
        w = torch.randn(rows, cols, generator=generator, dtype=dtype, device=generator.device) / math.sqrt(fan_in)
        return w.to(device)

    return HeadParams(
        W_Q=normal(cfg.d, cfg.d_k, cfg.d),
        W_K=normal(cfg.d, cfg.d_k, cfg.d),
        W_V=normal(cfg.d, cfg.d_v, cfg.d),
        W_O=normal(cfg.d_v, cfg.d, cfg.d_v),
        s=torch.tensor(cfg.s_init, dtype=dtype, device=device),
    )


def init_params(
    cfg: LayerConfig, *, generator: torch.Generator, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> ModelParams:
    """Random parameters with ONE head (id 0) and ``K_max`` prototypes, drawn as the reference draws them
    (same distributions; a different generator, so not the same numbers)."""
    _check_init_args(cfg, generator, dtype, device)
    dev = torch.device(device)

    def normal(rows: int, cols: int, scale: float) -> Tensor:
        return (torch.randn(rows, cols, generator=generator, dtype=dtype, device=generator.device) * scale).to(dev)

    return ModelParams(
        W_in=normal(cfg.d_in, cfg.d, 1.0 / math.sqrt(cfg.d_in)),
        E_pos=normal(cfg.seq_len, cfg.d, 0.1),
        heads=HeadStack.of({0: init_head(cfg, generator, dtype=dtype, device=dev)}),
        next_head_id=1,
        P=normal(cfg.d, cfg.K_max, 1.0),
        prototype_ids=tuple(range(cfg.K_max)),
        W_c=normal(cfg.d, cfg.n_classes, 1.0 / math.sqrt(cfg.d)),
        b_c=torch.zeros(cfg.n_classes, dtype=dtype, device=dev),
    )


# ==================================================================================================
# Sublayer 1: input embedding  X = x W_in + E_pos
# ==================================================================================================


def layer_input(params: ModelParams, x: Tensor) -> Tensor:
    """``X = x W_in + E_pos`` (``E_pos`` broadcast over the batch)."""
    return x @ params.W_in + params.E_pos[None, :, :]


# ==================================================================================================
# Sublayer 2: attention heads  A_h = softmax_row(X M_h Xᵀ),  U = Σ_h A_h X W_V^h W_O^h
# ==================================================================================================


def score_operator(head: HeadParams) -> Tensor:
    """``M_h = W_Q W_Kᵀ / (τ_h √d_k)``, ``τ_h = exp(s_h)``."""
    return (head.W_Q @ head.W_K.T) * (torch.exp(-head.s) / math.sqrt(head.W_Q.shape[1]))


def softmax_rows(S: Tensor) -> Tensor:
    """Softmax over the last axis (``torch.softmax`` subtracts the row maximum)."""
    return torch.softmax(S, dim=-1)


def attention_scores(X: Tensor, M: Tensor) -> Tensor:
    """``S_b = X_b M X_bᵀ`` per sequence (a stack of heads when ``M`` is H×d×d and ``X`` is 1×B×T×d)."""
    return (X @ M) @ X.transpose(-1, -2)


@dataclass(frozen=True)
class HeadCache:
    """Intermediates of one head: ``M_h``, ``A_h``, ``V_h = X W_V^h`` and the output term ``A_h V_h W_O^h``."""

    M: Tensor
    A: Tensor
    values: Tensor
    out: Tensor


def head_output(A_h: Tensor, X: Tensor, W_V: Tensor, W_O: Tensor) -> Tensor:
    """``U_h = A_h X W_V^h W_O^h`` per sequence (broadcasts over a leading head axis)."""
    return A_h @ ((X @ W_V) @ W_O)


def head_forward(head: HeadParams, X: Tensor) -> HeadCache:
    """One head: ``A_h = softmax_row(X M_h Xᵀ)`` and its output term (the mirror; :func:`forward` uses
    :func:`heads_forward`)."""
    M = score_operator(head)
    A = softmax_rows(attention_scores(X, M))
    return HeadCache(M=M, A=A, values=X @ head.W_V, out=head_output(A, X, head.W_V, head.W_O))


def stacked_score_operators(params: ModelParams) -> Tensor:
    """``M_h`` of every active head (:func:`score_operator`), stacked H×d×d in id order."""
    h = params.heads
    return (h.W_Q @ h.W_K.transpose(1, 2)) * (torch.exp(-h.s) / math.sqrt(h.W_Q.shape[2]))[:, None, None]


def heads_forward(params: ModelParams, X: Tensor) -> dict[int, HeadCache]:
    """Every active head at once: each step of :func:`head_forward` runs as one batched matmul over H×B
    on the stacked weights (leading axis H, id order)."""
    W_V = params.heads.W_V[:, None]
    W_O = params.heads.W_O[:, None]
    M = stacked_score_operators(params)
    Xh = X[None]
    A = softmax_rows(attention_scores(Xh, M[:, None]))
    values = Xh @ W_V
    out = A @ (values @ W_O)
    return {hid: HeadCache(M=M[i], A=A[i], values=values[i], out=out[i]) for i, hid in enumerate(params.heads)}


# ==================================================================================================
# Sublayer 3: the DDCL block  D_tj = ‖y_t − p_j‖²,  Q = softmax(−D/T_P),  Z = Y + Q Pᵀ
# ==================================================================================================


def ddcl_block(Y: Tensor, P: Tensor, T_P: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(D, Q, Z)`` for tokens ``Y`` (flattened, n = B·T)."""
    D = squared_distances(Y, P)
    Q = soft_assignments(D, T_P)
    return D, Q, Y + Q @ P.T


# ==================================================================================================
# Sublayer 4: readout and task loss  z̄_b = mean_t Z_{b,t},  logits = z̄ W_c + b_c,  L_task = CE
# ==================================================================================================


def readout(Z: Tensor, W_c: Tensor, b_c: Tensor) -> tuple[Tensor, Tensor]:
    """Mean-pool over the sequence, then a linear classifier: ``(z̄, z̄ W_c + b_c)``."""
    z_bar = Z.mean(dim=1)
    return z_bar, z_bar @ W_c + b_c[None, :]


def log_softmax(logits: Tensor) -> Tensor:
    """Stabilised log-softmax per row."""
    return torch.log_softmax(logits, dim=1)


def cross_entropy(log_probs: Tensor, labels: Tensor) -> Tensor:
    """``L_task = −(1/B) Σ_b log p_b[label_b]``."""
    return -log_probs.gather(1, labels[:, None]).mean()


# ==================================================================================================
# The model: forward with every intermediate kept
# ==================================================================================================


@dataclass(frozen=True)
class ForwardCache:
    """Everything :func:`forward` computed, as :class:`reference.model.ForwardCache` (losses are 0-d tensors)."""

    x: Tensor
    labels: Tensor
    X: Tensor
    heads: Mapping[int, HeadCache]
    U: Tensor
    Y: Tensor
    D: Tensor
    Q: Tensor
    Z: Tensor
    z_bar: Tensor
    logits: Tensor
    log_probs: Tensor
    L: Tensor
    L_task: Tensor
    L_q: Tensor
    L_OLS: Tensor
    V: Tensor
    F: Tensor
    H_bar: Tensor
    T_P: float

    def tokens(self) -> Tensor:
        """``Y`` flattened to n×d."""
        return self.Y.reshape(-1, self.Y.shape[-1])


def forward(
    params: ModelParams, cfg: LayerConfig, x: Tensor, labels: Tensor, *, check_inputs: bool = True
) -> ForwardCache:
    """The whole layer and its loss ``L = L_task + λ_q L_q(Y, P)``, keeping every intermediate.

    ``L_OLS``, ``V``, ``F`` and ``H̄`` are reported only and computed without building a graph.
    ``check_inputs=False`` skips :func:`check_batch`, whose finiteness and label-range tests read
    values back from the device: only for batches drawn from an already validated dataset (the
    trainer's steps), so that a step does not synchronise with the host."""
    check_params(params, cfg)
    x_, labels_ = check_batch(cfg, x, labels, like=params.W_in) if check_inputs else (x, labels)
    X = layer_input(params, x_)
    heads = heads_forward(params, X)
    U = torch.stack([hc.out for hc in heads.values()]).sum(dim=0)
    Y = X + U
    B, T, d = Y.shape
    Y_flat = Y.reshape(B * T, d)
    D, Q, Z_flat = ddcl_block(Y_flat, params.P, cfg.T_P)
    Z = Z_flat.reshape(B, T, d)
    z_bar, logits = readout(Z, params.W_c, params.b_c)
    log_probs = log_softmax(logits)
    L_task = cross_entropy(log_probs, labels_)
    L_q = quantisation_loss(Y_flat, params.P, Q)
    with torch.no_grad():
        L_OLS, V = ols_loss(Y_flat, params.P, Q), prototype_variance(params.P, Q)
        F, H_bar = free_energy(Y_flat, params.P, cfg.T_P), mean_entropy(Q)
        if check_inputs:
            # Finite inputs and parameters can still overflow the dtype (float32 from |coordinate| ≳ 1e18,
            # docs/tolerances.md "Trustworthy ranges"); with the checks on, that is refused, not returned.
            L_check = torch.stack([L_task.detach(), L_q.detach(), L_OLS, V, F, H_bar])
            if not bool(torch.isfinite(L_check).all()) or not bool(torch.isfinite(Z).all()):
                raise FloatingPointError(
                    f"forward: the result overflowed {params.W_in.dtype} for these x and params (finite inputs "
                    "outside the trustworthy range, or a diverged run); see docs/tolerances.md"
                )
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
        L=L_task + cfg.lambda_q * L_q,
        L_task=L_task,
        L_q=L_q,
        L_OLS=L_OLS,
        V=V,
        F=F,
        H_bar=H_bar,
        T_P=cfg.T_P,
    )


__all__ = [
    "SUPPORTED_DTYPES",
    "ForwardCache",
    "HeadCache",
    "HeadParams",
    "HeadStack",
    "LayerConfig",
    "ModelParams",
    "attention_scores",
    "check_batch",
    "check_device",
    "check_dtype",
    "check_params",
    "check_tensor",
    "cross_entropy",
    "ddcl_block",
    "forward",
    "head_forward",
    "head_output",
    "heads_forward",
    "init_head",
    "init_params",
    "layer_input",
    "log_softmax",
    "readout",
    "score_operator",
    "softmax_rows",
    "stacked_score_operators",
]
