"""The DDCL block's quantities in PyTorch (mirrors the forward functions of :mod:`reference.ddcl`).

Same names, same formulas, any device and floating dtype; gradients come from autograd. Distances use
the difference form ``Σ_i (y_ti − p_ij)²``, which is exact up to rounding of the squares (no
cancellation), as the reference does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from accelerated.checks import check_tensor
from reference._arrays import check_positive

# Checks read tensor metadata only (no device synchronisation), so they cost nothing on the device.


def _check_tokens_prototypes(Y: object, P: object) -> tuple[Tensor, Tensor]:
    Y_ = check_tensor("Y", Y, 2)
    P_ = check_tensor("P", P, 2, like=Y_)
    if P_.shape[0] != Y_.shape[1]:
        raise ValueError(f"P: expected {Y_.shape[1]} rows (Y's width d), got shape {tuple(P_.shape)}")
    return Y_, P_


def _check_assignments(Q: object, n: int, K: int, like: Tensor) -> Tensor:
    Q_ = check_tensor("Q", Q, 2, like=like)
    if tuple(Q_.shape) != (n, K):
        raise ValueError(f"Q: expected shape {(n, K)} (tokens × prototypes), got {tuple(Q_.shape)}")
    return Q_


def squared_distances(Y: Tensor, P: Tensor) -> Tensor:
    """``D_tj = ‖y_t − p_j‖²`` for tokens ``Y`` (n×d) and prototypes ``P`` (d×K): n×K."""
    _check_tokens_prototypes(Y, P)
    diff = Y[:, :, None] - P[None, :, :]
    return (diff * diff).sum(dim=1)


def soft_assignments(D: Tensor, T_P: float) -> Tensor:
    """``q_t = softmax(−D_t/T_P)``, stabilised by the row minimum of ``D`` (as the reference)."""
    check_tensor("D", D, 2)
    check_positive("T_P", T_P)
    logits = -(D - D.min(dim=1, keepdim=True).values) / T_P
    return torch.softmax(logits, dim=1)


def quantisation_loss(Y: Tensor, P: Tensor, Q: Tensor) -> Tensor:
    """``L_q = (1/n) Σ_t Σ_j q_tj ‖y_t − p_j‖²``."""
    _check_assignments(Q, Y.shape[0], P.shape[1], like=_check_tokens_prototypes(Y, P)[0])
    return (Q * squared_distances(Y, P)).sum() / Y.shape[0]


def ols_loss(Y: Tensor, P: Tensor, Q: Tensor) -> Tensor:
    """``L_OLS = (1/n) Σ_t ‖y_t − P q_t‖²``."""
    _check_assignments(Q, Y.shape[0], P.shape[1], like=_check_tokens_prototypes(Y, P)[0])
    R = Y - Q @ P.T
    return (R * R).sum() / Y.shape[0]


def prototype_variance(P: Tensor, Q: Tensor) -> Tensor:
    """``V = (1/n) Σ_t Σ_j q_tj ‖p_j − P q_t‖²``."""
    P_ = check_tensor("P", P, 2)
    check_tensor("Q", Q, 2, like=P_)
    if Q.shape[1] != P_.shape[1]:
        raise ValueError(f"Q: expected {P_.shape[1]} columns (P's prototypes), got shape {tuple(Q.shape)}")
    means = Q @ P.T
    diff = P.T[None, :, :] - means[:, None, :]
    return (Q[:, :, None] * diff * diff).sum() / Q.shape[0]


def free_energy(Y: Tensor, P: Tensor, T_P: float) -> Tensor:
    """``F = −(T_P/n) Σ_t log Σ_j exp(−D_tj/T_P)``, as ``mean(D_min) − T_P·mean(lse)`` (the reference's split)."""
    check_positive("T_P", T_P)
    D = squared_distances(Y, P)
    Dmin = D.min(dim=1).values
    lse = torch.logsumexp(-(D - Dmin[:, None]) / T_P, dim=1)
    return Dmin.mean() - T_P * lse.mean()


def mean_entropy(Q: Tensor) -> Tensor:
    """``H̄ = −(1/n) Σ_t Σ_j q_tj log q_tj`` (``0·log 0 = 0``)."""
    check_tensor("Q", Q, 2)
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
