"""The phases of a growth check on the device (mirrors :mod:`reference.growth_phases`).

Every ``g`` steps, on the fixed probe: ``C``, the stacked ``M_a^h``, ``A_res``, its exact spectrum by
``torch.linalg.eigh`` and the Oja / MCA-EXIN trackers are computed in torch on the parameters'
device (:mod:`accelerated.growth_statistics`, :mod:`accelerated.trackers`). The decisions are the
reference's pure functions of those statistics — :func:`reference.incrt.controller.grow_decision`
(``λ_max``, ``u₊``), :func:`reference.incrt.controller.prune_decision` (``G_h`` and ``λ_max`` of the
remaining heads, which this module computes on the device) and
:func:`reference.incrt.controller.prototype_prune_check` (the masses ``n_j/n``) — so the dwell
time, the strict ``>`` at θ, the hysteresis and the patience counters are one piece of code for both
engines. The invariants (G1, G5, G6, D5) are the reference's, run in float64 on host copies of the
d×d statistics and of the parameters at the events that need them.

A check runs in float64 whatever the training dtype (the parameters are cast for the check): the
decisions are compared with the reference exactly outside near-ties, and the near-tie band is the
float64 DECISION row; the cost is one d×d ``eigh`` and two probe forwards every ``g`` steps. A check
synchronises with the host (decisions are Python control flow); a training step does not.

A birth initialises the new head from :func:`reference.growth_phases.birth_rng` exactly as the
reference does (the same NumPy draws, then moved to the device), so the two engines' heads agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from accelerated import optim as acc_optim
from accelerated import trackers as acc_trk
from accelerated.backward import to_host, to_reference
from accelerated.growth_statistics import head_operators, head_strengths, probe_second_moment, residual_operator
from accelerated.model import HeadParams, ModelParams, heads_forward, layer_input
from accelerated.step import flat_args, stacked_loss
from reference import model as ref_model
from reference.growth_phases import (
    Context,
    birth_rng,
    count_kind,
    coupling_statistics,
    measured_removal,
    newborn_growth_state,
    newborn_head,
    static_operator_checks,
)
from reference.growth_statistics import Probe
from reference.incrt.capture import numerical_rank
from reference.incrt.controller import (
    EventKind,
    GrowthEvent,
    GrowthState,
    grow_decision,
    prototype_prune_check,
    prune_decision,
)
from reference.invariants.ddcl import REFERENCE_OPS, CollapseStatus, d5_prototype_pruning
from reference.invariants.incrt import check_g1, check_g6
from reference.invariants.pruning import check_g5_at_prune, check_no_retrigger
from reference.log import (
    EVENT_BIRTH,
    EVENT_CHECK,
    EVENT_HEAD_PRUNE,
    EVENT_PROTOTYPE_PRUNE,
    CheckRecord,
    InvariantRecord,
)
from reference.surgery import HEAD_PARAM_NAMES, head_param_name

OptState = acc_optim.AdamState | acc_optim.SGDState


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


@dataclass(frozen=True)
class PhaseResult:
    """What one phase did: the new state, its events and the invariants it checked."""

    state: AcceleratedState
    events: tuple[GrowthEvent, ...]
    invariants: tuple[InvariantRecord, ...]


# --------------------------------------------------------------------------------------------------
# Parameter surgery on the device (the mirror of reference.surgery's add/remove)
# --------------------------------------------------------------------------------------------------


def as_float64(params: ModelParams) -> ModelParams:
    """Detached float64 tensors of ``params`` (the same storage when they already are float64)."""

    def c(t: Tensor) -> Tensor:
        return t.detach().to(torch.float64)

    heads = {hid: HeadParams(**{f: c(getattr(h, f)) for f in HEAD_PARAM_NAMES}) for hid, h in params.heads.items()}
    return replace(
        params,
        W_in=c(params.W_in),
        E_pos=c(params.E_pos),
        heads=heads,
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
    given host ``head`` (a growth variant's newborn, :func:`reference.growth_phases.newborn_head`), as
    new leaf tensors on the parameters' device and dtype; no other tensor is touched."""
    host = ref_model.init_head(cfg, rng) if head is None else head
    like = params.W_in

    def leaf(a: object) -> Tensor:
        return torch.tensor(np.asarray(a), dtype=like.dtype, device=like.device).requires_grad_(True)

    new_id = params.next_head_id
    new = HeadParams(W_Q=leaf(host.W_Q), W_K=leaf(host.W_K), W_V=leaf(host.W_V), W_O=leaf(host.W_O), s=leaf(host.s))
    return replace(params, heads={**params.heads, new_id: new}, next_head_id=new_id + 1), new_id


def remove_head(params: ModelParams, head_id: int) -> ModelParams:
    """``params`` without head ``head_id`` (its id is retired)."""
    if head_id not in params.heads or len(params.heads) == 1:
        raise ValueError(f"head_id: {head_id} is not a removable head; active ids are {sorted(params.heads)}")
    return replace(params, heads={h: p for h, p in params.heads.items() if h != head_id})


def remove_prototype_column(params: ModelParams, proto_id: int) -> ModelParams:
    """``params`` without prototype ``proto_id``'s column of ``P`` (a new leaf)."""
    j = params.prototype_ids.index(proto_id)
    keep = [i for i in range(params.P.shape[1]) if i != j]
    P = params.P.detach()[:, keep].clone().requires_grad_(True)
    ids = params.prototype_ids[:j] + params.prototype_ids[j + 1 :]
    return replace(params, P=P, prototype_ids=ids)


def drop_head_state(opt_state: OptState, head_id: int) -> OptState:
    """The optimiser state without head ``head_id``'s entries (every other entry the same object)."""
    if isinstance(opt_state, acc_optim.SGDState):
        return opt_state
    gone = {head_param_name(head_id, f) for f in HEAD_PARAM_NAMES}
    return acc_optim.AdamState({k: v for k, v in opt_state.moments.items() if k not in gone})


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


def statistics(params64: ModelParams, probe: DeviceProbe, Q_cap: Tensor) -> Statistics:
    C = probe_second_moment(params64, probe.x)
    M_a = head_operators(params64)
    A = residual_operator(C, M_a.sum(dim=0), Q_cap)
    lam, V = torch.linalg.eigh(A)
    return Statistics(C=C, M_a=M_a, A_res=A, lam=lam, V=V)


def probe_tokens(params64: ModelParams, ctx: Context, probe: DeviceProbe) -> tuple[Tensor, Tensor]:
    """``(Y, Q)`` of the layer on the probe (flattened tokens), by the step's hot path without a graph."""
    cfg = ctx.layer_cfg
    with torch.no_grad():
        _, _, _, Y, Q = stacked_loss(*flat_args(params64), probe.x, probe.labels, cfg.T_P, cfg.lambda_q)
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
# The phases
# --------------------------------------------------------------------------------------------------


def track_phase(
    ctx: Context, state: AcceleratedState, stats: Statistics
) -> tuple[AcceleratedState, tuple[float, float, float, float], tuple[InvariantRecord, ...]]:
    """G6 as :func:`reference.growth_phases.track_phase`, the trackers running on the device."""
    n = ctx.train_cfg.tracker_steps
    A = stats.A_res
    w_t = acc_trk.warm_start(state.w_top, state.Q_cap)
    oja = acc_trk.oja_track(A, w_t, acc_trk.certified_step(A), n)
    w_b = acc_trk.warm_start(state.w_bottom, state.Q_cap)
    exin = acc_trk.mca_exin_track(A, w_b, acc_trk.certified_step(A, float(w_b @ w_b)), n)

    def gap(res: acc_trk.DeviceTrackerResult, lam: Tensor, v: Tensor) -> tuple[float, float]:
        w = acc_trk.unit_vector(res.w)
        return abs(float(res.estimate - lam)), abs(float(v @ w))

    gaps = (*gap(oja, stats.lam[-1], stats.V[:, -1]), *gap(exin, stats.lam[0], stats.V[:, 0]))
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        A_host = to_host(A)
        res = check_g6(A=A_host, tracker=acc_trk.to_reference(oja)) + check_g6(
            A=A_host, tracker=acc_trk.to_reference(exin)
        )
        records = tuple(InvariantRecord(state.step, EVENT_CHECK, r) for r in res)
    new = replace(state, w_top=acc_trk.unit_vector(oja.w), w_bottom=acc_trk.unit_vector(exin.w))
    return new, gaps, records


def grow_phase(ctx: Context, state: AcceleratedState, stats: Statistics) -> PhaseResult:
    """SPEC §3.2 through :func:`reference.incrt.controller.grow_decision` on the device's ``(λ_max, u₊)``."""
    cap = ctx.train_cfg.max_heads
    if cap is not None and len(state.params.heads) >= cap:
        return PhaseResult(state, (), ())
    growth, events = grow_decision(
        state.growth, ctx.growth_cfg, (stats.lam_max, stats.u_max()), state.step, new_head_id=state.params.next_head_id
    )
    births = [e for e in events if e.kind is EventKind.BIRTH]
    if not births:
        return PhaseResult(replace(state, growth=growth), events, ())
    (birth,) = births
    if birth.head_id is None:
        raise RuntimeError("grow_decision returned a birth without a head id")
    if birth.u_plus is None:
        raise RuntimeError("grow_decision returned a birth without its direction u₊")
    rng = birth_rng(ctx.train_cfg.seed, birth.head_id)
    host = newborn_head(ctx.layer_cfg, rng, birth.u_plus, ctx.growth_cfg.variants)
    params, hid = add_head(state.params, ctx.layer_cfg, rng=rng, head=host)
    if hid != birth.head_id:
        raise RuntimeError(f"head ids out of step: the controller allocated {birth.head_id}, the model {hid}")
    growth = newborn_growth_state(growth, ctx.growth_cfg, hid, to_host(stats.C), host)
    ranks = (*state.ranks, numerical_rank(growth.Q_cap))
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        g1 = check_g1(Q_cap=growth.Q_cap, ranks=ranks, theta=ctx.growth_cfg.theta)
        records = tuple(InvariantRecord(state.step, EVENT_BIRTH, r, head_id=hid) for r in g1)
        records += static_operator_checks(
            to_host(stats.A_res), ctx.growth_cfg.theta, step=state.step, head_id=hid, seed=ctx.train_cfg.seed
        )
    Q_cap = torch.tensor(growth.Q_cap, dtype=torch.float64, device=state.Q_cap.device)
    return PhaseResult(replace(state, params=params, growth=growth, ranks=ranks, Q_cap=Q_cap), events, records)


def prune_phase(ctx: Context, state: AcceleratedState, probe: DeviceProbe, C: Tensor) -> PhaseResult:
    """SPEC §3.3 through :func:`reference.incrt.controller.prune_decision`: ``G_h`` of every head and
    ``λ_max(A_res)`` of the remaining heads (hysteresis) by ``eigvalsh`` on the device; G5 at each
    removal and the no-re-trigger check after the last, as :func:`reference.growth_phases.prune_phase`."""
    params64 = as_float64(state.params)
    ids = list(params64.heads)
    M_a = head_operators(params64)
    G = head_strengths(C, M_a)
    strengths = {h: float(G[i]) for i, h in enumerate(ids)}

    def lam_max_of(heads: tuple[int, ...]) -> float:
        idx = [ids.index(h) for h in heads]
        return float(torch.linalg.eigvalsh(residual_operator(C, M_a[idx].sum(dim=0), state.Q_cap))[-1])

    growth, events = prune_decision(state.growth, ctx.growth_cfg, strengths, lam_max_of, state.step)
    pruned = [e.head_id for e in events if e.kind is EventKind.HEAD_PRUNE and e.head_id is not None]
    if not pruned:
        return PhaseResult(replace(state, growth=growth), events, ())
    params, opt_state = state.params, state.opt_state
    records: list[InvariantRecord] = []
    C_host = to_host(C)
    before_host = to_reference(params) if ctx.train_cfg.check_invariants else None
    for hid in pruned:
        params = remove_head(params, hid)
        opt_state = drop_head_state(opt_state, hid)
        if before_host is not None:
            after_host = to_reference(params)
            res = check_g5_at_prune(
                layer_cfg=ctx.layer_cfg,
                theta=ctx.growth_cfg.theta,
                before=before_host,
                after=after_host,
                head_id=hid,
                C=C_host,
                Q_cap=state.growth.Q_cap,
                probe=probe.host,
            )
            records.extend(InvariantRecord(state.step, EVENT_HEAD_PRUNE, r, head_id=hid) for r in res)
            before_host = after_host
    if before_host is not None:
        no_grow = check_no_retrigger(
            growth_cfg=ctx.growth_cfg, params=before_host, growth=growth, C=C_host, step=state.step
        )
        records.append(InvariantRecord(state.step, EVENT_HEAD_PRUNE, no_grow))
    return PhaseResult(replace(state, params=params, opt_state=opt_state, growth=growth), events, tuple(records))


def prototype_prune_phase(ctx: Context, state: AcceleratedState, probe: DeviceProbe, mass: np.ndarray) -> PhaseResult:
    """SPEC §3.5 through :func:`reference.incrt.controller.prototype_prune_check` on the device's masses;
    D5 at each removal on the probe tokens, as :func:`reference.growth_phases.prototype_prune_phase`."""
    growth, events = prototype_prune_check(state.growth, ctx.growth_cfg, mass, state.step)
    pruned = [e.prototype_id for e in events if e.kind is EventKind.PROTOTYPE_PRUNE and e.prototype_id is not None]
    if not pruned:
        return PhaseResult(replace(state, growth=growth), events, ())
    params, opt_state = state.params, state.opt_state
    Y = to_host(probe_tokens(as_float64(params), ctx, probe)[0]) if ctx.train_cfg.check_invariants else None
    records: list[InvariantRecord] = []
    for pid in pruned:
        j = params.prototype_ids.index(pid)
        after = remove_prototype_column(params, pid)
        if isinstance(opt_state, acc_optim.AdamState):
            opt_state = acc_optim.remove_state_column(opt_state, "P", j)
        if Y is not None:
            P_before = to_host(params.P)
            ops = replace(REFERENCE_OPS, remove_prototype=measured_removal(P_before, to_host(after.P)))
            res = d5_prototype_pruning(Y=Y, P=P_before, T_P=ctx.layer_cfg.T_P, j=j, ops=ops)
            records.extend(InvariantRecord(state.step, EVENT_PROTOTYPE_PRUNE, r, prototype_id=pid) for r in res)
        params = after
    return PhaseResult(replace(state, params=params, opt_state=opt_state, growth=growth), events, tuple(records))


def growth_check(
    ctx: Context, state: AcceleratedState, probe: DeviceProbe
) -> tuple[AcceleratedState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
    """One check of SPEC §3 on the device: statistics and trackers (G6), grow (G1), prune heads (G5),
    prune prototypes (D5), in that order, with the record of :func:`reference.growth_phases.growth_check`."""
    params64 = as_float64(state.params)
    stats = statistics(params64, probe, state.Q_cap)
    Y_probe, Q_probe = probe_tokens(params64, ctx, probe)
    collapse = collapse_status(Y_probe, ctx.layer_cfg.T_P)
    with torch.no_grad():
        heads = heads_forward(params64, layer_input(params64, probe.x))
    coupling = coupling_statistics(to_host(params64.P), to_host(Q_probe), {h: to_host(hc.A) for h, hc in heads.items()})
    G = head_strengths(stats.C, stats.M_a)
    strengths = {h: float(G[i]) for i, h in enumerate(params64.heads)}
    taus = {h: params64.heads[h].tau for h in sorted(params64.heads)}
    state, gaps, r_track = track_phase(ctx, state, stats)
    cap = ctx.train_cfg.max_heads
    capped = cap is not None and len(state.params.heads) >= cap
    grow = grow_phase(ctx, state, stats)
    prune = prune_phase(ctx, grow.state, probe, stats.C)
    # The masses are taken after the head decisions (as the reference's); the probe's Q is reused when
    # no head was born or pruned (the tokens then have not changed).
    after = as_float64(prune.state.params)
    if list(after.heads) != list(params64.heads):
        Q_probe = probe_tokens(after, ctx, probe)[1]
    mass = prototype_masses(after, Q_probe, prune.state.growth)
    proto = prototype_prune_phase(ctx, prune.state, probe, mass)
    events = grow.events + prune.events + proto.events
    record = CheckRecord(
        step=state.step,
        lam_max=stats.lam_max,
        lam_min=float(stats.lam[0]),
        fro=float(torch.linalg.matrix_norm(stats.A_res)),
        spectrum=tuple(to_host(stats.lam)[::-1].tolist()),
        theta=ctx.growth_cfg.theta,
        phi_g=ctx.growth_cfg.phi_g,
        rank=state.growth.m,
        n_heads=len(params64.heads),
        n_prototypes=int(params64.P.shape[1]),
        head_strength=dict(sorted(strengths.items())),
        tau=taus,
        mass=dict(zip(prune.state.growth.prototype_ids, mass.tolist(), strict=True)),
        oja_lam_gap=gaps[0],
        oja_cos=gaps[1],
        exin_lam_gap=gaps[2],
        exin_cos=gaps[3],
        capped=capped and stats.lam_max > ctx.growth_cfg.theta,
        births=count_kind(events, EventKind.BIRTH),
        head_prunes=count_kind(events, EventKind.HEAD_PRUNE),
        prototype_prunes=count_kind(events, EventKind.PROTOTYPE_PRUNE),
        collapse_T_c=collapse.T_c_free_energy,
        collapse_margin=collapse.margin_free_energy,
        **coupling,
    )
    return proto.state, record, events, r_track + grow.invariants + prune.invariants + proto.invariants


__all__ = [
    "AcceleratedState",
    "DeviceProbe",
    "OptState",
    "PhaseResult",
    "Statistics",
    "add_head",
    "as_float64",
    "collapse_status",
    "drop_head_state",
    "grow_phase",
    "growth_check",
    "probe_tokens",
    "prototype_masses",
    "prototype_prune_phase",
    "prune_phase",
    "remove_head",
    "remove_prototype_column",
    "statistics",
    "track_phase",
]
