"""The online eigen-trackers of a growth check on the device (mirrors :mod:`reference.incrt.trackers`).

Normalised Oja (dominant eigenvector) and MCA-EXIN (minor eigenvector) on a static symmetric ``A``,
with the certified step ``‖w_0‖²/‖A‖_F`` and the warm start of :func:`reference.growth_phases.warm_start`;
the same formulas in the same order of operations as the reference, in torch on ``A``'s device. The
certificates of claim G6 are checked by the reference's invariant on a host copy
(:func:`to_reference`), never re-derived here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from accelerated.backward import to_host
from accelerated.checks import check_tensor
from reference._arrays import check_count, check_positive
from reference.incrt.author_code import author_steps
from reference.incrt.trackers import TrackerKind, TrackerResult


@dataclass(frozen=True, eq=False)
class DeviceTrackerResult:
    """A tracker run as :class:`reference.incrt.trackers.TrackerResult`, with tensors on the device."""

    kind: TrackerKind
    w0: Tensor
    w: Tensor
    eta: float
    alphas: Tensor
    estimate: Tensor  # 0-d: the Rayleigh quotient wᵀAw/wᵀw at the end


def _check_operator(A: object) -> Tensor:
    A_ = check_tensor("A", A, 2)
    if A_.shape[0] != A_.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {tuple(A_.shape)}")
    return A_


def _check_vector(name: str, w: object, A: Tensor) -> Tensor:
    w_ = check_tensor(name, w, 1, like=A)
    if w_.shape[0] != A.shape[0]:
        raise ValueError(f"{name}: expected {A.shape[0]} entries (A's width d), got {w_.shape[0]}")
    return w_


def _check_track_args(A: object, w0: object, eta: object, n_steps: object) -> None:
    _check_vector("w0", w0, _check_operator(A))
    if not isinstance(eta, float):
        # torch keeps a Python int exactly (and overflows on a huge one): the step is a float, as
        # certified_step returns it
        raise TypeError(f"eta: expected a float step size, got {type(eta).__name__} {eta!r}")
    check_positive("eta", eta)
    check_count("n_steps", n_steps, 0)


def rayleigh(A: Tensor, w: Tensor) -> Tensor:
    """``r(w) = wᵀAw / wᵀw``."""
    return (w @ (A @ w)) / (w @ w)


def certified_step(A: Tensor, w0_norm2: float = 1.0) -> float:
    """``‖w_0‖²/‖A‖_F`` (1·‖w_0‖² for ``A = 0``), as :func:`reference.incrt.trackers.certified_step`."""
    _check_operator(A)
    check_positive("w0_norm2", w0_norm2)
    nrm = float(torch.linalg.matrix_norm(A))
    return w0_norm2 if nrm == 0.0 else w0_norm2 / nrm


def oja_track(A: Tensor, w0: Tensor, eta: float, n_steps: int) -> DeviceTrackerResult:
    """``n_steps`` normalised Oja steps ``w⁺ = (w + η(Aw − (wᵀAw)w))/‖·‖`` from ``w0``."""
    _check_track_args(A, w0, eta, n_steps)
    w = w0 / torch.sqrt(w0 @ w0)
    for _ in range(n_steps):
        w = w / torch.sqrt(w @ w)
        Aw = A @ w
        v = w + eta * (Aw - (w @ Aw) * w)
        w = v / torch.sqrt(v @ v)
    alphas = torch.full((n_steps,), eta, dtype=A.dtype, device=A.device)
    return DeviceTrackerResult(TrackerKind.OJA, w0.clone(), w, eta, alphas, rayleigh(A, w))


def mca_exin_track(A: Tensor, w0: Tensor, eta: float, n_steps: int) -> DeviceTrackerResult:
    """``n_steps`` MCA-EXIN steps ``w⁺ = w − (η/‖w‖²)(Aw − r(w)w)``, recording ``α_t = η/‖w_t‖²``."""
    _check_track_args(A, w0, eta, n_steps)
    w = w0
    alphas = []
    for _ in range(n_steps):
        nrm2 = w @ w
        Aw = A @ w
        alpha = eta / nrm2
        w = w - alpha * (Aw - ((w @ Aw) / nrm2) * w)
        alphas.append(alpha)
    a = torch.stack(alphas) if alphas else torch.zeros(0, dtype=A.dtype, device=A.device)
    return DeviceTrackerResult(TrackerKind.MCA_EXIN, w0.clone(), w, eta, a, rayleigh(A, w))


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


def unit_vector(v: Tensor) -> Tensor:
    out: Tensor = v / torch.linalg.vector_norm(v)
    return out


def warm_start(w: Tensor, Q_cap: Tensor) -> Tensor:
    """``Π⊥w/‖Π⊥w‖``, or the largest column of ``Π⊥`` when ``‖Π⊥w‖ ≤ ‖w‖/2`` (why: see
    :func:`reference.growth_phases.warm_start`); ``w`` itself when nothing or everything is captured."""
    check_tensor("w", w, 1)
    check_tensor("Q_cap", Q_cap, 2)
    if Q_cap.shape[0] != w.shape[0]:
        raise ValueError(f"Q_cap: expected {w.shape[0]} rows (w's width d), got shape {tuple(Q_cap.shape)}")
    d, m = Q_cap.shape
    if m == 0 or m == d:
        return unit_vector(w)
    Pi = torch.eye(d, dtype=Q_cap.dtype, device=Q_cap.device) - Q_cap @ Q_cap.T
    Pi = 0.5 * (Pi + Pi.T)
    v = Pi @ w
    if float(torch.linalg.vector_norm(v)) > 0.5 * float(torch.linalg.vector_norm(w)):
        return unit_vector(v)
    col = int(torch.argmax((Pi * Pi).sum(dim=0)))
    return unit_vector(Pi[:, col].clone())


def to_reference(result: DeviceTrackerResult) -> TrackerResult:
    """The host float64 :class:`reference.incrt.trackers.TrackerResult` (for the G6 invariant)."""

    return TrackerResult(
        result.kind, to_host(result.w0), to_host(result.w), result.eta, to_host(result.alphas), float(result.estimate)
    )


__all__ = [
    "DeviceTrackerResult",
    "author_track",
    "certified_step",
    "mca_exin_track",
    "oja_track",
    "rayleigh",
    "to_reference",
    "unit_vector",
    "warm_start",
]
