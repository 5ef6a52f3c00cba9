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

from accelerated.model import ModelParams, layer_input, stacked_score_operators


def second_moment(X: Tensor) -> Tensor:
    """``C = XᵀX/n`` of n×d tokens, symmetrised (``½(G + Gᵀ)``) as the reference does."""
    G = X.T @ X / X.shape[0]
    return 0.5 * (G + G.T)


def probe_second_moment(params: ModelParams, x: Tensor) -> Tensor:
    """``C`` of the layer input ``X = x W_in + E_pos`` on the probe batch ``x``, flattened to n×d."""
    X = layer_input(params, x)
    return second_moment(X.reshape(-1, X.shape[-1]))


def head_operators(params: ModelParams) -> Tensor:
    """``M_a^h = (M_h − M_hᵀ)/2`` for every active head, stacked H×d×d in id order."""
    M = stacked_score_operators(params)
    return 0.5 * (M - M.transpose(1, 2))


def residual_operator(C: Tensor, M_a: Tensor, Q_cap: Tensor) -> Tensor:
    """``A_res = Π⊥ ½(C M_a + (C M_a)ᵀ) Π⊥`` with ``Π⊥ = I − Q_cap Q_capᵀ``, symmetrised."""
    G = C @ M_a
    S = 0.5 * (G + G.T)
    eye = torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
    Pi = eye - Q_cap @ Q_cap.T
    Pi = 0.5 * (Pi + Pi.T)
    R = Pi @ S @ Pi
    return 0.5 * (R + R.T)


def residual_for(params: ModelParams, C: Tensor, Q_cap: Tensor) -> Tensor:
    """``A_res`` with ``M_a = Σ_{h∈𝓗} M_a^h`` over the heads of ``params``."""
    return residual_operator(C, head_operators(params).sum(dim=0), Q_cap)


def head_strengths(C: Tensor, M_a_heads: Tensor) -> Tensor:
    """``G_h = ‖C M_a^h‖_F`` for every stacked head (H)."""
    out: Tensor = torch.linalg.matrix_norm(C[None] @ M_a_heads)
    return out


def spectrum_desc(A: Tensor) -> Tensor:
    """Eigenvalues of a symmetric ``A`` in non-increasing order (``torch.linalg.eigh``)."""
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
