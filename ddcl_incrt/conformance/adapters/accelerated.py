"""The accelerated path (PyTorch) as a conformance adapter, in float64 and in float32.

Each operation runs the accelerated package's own code in the adapter's dtype: the DDCL quantities of
:mod:`accelerated.ddcl` with their gradients by autograd, the layer of :mod:`accelerated.model` and
:mod:`accelerated.backward`, the statistics of :mod:`accelerated.growth_statistics` (in float64 of
the rounded parameters, as :mod:`accelerated.growth_phases` takes them), the decisions through the
reference's pure functions of device statistics (as :mod:`accelerated.growth_phases` makes them),
the step of :mod:`accelerated.optim` and the run of :class:`accelerated.trainer.AcceleratedEngine`
through the trainer's loop body (:mod:`ddcl_incrt.conformance.trajectory`).
Greedy capture on a static operator has no counterpart in the package; the adapter writes it in
torch (``eigh`` in the adapter's dtype), as a port would.

The float32 adapter declares its tolerances (:data:`FLOAT32_TOLERANCES`: the float32 rows of the
table, with their reasons); the float64 adapter is held to the float64 rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from accelerated import backward as acc_backward
from accelerated import ddcl as acc_ddcl
from accelerated import growth_statistics as acc_gs
from accelerated import model as acc_model
from accelerated import optim as acc_optim
from accelerated.growth_phases import as_float64
from accelerated.trainer import AcceleratedEngine
from ddcl_incrt.conformance.adapter import (
    F64,
    FORWARD_ARRAYS,
    FORWARD_SCALARS,
    I64,
    TrajectoryInputs,
    TrajectoryOutputs,
)
from ddcl_incrt.conformance.compare import TolerancePolicy
from ddcl_incrt.conformance.operations import operation_names
from ddcl_incrt.conformance.trajectory import run_trajectory
from reference.incrt.controller import (
    GrowthConfig,
    GrowthState,
    grow_decision,
    prototype_prune_check,
    prune_decision,
)
from reference.model import LayerConfig, ModelParams
from reference.optim import AdamMoments, AdamState, LearningRates
from reference.surgery import params_from_arrays

# The float32 adapter's declaration: the float32 rows of the tolerance table, i.e. VALUE rtol 1e-4
# against the float64 reference (docs/tolerances.md: O(10²) float32 operations at 2^-24, ×10; the
# float64 reference is the comparison point, so the error includes rounding the inputs to float32)
# and the float32 DECISION band (1e-4 relative) for near-ties. No check needs more: the worst
# measured float32 error is 3.7e-6 (∂L/∂s of layer_gradients/one_head, 0.037 of the row) and over the
# 40-step trajectory 3.8e-7 (docs/porting.md).
FLOAT32_TOLERANCES = TolerancePolicy(dtype="float32", source="accelerated float32 adapter: the float32 table rows")


class AcceleratedAdapter:
    """Every operation on the accelerated path in ``dtype`` (``torch.float64`` or ``torch.float32``)."""

    @property
    def capabilities(self) -> frozenset[str]:
        """The registry's operations this class has a method for (all of them today: a test says so)."""
        return frozenset(n for n in operation_names() if callable(getattr(type(self), n, None)))

    def __init__(self, dtype: torch.dtype) -> None:
        if dtype not in (torch.float64, torch.float32):
            raise ValueError(f"dtype: expected torch.float64 or torch.float32, got {dtype}")
        self.dtype = dtype
        self.name = f"accelerated ({str(dtype).removeprefix('torch.')})"
        self.tolerances = FLOAT32_TOLERANCES if dtype == torch.float32 else TolerancePolicy(source="float64 VALUE row")

    def _t(self, a: np.ndarray, *, grad: bool = False) -> Tensor:
        return torch.tensor(np.asarray(a), dtype=self.dtype).requires_grad_(grad)

    @staticmethod
    def _h(t: Tensor) -> F64:
        return np.asarray(acc_backward.to_host(t), dtype=np.float64)

    # primitives --------------------------------------------------------------------------------
    def squared_distances(self, Y: F64, P: F64) -> F64:
        return self._h(acc_ddcl.squared_distances(self._t(Y), self._t(P)))

    def soft_assignments(self, D: F64, T_P: float) -> F64:
        return self._h(acc_ddcl.soft_assignments(self._t(D), T_P))

    def quantisation_loss(self, Y: F64, P: F64, Q: F64) -> float:
        return float(acc_ddcl.quantisation_loss(self._t(Y), self._t(P), self._t(Q)))

    def ols_loss(self, Y: F64, P: F64, Q: F64) -> float:
        return float(acc_ddcl.ols_loss(self._t(Y), self._t(P), self._t(Q)))

    def prototype_variance(self, P: F64, Q: F64) -> float:
        return float(acc_ddcl.prototype_variance(self._t(P), self._t(Q)))

    def free_energy(self, Y: F64, P: F64, T_P: float) -> float:
        return float(acc_ddcl.free_energy(self._t(Y), self._t(P), T_P))

    def mean_entropy(self, Q: F64) -> float:
        return float(acc_ddcl.mean_entropy(self._t(Q)))

    def _grad_YP(self, Y: F64, P: F64, loss: object) -> tuple[F64, F64]:
        Yt, Pt = self._t(Y, grad=True), self._t(P, grad=True)
        L = loss(Yt, Pt)  # type: ignore[operator]
        gY, gP = torch.autograd.grad(L, [Yt, Pt])
        return self._h(gY), self._h(gP)

    def grad_quantisation_fixed_Q(self, Y: F64, P: F64, Q: F64) -> tuple[F64, F64]:
        Qt = self._t(Q)
        return self._grad_YP(Y, P, lambda Yt, Pt: acc_ddcl.quantisation_loss(Yt, Pt, Qt))

    def grad_free_energy(self, Y: F64, P: F64, T_P: float) -> tuple[F64, F64]:
        return self._grad_YP(Y, P, lambda Yt, Pt: acc_ddcl.free_energy(Yt, Pt, T_P))

    def grad_variance_fixed_Q(self, P: F64, Q: F64) -> F64:
        Pt = self._t(P, grad=True)
        (gP,) = torch.autograd.grad(acc_ddcl.prototype_variance(Pt, self._t(Q)), [Pt])
        return self._h(gP)

    def grad_quantisation_full(self, Y: F64, P: F64, T_P: float) -> tuple[F64, F64]:
        def loss(Yt: Tensor, Pt: Tensor) -> Tensor:
            Q = acc_ddcl.soft_assignments(acc_ddcl.squared_distances(Yt, Pt), T_P)
            return acc_ddcl.quantisation_loss(Yt, Pt, Q)

        return self._grad_YP(Y, P, loss)

    def _hessian_P(self, Y: F64, P: F64, loss: object) -> F64:
        """``∇²_P loss`` by autograd, as the kit's dK×dK with index ``j·d + i`` for ``P[i, j]``."""
        Yt = self._t(Y)
        d, K = P.shape
        H = torch.autograd.functional.hessian(lambda Pt: loss(Yt, Pt), self._t(P))  # type: ignore[operator,no-untyped-call]
        return self._h(H.permute(1, 0, 3, 2).reshape(K * d, K * d))

    def hessian_free_energy(self, Y: F64, P: F64, T_P: float) -> F64:
        return self._hessian_P(Y, P, lambda Yt, Pt: acc_ddcl.free_energy(Yt, Pt, T_P))

    def hessian_quantisation(self, Y: F64, P: F64, T_P: float) -> F64:
        def loss(Yt: Tensor, Pt: Tensor) -> Tensor:
            return acc_ddcl.quantisation_loss(
                Yt, Pt, acc_ddcl.soft_assignments(acc_ddcl.squared_distances(Yt, Pt), T_P)
            )

        return self._hessian_P(Y, P, loss)

    def prototype_step(self, Y: F64, P: F64, T_P: float, eta: float) -> F64:
        Pt = self._t(P, grad=True)
        (gP,) = torch.autograd.grad(acc_ddcl.free_energy(self._t(Y), Pt, T_P), [Pt])
        return self._h(Pt.detach() - eta * gP)

    def dcl_prototypes(self, Y_b: F64, W: F64, b: F64) -> F64:
        return self._h(self._t(Y_b).T @ self._t(W) + self._t(b)[None, :])

    def dcl_step(self, Y_b: F64, W: F64, b: F64, grad_P: F64, eta: float) -> tuple[F64, F64]:
        Wt, bt = self._t(W, grad=True), self._t(b, grad=True)
        P = self._t(Y_b).T @ Wt + bt[None, :]
        gW, gb = torch.autograd.grad(P, [Wt, bt], grad_outputs=self._t(grad_P))
        return self._h(Wt.detach() - eta * gW), self._h(bt.detach() - eta * gb)

    # the layer ---------------------------------------------------------------------------------
    def _layer(
        self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64
    ) -> tuple[acc_model.ForwardCache, dict[str, Tensor]]:
        p = acc_backward.from_reference(params, dtype=self.dtype)
        return acc_backward.loss_and_gradients(p, cfg, self._t(x), torch.tensor(labels))

    def layer_forward(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
        cache, _ = self._layer(cfg, params, x, labels)
        return {k: self._h(getattr(cache, k)) for k in FORWARD_ARRAYS + FORWARD_SCALARS}

    def layer_gradients(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
        _, grads = self._layer(cfg, params, x, labels)
        return {k: np.asarray(v, dtype=np.float64) for k, v in acc_backward.to_numpy(grads).items()}

    # growth ------------------------------------------------------------------------------------
    def growth_statistics(self, params: ModelParams, probe_x: F64, Q_cap: F64) -> Mapping[str, F64]:
        p64 = as_float64(acc_backward.from_reference(params, dtype=self.dtype))
        with torch.no_grad():
            C = acc_gs.probe_second_moment(p64, self._t(probe_x).to(torch.float64))
            M = acc_gs.head_operators(p64)
            A = acc_gs.residual_for(p64, C, torch.tensor(Q_cap, dtype=torch.float64))
            return {
                "C": self._h(C),
                "M_a": self._h(M),
                "A_res": self._h(A),
                "spectrum": self._h(acc_gs.spectrum_desc(A)),
                "G_h": self._h(acc_gs.head_strengths(C, M)),
            }

    def static_growth(self, A: F64, theta: float) -> tuple[F64, F64]:
        At = self._t(A)
        d = At.shape[0]
        eye = torch.eye(d, dtype=self.dtype)
        Q = torch.zeros((d, 0), dtype=self.dtype)
        births: list[float] = []
        while len(births) < d:
            Pi = eye - Q @ Q.T
            R = Pi @ At @ Pi
            lam, V = torch.linalg.eigh(0.5 * (R + R.T))
            if not float(lam[-1]) > theta:
                break
            u = V[:, -1]
            for _ in range(2):  # re-orthogonalise twice against the captured basis ("twice is enough")
                u = u - Q @ (Q.T @ u)
            Q = torch.cat([Q, (u / torch.linalg.vector_norm(u))[:, None]], dim=1)
            births.append(float(lam[-1]))
        return self._h(Q), np.array(births, dtype=np.float64)

    def _oja(self, A: Tensor, w: Tensor, eta: float, n_steps: int) -> Tensor:
        w = w / torch.linalg.vector_norm(w)
        for _ in range(n_steps):
            w = w / torch.sqrt(w @ w)
            Aw = A @ w
            v = w + eta * (Aw - (w @ Aw) * w)
            w = v / torch.sqrt(v @ v)
        return w

    def oja_track(self, A: F64, w0: F64, eta: float, n_steps: int) -> tuple[F64, float]:
        At = self._t(A)
        w = self._oja(At, self._t(w0), eta, n_steps)
        return self._h(w), float((w @ (At @ w)) / (w @ w))

    def mca_exin_track(self, A: F64, w0: F64, eta: float, n_steps: int) -> tuple[F64, F64, float]:
        At, w = self._t(A), self._t(w0)
        alphas: list[float] = []
        for _ in range(n_steps):
            nrm2 = w @ w
            Aw = At @ w
            alpha = eta / nrm2
            w = w - alpha * (Aw - ((w @ Aw) / nrm2) * w)
            alphas.append(float(alpha))
        return self._h(w), np.array(alphas, dtype=np.float64), float((w @ (At @ w)) / (w @ w))

    def tracked_growth(self, A: F64, theta: float, starts: F64, n_steps: int, eta: float) -> tuple[F64, F64]:
        At = self._t(A)
        d = At.shape[0]
        eye = torch.eye(d, dtype=self.dtype)
        Q = torch.zeros((d, 0), dtype=self.dtype)
        births: list[float] = []
        for k in range(d + 1):
            Pi = eye - Q @ Q.T
            R = Pi @ At @ Pi
            R = 0.5 * (R + R.T)
            w0 = self._t(starts[k])
            if Q.shape[1] < d:
                w0 = w0 - Q @ (Q.T @ w0)
            w = self._oja(R, w0, eta, n_steps)
            lam = float((w @ (R @ w)) / (w @ w))
            if not lam > theta or Q.shape[1] >= d:
                break
            for _ in range(2):  # re-orthogonalise twice against the captured basis
                w = w - Q @ (Q.T @ w)
            Q = torch.cat([Q, (w / torch.linalg.vector_norm(w))[:, None]], dim=1)
            births.append(lam)
        return self._h(Q), np.array(births, dtype=np.float64)

    def grow_decision(
        self, state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: F64, step: int, new_head_id: int
    ) -> GrowthState:
        return grow_decision(state, config, (lam_max, u_plus), step, new_head_id=new_head_id)[0]

    def prune_decision(
        self, state: GrowthState, config: GrowthConfig, C: F64, M_a: Mapping[int, F64], step: int
    ) -> GrowthState:
        ids = [h.head_id for h in state.heads]
        Ct = torch.tensor(C, dtype=torch.float64)
        Mt = torch.stack([torch.tensor(M_a[h], dtype=torch.float64) for h in ids])
        G = acc_gs.head_strengths(Ct, Mt)
        strengths = {h: float(G[i]) for i, h in enumerate(ids)}
        Q_cap = torch.tensor(state.Q_cap, dtype=torch.float64)

        def lam_max_of(heads: tuple[int, ...]) -> float:
            idx = [ids.index(h) for h in heads]
            return float(torch.linalg.eigvalsh(acc_gs.residual_operator(Ct, Mt[idx].sum(dim=0), Q_cap))[-1])

        return prune_decision(state, config, strengths, lam_max_of, step)[0]

    def prototype_prune_decision(self, state: GrowthState, config: GrowthConfig, mass: F64, step: int) -> GrowthState:
        return prototype_prune_check(state, config, mass, step)[0]

    # training ----------------------------------------------------------------------------------
    def train_step(
        self, cfg: LayerConfig, params: ModelParams, adam: AdamState, x: F64, labels: I64, lr: LearningRates
    ) -> tuple[ModelParams, AdamState]:
        _, grads = self._layer(cfg, params, x, labels)
        p = acc_backward.flatten(acc_backward.from_reference(params, dtype=self.dtype))
        state = acc_optim.AdamState(
            moments={k: acc_optim.AdamMoments(m=self._t(v.m), v=self._t(v.v), t=v.t) for k, v in adam.moments.items()}
        )
        new, out = acc_optim.Adam(lr=lr).step(state, p, grads)
        new_params = params_from_arrays(
            {k: self._h(v) for k, v in new.items()},
            next_head_id=params.next_head_id,
            prototype_ids=params.prototype_ids,
        )
        moments = {k: AdamMoments(m=self._h(v.m), v=self._h(v.v), t=v.t) for k, v in out.moments.items()}
        return new_params, AdamState(moments=moments)

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        return run_trajectory(AcceleratedEngine(dtype=self.dtype), inputs)[0]


def accelerated_float64() -> AcceleratedAdapter:
    """The factory ``ddcl_incrt.conformance.adapters.accelerated:accelerated_float64``."""
    return AcceleratedAdapter(torch.float64)


def accelerated_float32() -> AcceleratedAdapter:
    """The factory ``ddcl_incrt.conformance.adapters.accelerated:accelerated_float32``."""
    return AcceleratedAdapter(torch.float32)


__all__ = ["FLOAT32_TOLERANCES", "AcceleratedAdapter", "accelerated_float32", "accelerated_float64"]
