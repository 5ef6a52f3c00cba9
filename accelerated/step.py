"""The training step's hot path: the loss from stacked head weights, optionally ``torch.compile``d.

:func:`accelerated.model.forward` is the mirror of the reference (every intermediate kept, inputs
checked); this module is what a step runs. Same mathematics, arranged for speed:

* the heads are stacked (``stack_heads``) and the scores are formed as
  ``(X W_Q exp(−s)/√d_k)(X W_K)ᵀ`` — associativity of ``X (W_Q W_Kᵀ/(τ√d_k)) Xᵀ``, with ``2·d·d_k``
  instead of ``d²`` work per token and the ``T×T`` product over ``d_k`` instead of ``d``; the three
  projections of all heads are one matmul and the attention is
  ``torch.nn.functional.scaled_dot_product_attention`` (a fused softmax(q kᵀ) v);
* distances use the difference form ``Σ_i (y_ti − p_ij)²`` (exact up to rounding of the squares, as
  the reference; the expanded form ``‖y‖² + ‖p‖² − 2yᵀp`` cancels and is not used);
* only ``L``, ``L_task`` and ``L_q`` build a graph; ``L_OLS``, ``V``, ``F`` and ``H̄`` are computed
  from the returned ``Y`` and ``Q`` without one (:func:`reported_terms`), and only where recorded.

:class:`StepFunction` wraps the loss in ``torch.compile`` with dynamic shapes, so heads coming and
going (the leading axis ``H``) and prototypes being pruned (``K``) reuse one graph instead of
recompiling at each change (the ``0/1`` specialisation of dynamic shapes costs one more graph for a
single head, and dimensions that happen to be equal at the first compilation — dynamo's duck
sizing, e.g. ``K = T`` — cost one more graph when they part); eager is the fallback when
compilation fails, and the failure is kept, not hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from accelerated.ddcl import free_energy, mean_entropy, ols_loss, prototype_variance
from accelerated.model import ModelParams


@dataclass(frozen=True)
class StackedHeads:
    """The active heads' weights stacked in id order: ``W_Q``, ``W_K`` H×d×d_k, ``W_V`` H×d×d_v,
    ``W_O`` H×d_v×d, ``s`` H (built from the heads' own leaf tensors, so gradients reach them)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    s: Tensor


def stack_heads(params: ModelParams) -> StackedHeads:
    heads = list(params.heads.values())
    return StackedHeads(
        W_Q=torch.stack([h.W_Q for h in heads]),
        W_K=torch.stack([h.W_K for h in heads]),
        W_V=torch.stack([h.W_V for h in heads]),
        W_O=torch.stack([h.W_O for h in heads]),
        s=torch.stack([h.s for h in heads]),
    )


def stacked_loss(
    W_in: Tensor,
    E_pos: Tensor,
    W_Q: Tensor,
    W_K: Tensor,
    W_V: Tensor,
    W_O: Tensor,
    s: Tensor,
    P: Tensor,
    W_c: Tensor,
    b_c: Tensor,
    x: Tensor,
    labels: Tensor,
    T_P: float,
    lambda_q: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(L, L_task, L_q, Y, Q)`` of the layer (``Y`` flattened to n×d), all heads at once."""
    X = x @ W_in + E_pos[None]
    B, T, d = X.shape
    H, _, d_k = W_Q.shape
    d_v = W_V.shape[-1]
    # The per-head scale exp(−s_h)/√d_k folded into W_Q, then one projection for q, k, v of all heads
    # (d × H(2d_k + d_v)), one fused attention, one output projection (H·d_v × d).
    W_q = W_Q * (torch.exp(-s) / math.sqrt(d_k))[:, None, None]
    W_qkv = torch.cat([w.permute(1, 0, 2).reshape(d, -1) for w in (W_q, W_K, W_V)], dim=1)
    qkv = X @ W_qkv
    q, k, v = torch.split(qkv, [H * d_k, H * d_k, H * d_v], dim=-1)
    q, k, v = (t.reshape(B, T, H, -1).transpose(1, 2) for t in (q, k, v))
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)
    U = o.transpose(1, 2).reshape(B, T, H * d_v) @ W_O.reshape(H * d_v, d)
    Y = (X + U).reshape(B * T, d)
    diff = Y[:, :, None] - P[None]
    D = (diff * diff).sum(dim=1)
    Q = torch.softmax(-D / T_P, dim=1)
    Z = Y + Q @ P.T
    logits = Z.reshape(B, T, d).mean(dim=1) @ W_c + b_c[None]
    L_task = -torch.log_softmax(logits, dim=1).gather(1, labels[:, None]).mean()
    L_q = (Q * D).sum() / (B * T)
    return L_task + lambda_q * L_q, L_task, L_q, Y, Q


ParamArgs = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def flat_args(params: ModelParams) -> ParamArgs:
    """The parameter arguments of :func:`stacked_loss`, in its order (the heads stacked)."""
    h = stack_heads(params)
    return (params.W_in, params.E_pos, h.W_Q, h.W_K, h.W_V, h.W_O, h.s, params.P, params.W_c, params.b_c)


def reported_terms(Y: Tensor, P: Tensor, Q: Tensor, T_P: float) -> dict[str, Tensor]:
    """``L_OLS``, ``V``, ``F``, ``H̄`` (D1's decomposition and the free energy), without a graph."""
    with torch.no_grad():
        Y_, P_, Q_ = Y.detach(), P.detach(), Q.detach()
        return {
            "L_OLS": ols_loss(Y_, P_, Q_),
            "V": prototype_variance(P_, Q_),
            "F": free_energy(Y_, P_, T_P),
            "H_bar": mean_entropy(Q_),
        }


@dataclass
class StepFunction:
    """``stacked_loss``, compiled (``compile=True``: ``torch.compile(dynamic=True)``) or eager.

    ``error`` keeps the exception if compilation failed (the function then runs eagerly);
    :func:`compile_count` reads how many graphs dynamo has compiled in this process."""

    compile: bool = False
    error: BaseException | None = None
    _fn: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._fn = torch.compile(stacked_loss, dynamic=True) if self.compile else stacked_loss

    def __call__(self, params: ModelParams, x: Tensor, labels: Tensor, T_P: float, lambda_q: float) -> Any:
        args = flat_args(params)
        if self._fn is not stacked_loss:
            try:
                return self._fn(*args, x, labels, T_P, lambda_q)
            except Exception as exc:
                self.error = exc
                self._fn = stacked_loss
        return stacked_loss(*args, x, labels, T_P, lambda_q)


def compile_count() -> int:
    """Graphs compiled by dynamo so far in this process (``torch._dynamo.utils.counters``)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


__all__ = [
    "ParamArgs",
    "StackedHeads",
    "StepFunction",
    "compile_count",
    "flat_args",
    "reported_terms",
    "stack_heads",
    "stacked_loss",
]
