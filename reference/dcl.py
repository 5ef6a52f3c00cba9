"""The dual competitive layer (DCL, SPEC §2; claim D6).

The DCL generates prototypes from a batch of features ``Y_b`` (n_b×d): ``P = Y_bᵀ W + 1_d bᵀ`` with
``W ∈ R^{n_b×K}`` and ``b ∈ R^K``. Our ``Y_b`` is the paper's feature batch; the "vanilla" layer has
``P`` as a free parameter. Gradients are the chain rule of this linear map.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float64

from reference._arrays import arr, check_array, check_dim, check_positive, finite_result


def _check_dcl(Y_b: object, W: object, b: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Y_ = check_array("Y_b", Y_b, 2)
    W_ = check_array("W", W, 2)
    b_ = check_array("b", b, 1)
    check_dim("W", W_, 0, Y_.shape[0], "Y_b's batch size n_b")
    check_dim("b", b_, 0, W_.shape[1], "W's prototype count K")
    return Y_, W_, b_


@finite_result("Y_b", "W", "b")
def dcl_prototypes(
    Y_b: Float64[np.ndarray, "nb d"], W: Float64[np.ndarray, "nb K"], b: Float64[np.ndarray, " K"]
) -> Float64[np.ndarray, "d K"]:
    """``P = Y_bᵀ W + 1_d bᵀ``."""
    Y_, W_, b_ = _check_dcl(Y_b, W, b)
    return arr(Y_.T @ W_ + b_[None, :])


@finite_result("Y_b", "grad_P")
def dcl_gradients(
    Y_b: Float64[np.ndarray, "nb d"], grad_P: Float64[np.ndarray, "d K"]
) -> tuple[Float64[np.ndarray, "nb K"], Float64[np.ndarray, " K"]]:
    """Chain rule through ``P(W, b)``: ``∇_W L = Y_b ∇_P L`` and ``∇_b L = (∇_P L)ᵀ 1_d``."""
    Y_ = check_array("Y_b", Y_b, 2)
    G = check_array("grad_P", grad_P, 2)
    check_dim("grad_P", G, 0, Y_.shape[1], "Y_b's width d")
    return arr(Y_ @ G), arr(G.sum(axis=0))


@finite_result("Y_b")
def dcl_preconditioner(Y_b: Float64[np.ndarray, "nb d"]) -> Float64[np.ndarray, "d d"]:
    """``Y_bᵀY_b + 1_d 1_dᵀ`` (PSD): a DCL step moves ``P`` by ``−η`` times this times ``∇_P L`` (D6)."""
    Y_ = check_array("Y_b", Y_b, 2)
    d = Y_.shape[1]
    return arr(Y_.T @ Y_ + np.ones((d, d)))


@finite_result("Y_b", "W", "b", "grad_P", "eta")
def dcl_step(
    Y_b: Float64[np.ndarray, "nb d"],
    W: Float64[np.ndarray, "nb K"],
    b: Float64[np.ndarray, " K"],
    grad_P: Float64[np.ndarray, "d K"],
    eta: float,
) -> tuple[Float64[np.ndarray, "nb K"], Float64[np.ndarray, " K"]]:
    """One gradient step on ``(W, b)`` given ``∇_P L`` at ``P(W, b)``."""
    Y_, W_, b_ = _check_dcl(Y_b, W, b)
    step = check_positive("eta", eta)
    gW, gb = dcl_gradients(Y_, grad_P)
    check_dim("grad_P", check_array("grad_P", grad_P, 2), 1, W_.shape[1], "W's prototype count K")
    return arr(W_ - step * gW), arr(b_ - step * gb)


def best_rate_residual(dP: Float64[np.ndarray, "d K"], direction: Float64[np.ndarray, "d K"]) -> float:
    """``min_c ‖ΔP − c·D‖_F / ‖ΔP‖_F`` (``c = ⟨ΔP, D⟩/‖D‖²``): how far a prototype move ``ΔP`` is from
    *any* multiple of the direction ``D`` (D6's ``M∇_P L``: 0 for a gradient step at one rate); 1 when
    they are orthogonal; ``nan`` for ``ΔP = 0``."""
    norm_dp = float(np.linalg.norm(dP))
    if norm_dp == 0.0:
        return float("nan")
    dd = float(np.sum(direction * direction))
    c = float(np.sum(dP * direction)) / dd if dd > 0.0 else 0.0
    return float(np.linalg.norm(dP - c * direction)) / norm_dp


__all__ = [
    "best_rate_residual",
    "dcl_gradients",
    "dcl_preconditioner",
    "dcl_prototypes",
    "dcl_step",
]
