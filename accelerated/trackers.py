"""The ``author_code`` trackers' step on the device (mirrors :func:`reference.incrt.author_code.author_track`).

The growth check's own Oja and MCA-EXIN trackers run the reference's code on the host
(:meth:`accelerated.growth_phases.TorchBackend.track`); only the author's one-step coupled trackers,
which update the tracker vectors on the device at every check under the variant ``author_code``, are
written here, in the same order of operations as the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from accelerated.checks import check_tensor
from reference.incrt.author_code import author_steps


def _check_operator(S: object) -> Tensor:
    S_ = check_tensor("S", S, 2)
    if S_.shape[0] != S_.shape[1]:
        raise ValueError(f"S: expected a square matrix, got shape {tuple(S_.shape)}")
    return S_


def _check_vector(name: str, w: object, S: Tensor) -> Tensor:
    w_ = check_tensor(name, w, 1, like=S)
    if w_.shape[0] != S.shape[0]:
        raise ValueError(f"{name}: expected {S.shape[0]} entries (S's width d), got {w_.shape[0]}")
    return w_


def _normalize(v: Tensor) -> Tensor:
    """``F.normalize(v, dim=0)``: ``v / max(‖v‖, 10⁻¹²)``."""
    return v / torch.clamp(torch.sqrt(v @ v), min=1e-12)


def author_track(S: Tensor, u_plus: Tensor, u_minus: Tensor, gstar: float) -> tuple[Tensor, Tensor]:
    """The ``author_code`` trackers' one step on ``S`` (mirrors :func:`reference.incrt.author_code.author_track`,
    the author's cell 5 ``oja_step`` then ``mca_exin_step`` with the new ``u₊``), ``η₊ = 1/(10d)``,
    ``η₋ = η₊/2``; ``gstar`` computed on the host from the exact gaps (both engines alike)."""
    _check_vector("u_plus", u_plus, _check_operator(S))
    _check_vector("u_minus", u_minus, S)
    eta_plus, eta_minus = author_steps(S.shape[0])
    Au = S @ u_plus
    R = u_plus @ Au
    coupling = u_plus @ (S @ u_minus)
    up = _normalize(u_plus + eta_plus * ((Au - R * u_plus) - (1 - gstar) * coupling * u_minus))
    nrm = u_minus @ u_minus
    Am = S @ u_minus
    y = u_minus @ Am
    mca = (eta_minus * y / nrm) * (Am - (y / nrm) * u_minus)
    coupling = up @ (S @ u_minus)
    um = _normalize(u_minus - mca + eta_minus * gstar * (1 - gstar) * coupling * up)
    um = um - (um @ up) * up
    return up, _normalize(um)


__all__ = ["author_track"]
