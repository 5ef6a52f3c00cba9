"""The DDCL block's quantities in PyTorch (mirrors the forward functions of :mod:`reference.ddcl`).

Same names, same formulas, any device and floating dtype; gradients come from autograd. Distances use
the difference form ``Σ_i (y_ti − p_ij)²``, which is exact up to rounding of the squares (no
cancellation), as the reference does.
"""

from __future__ import annotations

import torch
from torch import Tensor


def squared_distances(Y: Tensor, P: Tensor) -> Tensor:
    """``D_tj = ‖y_t − p_j‖²`` for tokens ``Y`` (n×d) and prototypes ``P`` (d×K): n×K."""
    diff = Y[:, :, None] - P[None, :, :]
    return (diff * diff).sum(dim=1)


def soft_assignments(D: Tensor, T_P: float) -> Tensor:
    """``q_t = softmax(−D_t/T_P)``, stabilised by the row minimum of ``D`` (as the reference)."""
    logits = -(D - D.min(dim=1, keepdim=True).values) / T_P
    return torch.softmax(logits, dim=1)


def quantisation_loss(Y: Tensor, P: Tensor, Q: Tensor) -> Tensor:
    """``L_q = (1/n) Σ_t Σ_j q_tj ‖y_t − p_j‖²``."""
    return (Q * squared_distances(Y, P)).sum() / Y.shape[0]


def ols_loss(Y: Tensor, P: Tensor, Q: Tensor) -> Tensor:
    """``L_OLS = (1/n) Σ_t ‖y_t − P q_t‖²``."""
    R = Y - Q @ P.T
    return (R * R).sum() / Y.shape[0]


def prototype_variance(P: Tensor, Q: Tensor) -> Tensor:
    """``V = (1/n) Σ_t Σ_j q_tj ‖p_j − P q_t‖²``."""
    means = Q @ P.T
    diff = P.T[None, :, :] - means[:, None, :]
    return (Q[:, :, None] * diff * diff).sum() / Q.shape[0]


def free_energy(Y: Tensor, P: Tensor, T_P: float) -> Tensor:
    """``F = −(T_P/n) Σ_t log Σ_j exp(−D_tj/T_P)``, as ``mean(D_min) − T_P·mean(lse)`` (the reference's split)."""
    D = squared_distances(Y, P)
    Dmin = D.min(dim=1).values
    lse = torch.logsumexp(-(D - Dmin[:, None]) / T_P, dim=1)
    return Dmin.mean() - T_P * lse.mean()


def mean_entropy(Q: Tensor) -> Tensor:
    """``H̄ = −(1/n) Σ_t Σ_j q_tj log q_tj`` (``0·log 0 = 0``)."""
    logs = torch.log(torch.where(Q > 0.0, Q, torch.ones_like(Q)))
    return -(Q * logs).sum() / Q.shape[0]


__all__ = [
    "free_energy",
    "mean_entropy",
    "ols_loss",
    "prototype_variance",
    "quantisation_loss",
    "soft_assignments",
    "squared_distances",
]
