"""The training step's hot path: the loss from stacked head weights, optionally ``torch.compile``d.

:func:`accelerated.model.forward` is the mirror of the reference (every intermediate kept, inputs
checked); this module is what a step runs. Same mathematics, arranged for speed:

* the heads are the stored stacked tensors (:class:`accelerated.model.HeadStack`); the scores are
  formed as ``(X W_Q exp(−s)/√d_k)(X W_K)ᵀ`` — associativity of ``X (W_Q W_Kᵀ/(τ√d_k)) Xᵀ``, with ``2·d·d_k``
  instead of ``d²`` work per token and the ``T×T`` product over ``d_k`` instead of ``d``; the three
  projections of all heads are one matmul and the attention is
  ``torch.nn.functional.scaled_dot_product_attention`` (a fused softmax(q kᵀ) v), written out instead
  for short sequences, where the fused kernel's fixed cost dominates (:func:`attention`);
* distances: in float64 training the difference form ``Σ_i (y_ti − p_ij)²`` (as the reference); in
  float32 (the fast path) the centred expanded form ``‖y'‖² + ‖p'‖² − 2y'ᵀp'`` computed in float64
  (:func:`centred_squared_distances`): one matmul instead of an n×d×K tensor (whose compiled backward
  was most of a float32 step's time); ``Q`` and ``L_q`` are computed in float64 from it and rounded
  once, so their error bound is the float64 one plus one rounding (docs/tolerances.md, "Distances");
* only ``L``, ``L_task`` and ``L_q`` build a graph; ``L_OLS``, ``V``, ``F`` and ``H̄`` are computed
  from the returned ``Y`` and ``Q`` without one (:func:`reported_terms`), and only where recorded.

:class:`StepFunction` wraps the loss in ``torch.compile`` with the two axes a run changes marked
dynamic — the heads' leading axis ``H`` (births and prunes) and the prototypes' ``K`` (prunes) — so
they reuse one graph instead of recompiling at each change (the ``0/1`` specialisation of dynamic
shapes costs one more graph for a single head); every other dimension (``B``, ``T``, ``d``, ``d_k``,
``d_v``, the classes) is compiled as a constant, which gives inductor static loops and the compiled
wrapper fewer size checks per call (a dimension that does change later, a last short batch say, is
made dynamic by dynamo's automatic dynamic shapes after one recompilation). Eager is the fallback when
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
from reference.tolerances import CheckKind, assignment_relative_error, tolerance


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
    Y = stacked_tokens(W_in, E_pos, W_Q, W_K, W_V, W_O, s, x)
    _, Q, L_q = distances_and_assignments(Y, P, T_P)
    B, T = x.shape[0], x.shape[1]
    d = Y.shape[1]
    Z = Y + Q @ P.T
    logits = Z.reshape(B, T, d).mean(dim=1) @ W_c + b_c[None]
    L_task = -torch.log_softmax(logits, dim=1).gather(1, labels[:, None]).mean()
    return L_task + lambda_q * L_q, L_task, L_q, Y, Q


def stacked_tokens(
    W_in: Tensor, E_pos: Tensor, W_Q: Tensor, W_K: Tensor, W_V: Tensor, W_O: Tensor, s: Tensor, x: Tensor
) -> Tensor:
    """``Y = X + Σ_h U_h`` (flattened to n×d), all heads at once: the attention half of the layer."""
    X = x @ W_in + E_pos[None]
    B, T, d = X.shape
    q, k, v = head_projections(X, W_Q, W_K, W_V, s)
    return (X + output_projection(attention(q, k, v), W_O)).reshape(B * T, d)


# The longest sequence for which the attention is written out (scores, softmax, product) instead of
# calling the fused kernel. Measured on the CPU (docs/performance.md, "Short sequences: the attention
# written out"): at T = 8 to 32 the written-out form's step is 7–29% faster at the digits sizes and
# 15% faster to 1% slower at the mid sizes (the fused kernel's fixed cost per call and per backward
# dominates short rows, and inductor fuses the softmax with its neighbours), at T = 64 within −7 to +2%,
# at T = 128 28% slower and at T = 256 56% slower (the B×H×T×T scores and their gradient leave the
# caches, which the fused kernel never forms).
EXPLICIT_ATTENTION_MAX_T = 32


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``softmax(q kᵀ) v`` of every head (B×H×T×d_v; the scale is already in ``q``): written out for
    sequences of at most :data:`EXPLICIT_ATTENTION_MAX_T` tokens, else
    ``torch.nn.functional.scaled_dot_product_attention``. The two differ by rounding only (the fused
    kernel accumulates the softmax online, in blocks); both are within the step's tolerance rows
    (``tests/test_accelerated_model.py`` runs the step's harness through each)."""
    if q.shape[-2] <= EXPLICIT_ATTENTION_MAX_T:
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)


def head_projections(X: Tensor, W_Q: Tensor, W_K: Tensor, W_V: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``q, k, v`` of every head (B×H×T×d_k, B×H×T×d_k, B×H×T×d_v) from the layer input ``X`` (B×T×d),
    with the scale folded into ``q``, so that ``q kᵀ = X M_h Xᵀ`` (``M_h = W_Q W_Kᵀ exp(−s_h)/√d_k``):
    ``2·d·d_k`` work per token instead of ``d²``, and one projection (d × H(2d_k + d_v)) for all heads."""
    B, T, d = X.shape
    H, _, d_k = W_Q.shape
    d_v = W_V.shape[-1]
    W_q = W_Q * (torch.exp(-s) / math.sqrt(d_k))[:, None, None]
    W_qkv = torch.cat([w.permute(1, 0, 2).reshape(d, -1) for w in (W_q, W_K, W_V)], dim=1)
    q, k, v = (t.reshape(B, T, H, -1).transpose(1, 2) for t in torch.split(X @ W_qkv, [H * d_k, H * d_k, H * d_v], -1))
    return q, k, v


def output_projection(o: Tensor, W_O: Tensor) -> Tensor:
    """``U = Σ_h o_h W_O^h`` (B×T×d) of every head's attention output ``o`` (B×H×T×d_v): one product
    with the stacked ``W_O`` (H·d_v × d)."""
    B, H, T, d_v = o.shape
    return o.transpose(1, 2).reshape(B, T, H * d_v) @ W_O.reshape(H * d_v, W_O.shape[-1])


def squared_distances(Y: Tensor, P: Tensor) -> Tensor:
    """``D_tj = Σ_i (y_ti − p_ij)²`` (n×K) in the difference form, as the reference: relative error
    ``≤ γ_{d+2}`` per entry, through an n×d×K intermediate."""
    diff = Y[:, :, None] - P[None]
    return (diff * diff).sum(dim=1)


def centred_squared_distances(Y: Tensor, P: Tensor) -> Tensor:
    """``D_tj = ‖y'_t‖² + ‖p'_j‖² − 2 y'_tᵀp'_j`` in float64 (n×K, whatever the inputs' dtype), with
    ``y' = y − c``, ``p' = p − c`` and ``c`` the prototypes' mean (a common translation leaves ``D``
    unchanged): one n×d by d×K product instead of the difference form's n×d×K tensor. Each entry is
    within :func:`reference.tolerances.centred_distance_error` ``(d, max_j D_tj)`` of the exact
    distance of the inputs (docs/tolerances.md, "Distances")."""
    Y64, P64 = Y.to(torch.float64), P.to(torch.float64)
    c = P64.mean(dim=1)
    Yc = Y64 - c[None]
    Pc = P64 - c[:, None]
    return (Yc * Yc).sum(dim=1, keepdim=True) + (Pc * Pc).sum(dim=0)[None] - 2.0 * (Yc @ Pc)


def distances_and_assignments(Y: Tensor, P: Tensor, T_P: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(D, Q = softmax(−D/T_P), L_q = (1/n) Σ_tj Q_tj D_tj)`` in ``Y``'s dtype.

    float64 (the precision mode): the reference's difference form. Any other dtype (the fast path):
    ``D`` by :func:`centred_squared_distances`, then ``Q`` and ``L_q`` in float64, each rounded once to
    the training dtype, so that ``Q`` is within :func:`reference.tolerances.assignment_relative_error`
    of the exact assignments of the inputs, entry by entry (docs/tolerances.md, "Distances")."""
    n = Y.shape[0]
    if Y.dtype == torch.float64:
        D = squared_distances(Y, P)
        Q = torch.softmax(-D / T_P, dim=1)
        return D, Q, (Q * D).sum() / n
    D64 = centred_squared_distances(Y, P)
    Q64 = torch.softmax(-D64 / T_P, dim=1)
    return D64.to(Y.dtype), Q64.to(Y.dtype), ((Q64 * D64).sum() / n).to(Y.dtype)


ParamArgs = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def flat_args(params: ModelParams) -> ParamArgs:
    """The parameter arguments of :func:`stacked_loss`, in its order (the stored tensors: nothing is
    stacked or copied)."""
    h = params.heads
    return (params.W_in, params.E_pos, h.W_Q, h.W_K, h.W_V, h.W_O, h.s, params.P, params.W_c, params.b_c)


def probe_assignments(Y: Tensor, P: Tensor, T_P: float) -> Tensor:
    """``Q = softmax(−D/T_P)`` of the growth check's float64 probe tokens, for its decisions (prototype
    masses) and statistics: by :func:`centred_squared_distances` where that form's bound
    (:func:`reference.tolerances.assignment_relative_error` at the probe's largest distance) is below a
    tenth of the float64 DECISION row — a mass can then differ from the reference's only by a tenth of
    the band in which a decision is declared a near-tie, so no decision differs outside one — and by the
    reference's difference form otherwise (at the bench's mid-size probe the bound is 6.7e-11). Reads
    one scalar on the host (the check synchronises anyway)."""
    D = centred_squared_distances(Y, P)
    bound = assignment_relative_error(Y.shape[1], P.shape[1], float(D.max()), T_P, "float64")
    if not bound <= tolerance("float64", CheckKind.DECISION).rtol / 10.0:
        D = squared_distances(Y, P)
    return torch.softmax(-D / T_P, dim=1).to(Y.dtype)


def reported_terms(Y: Tensor, P: Tensor, Q: Tensor, T_P: float) -> dict[str, Tensor]:
    """``L_OLS``, ``V``, ``F``, ``H̄`` (D1's decomposition and the free energy), without a graph.

    float64: the mirror's functions (:mod:`accelerated.ddcl`, difference forms). Other dtypes, in
    float64 without an n×d×K tensor, each rounded once: ``F`` from :func:`centred_squared_distances`
    (``F`` is 1-Lipschitz in ``D`` entrywise, so it inherits ``centred_distance_error``), ``V`` as
    ``½ Σ_t q_tᵀ D^P q_t`` with ``D^P`` the K×K prototype distances in the difference form (equal to
    ``Σ_tj q_tj ‖p_j − P q_t‖²`` when rows sum to one, a sum of non-negative terms)."""
    with torch.no_grad():
        Y_, P_, Q_ = Y.detach(), P.detach(), Q.detach()
        if Y_.dtype == torch.float64:
            return {
                "L_OLS": ols_loss(Y_, P_, Q_),
                "V": prototype_variance(P_, Q_),
                "F": free_energy(Y_, P_, T_P),
                "H_bar": mean_entropy(Q_),
            }
        n = Y_.shape[0]
        Y64, P64, Q64 = Y_.to(torch.float64), P_.to(torch.float64), Q_.to(torch.float64)
        R = Y64 - Q64 @ P64.T
        D = centred_squared_distances(Y_, P_)
        D_min = D.min(dim=1).values
        F = (D_min - T_P * torch.logsumexp(-(D - D_min[:, None]) / T_P, dim=1)).mean()
        D_P = squared_distances(P64.T, P64)
        terms = {
            "L_OLS": (R * R).sum() / n,
            "V": 0.5 * ((Q64 @ D_P) * Q64).sum() / n,
            "F": F,
            "H_bar": mean_entropy(Q64),
        }
        return {k: v.to(Y_.dtype) for k, v in terms.items()}


@dataclass
class StepFunction:
    """``stacked_loss``, compiled (``compile=True``: ``torch.compile`` with ``H`` and ``K`` marked
    dynamic at each call, :func:`mark_growing_axes`) or eager.

    ``error`` keeps the exception if compilation failed (the function then runs eagerly);
    :func:`compile_count` reads how many graphs dynamo has compiled in this process."""

    compile: bool = False
    error: BaseException | None = None
    _fn: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._fn = torch.compile(stacked_loss) if self.compile else stacked_loss

    def __call__(self, params: ModelParams, x: Tensor, labels: Tensor, T_P: float, lambda_q: float) -> Any:
        args = flat_args(params)
        if self._fn is not stacked_loss:
            mark_growing_axes(params)
            try:
                return self._fn(*args, x, labels, T_P, lambda_q)
            except Exception as exc:
                self.error = exc
                self._fn = stacked_loss
        return stacked_loss(*args, x, labels, T_P, lambda_q)


def mark_growing_axes(params: ModelParams) -> None:
    """Mark for ``torch.compile`` the axes INCRT changes during a run as dynamic: ``H``, the leading axis of
    the stacked head tensors, and ``K``, the columns of ``P``. The marks live on the tensors, and a step
    makes new leaves, so they are set at every call (``maybe_mark_dynamic``: a size-1 axis, one head, is
    left to dynamo's ``0/1`` specialisation instead of raising)."""
    for t in params.heads.tensors():
        torch._dynamo.maybe_mark_dynamic(t, 0)
    torch._dynamo.maybe_mark_dynamic(params.P, 1)


def compile_count() -> int:
    """Graphs compiled by dynamo so far in this process (``torch._dynamo.utils.counters``)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


__all__ = [
    "EXPLICIT_ATTENTION_MAX_T",
    "ParamArgs",
    "StepFunction",
    "attention",
    "centred_squared_distances",
    "compile_count",
    "distances_and_assignments",
    "flat_args",
    "head_projections",
    "mark_growing_axes",
    "output_projection",
    "probe_assignments",
    "reported_terms",
    "squared_distances",
    "stacked_loss",
    "stacked_tokens",
]
