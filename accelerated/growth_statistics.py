"""The INCRT growth statistics on the device (mirrors :mod:`reference.growth_statistics` and the
operators of :mod:`reference.incrt.operators` it uses).

``C = X̄ᵀX̄/n`` of the layer input on the probe, ``M_a^h = (M_h − M_hᵀ)/2`` for every head (stacked),
``A_res = Π⊥ ½[C, M_a] Π⊥``, ``G_h = ‖C M_a^h‖_F`` and the exact spectrum of ``A_res`` by
``torch.linalg.eigh``, all in torch on the parameters' device and dtype, without host
synchronisation. The grow / prune decisions themselves are pure functions of these scalars and stay
the reference's (:mod:`reference.incrt.controller`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from accelerated.checks import check_tensor
from accelerated.model import ModelParams, layer_input, stacked_score_operators


def _check_params(params: object) -> ModelParams:
    if not isinstance(params, ModelParams):
        raise TypeError(f"params: expected accelerated.model.ModelParams, got {type(params).__name__}")
    return params


def _check_square(name: str, value: object, like: Tensor | None = None) -> Tensor:
    out = check_tensor(name, value, 2, like=like)
    if out.shape[0] != out.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {tuple(out.shape)}")
    return out


def second_moment(X: Tensor) -> Tensor:
    """``C = XᵀX/n`` of n×d tokens, symmetrised (``½(G + Gᵀ)``) as the reference does."""
    check_tensor("X", X, 2)
    G = X.T @ X / X.shape[0]
    return 0.5 * (G + G.T)


def probe_second_moment(params: ModelParams, x: Tensor) -> Tensor:
    """``C`` of the layer input ``X = x W_in + E_pos`` on the probe batch ``x``, flattened to n×d."""
    check_tensor("x", x, 3, like=_check_params(params).W_in)
    X = layer_input(params, x)
    return second_moment(X.reshape(-1, X.shape[-1]))


def head_operators(params: ModelParams) -> Tensor:
    """``M_a^h = (M_h − M_hᵀ)/2`` for every active head, stacked H×d×d in id order."""
    _check_params(params)
    M = stacked_score_operators(params)
    return 0.5 * (M - M.transpose(1, 2))


def residual_operator(C: Tensor, M_a: Tensor, Q_cap: Tensor) -> Tensor:
    """``A_res = Π⊥ ½(C M_a + (C M_a)ᵀ) Π⊥`` with ``Π⊥ = I − Q_cap Q_capᵀ``, symmetrised."""
    C_ = _check_square("C", C)
    if tuple(_check_square("M_a", M_a, like=C_).shape) != tuple(C_.shape):
        raise ValueError(f"M_a: expected C's shape {tuple(C_.shape)}, got {tuple(M_a.shape)}")
    if check_tensor("Q_cap", Q_cap, 2, like=C_).shape[0] != C_.shape[0]:
        raise ValueError(f"Q_cap: expected {C_.shape[0]} rows (C's width d), got shape {tuple(Q_cap.shape)}")
    G = C @ M_a
    S = 0.5 * (G + G.T)
    eye = torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
    Pi = eye - Q_cap @ Q_cap.T
    Pi = 0.5 * (Pi + Pi.T)
    R = Pi @ S @ Pi
    return 0.5 * (R + R.T)


def residual_for(params: ModelParams, C: Tensor, Q_cap: Tensor) -> Tensor:
    """``A_res`` with ``M_a = Σ_{h∈𝓗} M_a^h`` over the heads of ``params``."""
    _check_params(params)
    return residual_operator(C, head_operators(params).sum(dim=0), Q_cap)


def head_strengths(C: Tensor, M_a_heads: Tensor) -> Tensor:
    """``G_h = ‖C M_a^h‖_F`` for every stacked head (H)."""
    C_ = _check_square("C", C)
    heads = check_tensor("M_a_heads", M_a_heads, 3, like=C_)
    if tuple(heads.shape[1:]) != tuple(C_.shape):
        raise ValueError(f"M_a_heads: expected H×{C_.shape[0]}×{C_.shape[0]}, got shape {tuple(heads.shape)}")
    out: Tensor = torch.linalg.matrix_norm(C[None] @ M_a_heads)
    return out


def spectrum_desc(A: Tensor) -> Tensor:
    """Eigenvalues of a symmetric ``A`` in non-increasing order (``torch.linalg.eigh``)."""
    _check_square("A", A)
    lam: Tensor = torch.linalg.eigvalsh(A)
    return lam.flip(0)


__all__ = [
    "head_operators",
    "head_strengths",
    "probe_second_moment",
    "residual_for",
    "residual_operator",
    "second_moment",
    "spectrum_desc",
]
