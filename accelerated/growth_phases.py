"""The growth check on the device: :class:`TorchBackend`, the accelerated engine's
:class:`reference.growth_phases.GrowthBackend`.

Every ``g`` steps, on the fixed probe: ``C``, the stacked ``M_a^h``, ``A_res`` and its exact spectrum by
``torch.linalg.eigh`` are computed in torch on the parameters' device
(:mod:`accelerated.growth_statistics`), and so are ``G_h`` and ``λ_max(A_res)`` of the remaining heads
(hysteresis) and the masses ``n_j/n``. Everything else is the reference's one check
(:func:`reference.growth_phases.run_check`): the Oja / MCA-EXIN trackers run the reference's code on the
host copy of ``A_res`` (:meth:`TorchBackend.track` says why); the decisions are
:mod:`reference.incrt.controller`'s pure functions of those statistics, so the dwell time, the strict
``>`` at θ, the hysteresis and the patience counters are one piece of code for both engines, and the
invariants (G1–G6, D5) run in float64 on host copies of the d×d statistics and of the parameters at
the events that need them.

A check runs in float64 whatever the training dtype (the parameters are cast for the check): the
decisions are compared with the reference exactly outside near-ties, and the near-tie band is the
float64 DECISION row; the cost is one d×d ``eigh`` and one probe forward every ``g`` steps (a second one
after a birth or a prune, for the masses of the changed layer). A check synchronises with the host
(decisions are Python control flow); a training step does not.

A birth initialises the new head from :func:`reference.growth_phases.birth_rng` exactly as the
reference does (the same NumPy draws, then moved to the device), so the two engines' heads agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from accelerated import trackers as acc_trk
from accelerated.backward import to_host, to_reference
from accelerated.growth_statistics import head_operators, head_strengths, residual_operator, second_moment
from accelerated.model import ModelParams, layer_input
from accelerated.optim import OptState
from accelerated.step import head_projections, output_projection, probe_assignments
from reference import model as ref_model
from reference.growth_phases import (
    Context,
    Measured,
    Tracked,
    author_scale,
    coupling_statistics,
    run_check,
    unit_vector,
    warm_start,
)
from reference.growth_statistics import Probe
from reference.incrt.author_code import gamma_star, spectral_gaps
from reference.incrt.controller import GrowthEvent, GrowthState
from reference.incrt.trackers import TrackerResult, certified_step, mca_exin_track, oja_track
from reference.invariants.ddcl import CollapseStatus
from reference.log import CheckRecord, InvariantRecord
from reference.surgery import head_param_names


@dataclass(frozen=True, eq=False)
class AcceleratedState:
    """Everything that changes during a run on the accelerated engine.

    ``params`` and ``opt_state`` live on the device in the training dtype; ``growth`` is the
    controller's state (host, float64, :class:`reference.incrt.controller.GrowthState`); ``Q_cap`` is
    the device's float64 copy of ``growth.Q_cap`` (replaced at every birth); ``w_top``/``w_bottom``
    are the tracker vectors (device, float64); ``ranks`` and ``step`` as in
    :class:`reference.growth_phases.TrainerState`.
    """

    params: ModelParams
    opt_state: OptState
    growth: GrowthState
    Q_cap: Tensor
    step: int
    ranks: tuple[int, ...]
    w_top: Tensor
    w_bottom: Tensor


@dataclass(frozen=True)
class DeviceProbe:
    """The probe on the device in float64, beside its host form (for the reference's invariants)."""

    x: Tensor
    labels: Tensor
    host: Probe

    @staticmethod
    def of(probe: Probe, device: str | torch.device) -> DeviceProbe:
        x = torch.tensor(probe.x, dtype=torch.float64, device=device)
        return DeviceProbe(x=x, labels=torch.tensor(probe.labels, device=device), host=probe)


# --------------------------------------------------------------------------------------------------
# Parameter surgery on the device (the mirror of reference.surgery's add/remove)
# --------------------------------------------------------------------------------------------------


def as_float64(params: ModelParams) -> ModelParams:
    """Detached float64 tensors of ``params`` (the same storage when they already are float64)."""

    def c(t: Tensor) -> Tensor:
        return t.detach().to(torch.float64)

    return replace(
        params,
        W_in=c(params.W_in),
        E_pos=c(params.E_pos),
        heads=params.heads.map(lambda _, t: c(t)),
        P=c(params.P),
        W_c=c(params.W_c),
        b_c=c(params.b_c),
    )


def add_head(
    params: ModelParams,
    cfg: ref_model.LayerConfig,
    *,
    rng: np.random.Generator,
    head: ref_model.HeadParams | None = None,
) -> tuple[ModelParams, int]:
    """A new head drawn by :func:`reference.model.init_head` from ``rng`` (so the engines agree), or the
    given host ``head`` (a growth variant's newborn, :func:`reference.growth_phases.newborn_head`),
    appended as the last row of the stacked head tensors (new leaves on the parameters' device and
    dtype; the other rows are copied bit for bit). The optimiser state gets its rows from
    :meth:`TorchBackend.add_head` (``opt_state.with_head``)."""
    host = ref_model.init_head(cfg, rng) if head is None else head
    new_id = params.next_head_id

    def grown(f: str, t: Tensor) -> Tensor:
        row = torch.tensor(np.asarray(getattr(host, f)), dtype=t.dtype, device=t.device)
        return torch.cat([t.detach(), row[None]]).requires_grad_(True)

    heads = params.heads.map(grown, ids=(*params.heads.ids, new_id))
    return replace(params, heads=heads, next_head_id=new_id + 1), new_id


def remove_head(params: ModelParams, head_id: int) -> ModelParams:
    """``params`` without head ``head_id`` (its id is retired): its row deleted from the stacked head
    tensors (new leaves; the other rows copied bit for bit)."""
    if head_id not in params.heads or len(params.heads) == 1:
        raise ValueError(f"head_id: {head_id} is not a removable head; active ids are {sorted(params.heads)}")
    i = params.heads.row(head_id)
    keep = [j for j in range(len(params.heads)) if j != i]
    ids = tuple(h for h in params.heads.ids if h != head_id)
    return replace(params, heads=params.heads.map(lambda _, t: t.detach()[keep].requires_grad_(True), ids=ids))


def remove_prototype_column(params: ModelParams, proto_id: int) -> ModelParams:
    """``params`` without prototype ``proto_id``'s column of ``P`` (a new leaf)."""
    j = params.prototype_ids.index(proto_id)
    keep = [i for i in range(params.P.shape[1]) if i != j]
    P = params.P.detach()[:, keep].clone().requires_grad_(True)
    ids = params.prototype_ids[:j] + params.prototype_ids[j + 1 :]
    return replace(params, P=P, prototype_ids=ids)


# --------------------------------------------------------------------------------------------------
# Statistics on the device
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Statistics:
    """``C``, the stacked ``M_a^h`` (id order), ``A_res`` and its ``eigh`` (ascending) on the device."""

    C: Tensor
    M_a: Tensor
    A_res: Tensor
    lam: Tensor
    V: Tensor

    @property
    def lam_max(self) -> float:
        return float(self.lam[-1])

    def u_max(self) -> np.ndarray:
        """The unit top eigenvector with :func:`reference.incrt.operators.fix_sign`'s sign, on the host."""
        u = to_host(self.V[:, -1])
        i = int(np.argmax(np.abs(u)))
        return u if u[i] >= 0.0 else -u


def statistics(params64: ModelParams, X: Tensor, Q_cap: Tensor) -> Statistics:
    """The statistics of the layer input ``X`` (B×T×d, the probe's) and the heads of ``params64``."""
    C = second_moment(X.reshape(-1, X.shape[-1]))
    M_a = head_operators(params64)
    A = residual_operator(C, M_a.sum(dim=0), Q_cap)
    lam, V = torch.linalg.eigh(A)
    return Statistics(C=C, M_a=M_a, A_res=A, lam=lam, V=V)


def probe_forward(
    params64: ModelParams, ctx: Context, probe: DeviceProbe
) -> tuple[Tensor, Tensor, Tensor, dict[int, Tensor]]:
    """``(X, Y, Q, A)`` of the layer on the probe, without a graph: the layer input, the tokens
    (flattened), their assignments (:func:`accelerated.step.probe_assignments`) and every head's
    attention matrix (B×T×T, by head id). One attention forward for all heads, arranged as the training
    step's (:func:`accelerated.step.head_projections`: scores ``(X W_Q)(X W_K)ᵀ`` over ``d_k`` instead of
    ``X M_h Xᵀ`` over ``d``) with the softmax written out, because the coupling statistics read each
    head's attention; ``Y = X + Σ_h U_h`` is formed from the same attention, so every token a check
    compares (before and after a birth) comes from one path."""
    with torch.no_grad():
        X = layer_input(params64, probe.x)
        h = params64.heads
        q, k, v = head_projections(X, h.W_Q, h.W_K, h.W_V, h.s)
        A = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        Y = (X + output_projection(A @ v, h.W_O)).reshape(-1, X.shape[-1])
        attention = {hid: A[:, i] for i, hid in enumerate(h.ids)}
        return X, Y, probe_assignments(Y, params64.P, ctx.layer_cfg.T_P), attention


def probe_tokens(params64: ModelParams, ctx: Context, probe: DeviceProbe) -> tuple[Tensor, Tensor]:
    """``(Y, Q)`` of the layer on the probe (:func:`probe_forward`)."""
    _, Y, Q, _ = probe_forward(params64, ctx, probe)
    return Y, Q


def prototype_masses(params64: ModelParams, Q: Tensor, growth: GrowthState) -> np.ndarray:
    """``n_j/n`` from the probe's assignments ``Q`` (columns in ``params64``'s prototype order), in the
    order of ``growth.prototypes`` (as the reference's)."""
    mean = to_host(Q.mean(dim=0))
    col = {pid: j for j, pid in enumerate(params64.prototype_ids)}
    return np.array([mean[col[pid]] for pid in growth.prototype_ids], dtype=np.float64)


def collapse_status(Y: Tensor, T_P: float) -> CollapseStatus:
    """D4's report at ``T_P`` with ``T_c = 2λ_max(Cov Y)`` (1/n convention) computed on the device."""
    E = Y - Y.mean(dim=0, keepdim=True)
    lam = float(torch.linalg.eigvalsh(E.T @ E / Y.shape[0])[-1])
    return CollapseStatus(T_P, 2.0 * lam, 4.0 * lam)


# --------------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DeviceMeasured:
    """The device's side of a :class:`reference.growth_phases.Measured`: the probe, the statistics, the
    probe's assignments ``Q`` and the head strengths ``G`` of the measured parameters (``source``, whose
    head ids are ``heads``, and their float64 cast ``params64``)."""

    probe: DeviceProbe
    stats: Statistics
    heads: list[int]
    Q_probe: Tensor
    source: ModelParams
    params64: ModelParams
    G: Tensor

    def params_of(self, state: AcceleratedState) -> tuple[ModelParams, bool]:
        """``(float64 parameters of state, whether they are the measured ones)``: the measured cast is
        reused while the state holds the parameters it was taken from (no birth or prune since)."""
        if state.params is self.source:
            return self.params64, True
        return as_float64(state.params), False


def _device(measured: Measured) -> DeviceMeasured:
    native = measured.native
    if not isinstance(native, DeviceMeasured):
        raise TypeError(f"measured.native: expected the torch backend's DeviceMeasured, got {type(native).__name__}")
    return native


class TorchBackend:
    """:class:`reference.growth_phases.GrowthBackend` on an :class:`AcceleratedState`, on the device of
    its ``Q_cap``."""

    def measure(self, ctx: Context, state: AcceleratedState, probe: Probe) -> Measured:
        dprobe = DeviceProbe.of(probe, state.Q_cap.device)
        params64 = as_float64(state.params)
        X, Y_probe, Q_probe, attention = probe_forward(params64, ctx, dprobe)
        stats = statistics(params64, X, state.Q_cap)
        coupling = coupling_statistics(
            to_host(params64.P), to_host(Q_probe), {h: to_host(A) for h, A in attention.items()}
        )
        G = head_strengths(stats.C, stats.M_a)
        strengths = {h: float(G[i]) for i, h in enumerate(params64.heads)}
        return Measured(
            probe=probe,
            C=to_host(stats.C),
            A_res=to_host(stats.A_res),
            lam_max=stats.lam_max,
            lam_min=float(stats.lam[0]),
            u_max=stats.u_max(),
            fro=float(torch.linalg.matrix_norm(stats.A_res)),
            spectrum=tuple(to_host(stats.lam)[::-1].tolist()),
            head_strength=dict(sorted(strengths.items())),
            tau={h: params64.heads[h].tau for h in sorted(params64.heads)},
            n_heads=len(params64.heads),
            n_prototypes=int(params64.P.shape[1]),
            tokens=to_host(Y_probe),
            collapse=collapse_status(Y_probe, ctx.layer_cfg.T_P),
            coupling=coupling,
            native=DeviceMeasured(dprobe, stats, list(params64.heads), Q_probe, state.params, params64, G),
        )

    def track(self, ctx: Context, state: AcceleratedState, measured: Measured) -> Tracked[AcceleratedState]:
        """The reference's trackers (:func:`reference.incrt.trackers.oja_track` and ``mca_exin_track``,
        warm-started by :func:`reference.growth_phases.warm_start`) on the host copy of ``A_res`` the check
        already holds; their gaps against the device's ``eigh``. Why on the host: ``2·tracker_steps``
        products of a d×d matrix with a vector are dispatch-bound — NumPy's per-operation cost is about
        half of torch's on a CPU (docs/performance.md, "The growth check, third pass"), and on a GPU each
        would be a kernel launch — and the reference's code is the spec, so the two engines' trackers are
        one implementation."""
        stats = _device(measured).stats
        A = measured.A_res
        n = ctx.train_cfg.tracker_steps
        Q_cap = state.growth.Q_cap
        oja = oja_track(A, warm_start(to_host(state.w_top), Q_cap), certified_step(A), n)
        w_b = warm_start(to_host(state.w_bottom), Q_cap)
        exin = mca_exin_track(A, w_b, certified_step(A, float(w_b @ w_b)), n)
        lam, V = to_host(stats.lam), to_host(stats.V)

        def gap(res: TrackerResult, i: int) -> tuple[float, float]:
            return abs(res.estimate - float(lam[i])), abs(float(V[:, i] @ unit_vector(res.w)))

        gaps = (*gap(oja, -1), *gap(exin, 0))
        dev = state.w_top.device

        def device_unit(w: np.ndarray) -> Tensor:
            return torch.tensor(unit_vector(w), dtype=torch.float64, device=dev)

        new = replace(state, w_top=device_unit(oja.w), w_bottom=device_unit(exin.w))
        return Tracked(new, gaps, lambda: (oja, exin))

    def head_ids(self, state: AcceleratedState) -> list[int]:
        return list(state.params.heads)

    def prototype_ids(self, state: AcceleratedState) -> tuple[int, ...]:
        return tuple(state.params.prototype_ids)

    def next_head_id(self, state: AcceleratedState) -> int:
        return state.params.next_head_id

    def head_statistics(
        self, ctx: Context, state: AcceleratedState, measured: Measured
    ) -> tuple[dict[int, float], Callable[[tuple[int, ...]], float]]:
        """``G_h`` of every head and ``λ_max(A_res)`` of the remaining heads by ``eigvalsh`` on the device
        (the measured ``M_a^h`` and ``G_h`` when the heads are the measured ones)."""
        native = _device(measured)
        C = native.stats.C
        params64, same = native.params_of(state)
        ids = list(params64.heads)
        M_a = native.stats.M_a if same else head_operators(params64)
        G = native.G if same else head_strengths(C, M_a)

        def lam_max_of(heads: tuple[int, ...]) -> float:
            idx = [ids.index(h) for h in heads]
            return float(torch.linalg.eigvalsh(residual_operator(C, M_a[idx].sum(dim=0), state.Q_cap))[-1])

        return {h: float(G[i]) for i, h in enumerate(ids)}, lam_max_of

    def masses(self, ctx: Context, state: AcceleratedState, measured: Measured) -> np.ndarray:
        """The masses after the head decisions (as the reference's); the measured ``Q`` is reused when
        no head was born or pruned (the tokens then have not changed)."""
        native = _device(measured)
        params64, _ = native.params_of(state)
        Q = native.Q_probe
        if list(params64.heads) != native.heads:
            Q = probe_tokens(params64, ctx, native.probe)[1]
        return prototype_masses(params64, Q, state.growth)

    def probe_tokens(self, ctx: Context, state: AcceleratedState, measured: Measured) -> np.ndarray:
        return to_host(probe_tokens(as_float64(state.params), ctx, _device(measured).probe)[0])

    def host_params(self, state: AcceleratedState) -> ref_model.ModelParams:
        return to_reference(state.params)

    def add_head(
        self, ctx: Context, state: AcceleratedState, head: ref_model.HeadParams, rng: np.random.Generator
    ) -> tuple[AcceleratedState, int]:
        params, hid = add_head(state.params, ctx.layer_cfg, rng=rng, head=head)
        return replace(state, params=params, opt_state=state.opt_state.with_head(hid)), hid

    def remove_head(self, state: AcceleratedState, head_id: int) -> AcceleratedState:
        names = head_param_names(head_id)
        return replace(state, params=remove_head(state.params, head_id), opt_state=state.opt_state.without(names))

    def remove_prototype(self, state: AcceleratedState, prototype_id: int) -> tuple[AcceleratedState, int]:
        j = state.params.prototype_ids.index(prototype_id)
        params = remove_prototype_column(state.params, prototype_id)
        return replace(state, params=params, opt_state=state.opt_state.without_column("P", j)), j

    def with_growth(self, state: AcceleratedState, growth: GrowthState, ranks: tuple[int, ...]) -> AcceleratedState:
        """The controller's state, and the device's float64 copy of its ``Q_cap`` when it changed (a birth)."""
        Q_cap = state.Q_cap
        if growth.Q_cap is not state.growth.Q_cap:
            Q_cap = torch.tensor(growth.Q_cap, dtype=torch.float64, device=state.Q_cap.device)
        return replace(state, growth=growth, ranks=ranks, Q_cap=Q_cap)

    def tracker_vectors(self, state: AcceleratedState) -> tuple[np.ndarray, np.ndarray]:
        return to_host(state.w_top), to_host(state.w_bottom)

    def with_trackers(self, state: AcceleratedState, w_top: np.ndarray, w_bottom: np.ndarray) -> AcceleratedState:
        dev = state.w_top.device
        return replace(
            state,
            w_top=torch.tensor(w_top, dtype=torch.float64, device=dev),
            w_bottom=torch.tensor(w_bottom, dtype=torch.float64, device=dev),
        )

    def author_track(self, ctx: Context, state: AcceleratedState, measured: Measured) -> AcceleratedState:
        """The ``author_code`` trackers' step on the device, on ``S = N·A_res``; ``g*`` from the host's
        exact spectrum (the reference's function, so both engines weight the coupling alike)."""
        scale = author_scale(measured)
        g = gamma_star(*spectral_gaps(scale * np.asarray(measured.spectrum, dtype=np.float64)))
        S = scale * _device(measured).stats.A_res
        u_plus, u_minus = acc_trk.author_track(S, state.w_top, state.w_bottom, g)
        return replace(state, w_top=u_plus, w_bottom=u_minus)


TORCH_BACKEND = TorchBackend()


def growth_check(
    ctx: Context, state: AcceleratedState, probe: Probe
) -> tuple[AcceleratedState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
    """One check of SPEC §3 on the device: :func:`reference.growth_phases.run_check` with :class:`TorchBackend`."""
    return run_check(TORCH_BACKEND, ctx, state, probe)


__all__ = [
    "TORCH_BACKEND",
    "AcceleratedState",
    "DeviceMeasured",
    "DeviceProbe",
    "Statistics",
    "TorchBackend",
    "add_head",
    "as_float64",
    "collapse_status",
    "growth_check",
    "probe_forward",
    "probe_tokens",
    "prototype_masses",
    "remove_head",
    "remove_prototype_column",
    "statistics",
]
