"""The phases of a growth check (SPEC §3), as pure functions of frozen values.

Every ``g`` steps, on the fixed probe: form ``C = X̄ᵀX̄/n`` from the layer input, ``M_a^h`` per active
head, ``A_res = Π⊥ ½[C, M_a] Π⊥`` (:mod:`reference.growth_statistics`); run the Oja / MCA-EXIN trackers
on ``A_res`` and record their gap to the exact oracle (:func:`track_phase`, G6); then grow
(:func:`grow_phase`, G1 at each birth and G2–G4 on that check's ``A_res`` held fixed), prune heads
(:func:`prune_phase`, G5 at each prune) and prune prototypes (:func:`prototype_prune_phase`, D5 at
each prune). :func:`growth_check` runs them in that order. The decisions are
:mod:`reference.incrt.controller`'s and the invariants :mod:`reference.invariants`'; the phases apply
the decisions to the parameters and the optimiser state, and record the results.

Births initialise the new head from ``numpy.random.default_rng([seed, head_id])`` (:func:`birth_rng`):
a head's initial weights depend only on the run's seed and its id, not on when it was born. The
optimiser's state of existing parameters is never touched by a birth (Adam creates the new head's
moments at its first step); a head prune drops that head's state; a prototype prune removes the
column of ``P``'s state (:func:`reference.optim.remove_state_column`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_count, f64
from reference.coupling_statistics import attention_entropy, prototype_separation, variance_gradient_norm
from reference.growth_statistics import Probe, head_operators, probe_second_moment, prototype_masses, residual_for
from reference.incrt.capture import greedy_capture, greedy_capture_tracked, numerical_rank
from reference.incrt.controller import (
    EventKind,
    GrowthConfig,
    GrowthEvent,
    GrowthState,
    calibrate_thresholds,
    grow_check,
    prototype_prune_check,
    prune_check,
    record_newborn_strength,
)
from reference.incrt.operators import (
    antisymmetric_part,
    complement_projector,
    eigenvalues_desc,
    exact_extremes,
    frobenius,
    head_strength,
    unit,
)
from reference.incrt.trackers import certified_step, mca_exin_track, oja_track, tracker_gap
from reference.invariants.ddcl import REFERENCE_OPS, collapse_status, d5_prototype_pruning
from reference.invariants.incrt import check_g1, check_g2, check_g3, check_g4, check_g6
from reference.invariants.pruning import check_g5_at_prune, check_no_retrigger
from reference.log import (
    EVENT_BIRTH,
    EVENT_CHECK,
    EVENT_HEAD_PRUNE,
    EVENT_PROTOTYPE_PRUNE,
    CheckRecord,
    InvariantRecord,
)
from reference.model import HeadParams, LayerConfig, ModelParams, forward, init_head, score_operator
from reference.optim import SGD, Adam, AdamMoments, AdamState, SGDState, remove_state_column
from reference.surgery import (
    HEAD_PARAM_NAMES,
    add_head,
    head_param_name,
    prototype_column,
    remove_head,
    remove_prototype_column,
)
from reference.train_config import OptState, TrainConfig, make_optimizer


@dataclass(frozen=True)
class Context:
    """What stays fixed during a run: the layer, the training config and the growth thresholds."""

    layer_cfg: LayerConfig
    train_cfg: TrainConfig
    growth_cfg: GrowthConfig

    @property
    def optimizer(self) -> SGD | Adam:
        return make_optimizer(self.train_cfg)


@dataclass(frozen=True, eq=False)
class TrainerState:
    """Everything that changes during a run.

    ``step`` counts optimiser steps taken; ``ranks`` is the numerical rank of ``Q_cap`` initially and
    after each birth (claim G1's input); ``w_top``/``w_bottom`` are the Oja / MCA-EXIN tracker
    vectors, carried from check to check (unit length).
    """

    params: ModelParams
    opt_state: OptState
    growth: GrowthState
    step: int
    ranks: tuple[int, ...]
    w_top: Float64[np.ndarray, " d"]
    w_bottom: Float64[np.ndarray, " d"]

    def __post_init__(self) -> None:
        check_count("TrainerState.step", self.step, 0)
        if len(self.ranks) == 0:
            raise ValueError("TrainerState.ranks: expected at least the initial rank of Q_cap")
        d = self.params.W_in.shape[1]
        for name in ("w_top", "w_bottom"):
            w = check_array(f"TrainerState.{name}", getattr(self, name), 1)
            if w.shape != (d,):
                raise ValueError(f"TrainerState.{name}: expected shape ({d},) (the model width), got {w.shape}")


@dataclass(frozen=True)
class PhaseResult:
    """What one phase of a check did: the new state, its events and the invariants it checked."""

    state: TrainerState
    events: tuple[GrowthEvent, ...]
    invariants: tuple[InvariantRecord, ...]


def unit_vector(v: F64Array) -> F64Array:
    return unit("v", v)


def birth_rng(seed: int, head_id: int) -> np.random.Generator:
    """The generator a newborn head is initialised from: ``default_rng([seed, head_id])``."""
    return np.random.default_rng([seed, head_id])


def calibrate(
    params: ModelParams, train_cfg: TrainConfig, probes: Sequence[Probe]
) -> tuple[GrowthConfig, tuple[float, ...]]:
    """The run's :class:`GrowthConfig` and the calibration norms ``‖A_res^{(i)}‖_F`` (empty if not calibrated).

    SPEC §3.4: ``θ = c_θ · median_i ‖A_res^{(i)}‖_F`` over the calibration probes at initialisation
    (``Q_cap`` empty), ``φ_g = 0.01 θ``; an explicit ``theta`` / ``phi_g`` in ``train_cfg`` wins.
    Under the growth variant ``prune_at_theta``, ``φ_g = θ`` (docs/studies/planted-heads.md §2.2).
    """
    norms: tuple[float, ...] = ()
    if train_cfg.theta is None:
        empty = arr(np.zeros((params.W_in.shape[1], 0)))
        ops = [residual_for(params, probe_second_moment(params, p), empty) for p in probes]
        theta, phi_default = calibrate_thresholds(ops, train_cfg.c_theta)
        norms = tuple(frobenius(A) for A in ops)
    else:
        theta, phi_default = train_cfg.theta, 0.01 * train_cfg.theta
    if "prune_at_theta" in train_cfg.growth_variants:
        # G5: a head's contribution to A_res has spectral norm ≤ G_h, so G_h < θ is below the rule's resolution.
        phi_default = theta
    phi_g = phi_default if train_cfg.phi_g is None else train_cfg.phi_g
    cfg = GrowthConfig(
        theta=theta,
        phi_g=phi_g,
        T_d=train_cfg.T_d,
        T_prune=train_cfg.T_prune,
        eps_K=train_cfg.eps_K,
        variants=train_cfg.growth_variants,
    )
    return cfg, norms


def newborn_head(
    cfg: LayerConfig, rng: np.random.Generator, u_plus: Float64[np.ndarray, " d"], variants: tuple[str, ...]
) -> HeadParams:
    """The head a birth adds: :func:`reference.model.init_head` drawn from ``rng``; under the variant
    ``birth_along_u_plus`` its queries then read only the captured direction, ``W_Q ← √d · u₊(u₊ᵀW_Q)``
    (``√d`` keeps ``E‖W_Q‖_F² = d_k``, the random draw's). Both engines draw a newborn through this."""
    head = init_head(cfg, rng)
    if "birth_along_u_plus" not in variants:
        return head
    u = unit("u_plus", check_array("u_plus", u_plus, 1))
    return replace(head, W_Q=arr(math.sqrt(cfg.d) * np.outer(u, u @ head.W_Q)))


def newborn_growth_state(
    growth: GrowthState, growth_cfg: GrowthConfig, head_id: int, C: Float64[np.ndarray, "d d"], head: HeadParams
) -> GrowthState:
    """Under ``newborn_margin``: ``growth`` with the newborn's ``G_h^birth = ‖C M_a^h‖_F`` on the birth
    check's ``C`` (the float64 draw, the same in both engines); otherwise ``growth`` unchanged."""
    if "newborn_margin" not in growth_cfg.variants:
        return growth
    M_a = antisymmetric_part(score_operator(head))
    return record_newborn_strength(growth, head_id, head_strength(C, M_a))


def drop_head_state(opt_state: OptState, head_id: int) -> OptState:
    """The optimiser state without head ``head_id``'s entries (every other entry is the same object)."""
    if isinstance(opt_state, SGDState):
        return opt_state
    gone = {head_param_name(head_id, f) for f in HEAD_PARAM_NAMES}
    kept: dict[str, AdamMoments] = {k: v for k, v in opt_state.moments.items() if k not in gone}
    return AdamState(moments=kept)


def warm_start(w: Float64[np.ndarray, " d"], Q_cap: Float64[np.ndarray, "d m"]) -> Float64[np.ndarray, " d"]:
    """The tracker's start at a check: the previous vector deflated against ``Q_cap``, ``Π⊥w/‖Π⊥w‖``.

    Why: right after a birth the Oja vector *is* (up to rounding) the captured ``u₊``, which is now an
    eigenvector of ``A_res`` for the eigenvalue 0 (``A_res Q_cap = 0``) — a fixed point of Oja's rule,
    so a plain warm start stays stuck there and reports ``λ̂ = 0``. Every eigenvector of ``A_res`` for a
    non-zero eigenvalue lies in ``range(Π⊥)``, so deflating loses nothing. When ``‖Π⊥w‖ ≤ 1/2`` (``w``
    mostly captured) the start is the column of ``Π⊥`` of largest norm (``≥ √((d − m)/d)``), which is
    deterministic; with ``m = d`` (``A_res = 0``) ``w`` is kept.
    """
    if frobenius(w) == 0.0:
        raise ValueError("w: the tracker vector is zero (a tracker state must be non-zero)")
    if Q_cap.shape[1] == 0 or Q_cap.shape[1] == Q_cap.shape[0]:
        return unit_vector(w)
    Pi = complement_projector(Q_cap)
    v = arr(Pi @ w)
    if frobenius(v) > 0.5 * frobenius(w):
        return unit_vector(v)
    col = int(np.argmax(np.sum(Pi * Pi, axis=0)))
    return unit_vector(arr(Pi[:, col].copy()))


def track_phase(
    ctx: Context, state: TrainerState, A_res: Float64[np.ndarray, "d d"]
) -> tuple[TrainerState, tuple[float, float, float, float], tuple[InvariantRecord, ...]]:
    """G6: ``tracker_steps`` Oja steps (top) and MCA-EXIN steps (bottom) on ``A_res``, warm-started
    from the previous check, with the certified step ``‖w_0‖²/‖A_res‖_F``. Returns the new tracker
    vectors in the state, ``(|λ̂_max − λ_max|, |cos|, |λ̂_min − λ_min|, |cos|)`` and check_g6's results
    (the static-operator bound for this check's run: ``A_res`` is held fixed while the tracker runs).
    check_g6 emits nothing for a run outside G6's hypotheses (no certified gap at the tracked end, e.g.
    ``λ = 0`` repeated on the captured subspace): such a run is reported through the gaps only, never
    counted as a pass. The start is :func:`warm_start`."""
    n = ctx.train_cfg.tracker_steps
    Q_cap = state.growth.Q_cap
    oja = oja_track(A_res, warm_start(state.w_top, Q_cap), certified_step(A_res), n)
    w_b = warm_start(state.w_bottom, Q_cap)
    exin = mca_exin_track(A_res, w_b, certified_step(A_res, f64(w_b @ w_b)), n)
    gaps = (*tracker_gap(A_res, oja), *tracker_gap(A_res, exin))
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        res = check_g6(A=A_res, tracker=oja) + check_g6(A=A_res, tracker=exin)
        records = tuple(InvariantRecord(state.step, EVENT_CHECK, r) for r in res)
    return replace(state, w_top=unit_vector(oja.w), w_bottom=unit_vector(exin.w)), gaps, records


def static_operator_checks(
    A_res: Float64[np.ndarray, "d d"], theta: float, *, step: int, head_id: int, seed: int
) -> tuple[InvariantRecord, ...]:
    """G2–G4 at a birth, on that check's ``A_res`` held fixed: the static operator the claims speak about.

    The greedy capture with the exact oracle gives G2 (births at the eigenvalues, in order) and G3 (the
    count ``m*``, sufficient and minimal; random competitors from ``default_rng([seed, head_id, 3])``);
    a second capture whose eigenpairs come from an Oja tracker (200 steps from a random start) gives G4
    (two runs agree). Where the tracker certifies nothing, G4's checks are reported as uncertified."""
    exact = greedy_capture(A_res, theta)
    rng = np.random.default_rng([seed, head_id, 3])
    tracked = greedy_capture_tracked(A_res, theta, rng=rng, n_steps=200)
    res = (
        check_g2(A=A_res, theta=theta, capture=exact)
        + check_g3(A=A_res, theta=theta, capture=exact, rng=rng)
        + check_g4(A=A_res, theta=theta, captures=(exact, tracked))
    )
    return tuple(InvariantRecord(step, EVENT_BIRTH, r, head_id=head_id) for r in res)


def grow_phase(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult:
    """SPEC §3.2 on the probe: grow when ``λ_max(A_res) > θ`` and the dwell ``T_d`` has passed.

    On a birth the model gets a new head (seeded by :func:`birth_rng`), ``Q_cap`` gains ``u₊`` and G1
    is checked (orthonormality of ``Q_cap``, its numerical rank raised by one, at most ``d`` births).
    Nothing is grown while ``|𝓗| = max_heads``. Optimiser state is left as it is.
    """
    cap = ctx.train_cfg.max_heads
    if cap is not None and len(state.params.heads) >= cap:
        return PhaseResult(state, (), ())
    C = probe_second_moment(state.params, probe)
    A_res = residual_for(state.params, C, state.growth.Q_cap)
    growth, events = grow_check(state.growth, ctx.growth_cfg, A_res, state.step, new_head_id=state.params.next_head_id)
    births = [e for e in events if e.kind is EventKind.BIRTH]
    if not births:
        return PhaseResult(replace(state, growth=growth), events, ())
    (birth,) = births
    if birth.head_id is None:
        raise RuntimeError("grow_check returned a birth without a head id")
    if birth.u_plus is None:
        raise RuntimeError("grow_check returned a birth without its direction u₊")
    rng = birth_rng(ctx.train_cfg.seed, birth.head_id)
    head = newborn_head(ctx.layer_cfg, rng, birth.u_plus, ctx.growth_cfg.variants)
    params, hid = add_head(state.params, ctx.layer_cfg, rng=rng, head=head)
    if hid != birth.head_id:
        raise RuntimeError(f"head ids out of step: the controller allocated {birth.head_id}, the model {hid}")
    growth = newborn_growth_state(growth, ctx.growth_cfg, hid, C, head)
    ranks = (*state.ranks, numerical_rank(growth.Q_cap))
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        g1 = check_g1(Q_cap=growth.Q_cap, ranks=ranks, theta=ctx.growth_cfg.theta)
        records = tuple(InvariantRecord(state.step, EVENT_BIRTH, r, head_id=hid) for r in g1)
        records += static_operator_checks(
            A_res, ctx.growth_cfg.theta, step=state.step, head_id=hid, seed=ctx.train_cfg.seed
        )
    _check_heads_in_step(params, growth)
    return PhaseResult(replace(state, params=params, growth=growth, ranks=ranks), events, records)


def prune_phase(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult:
    """SPEC §3.3 on the probe: prune heads with ``G_h < φ_g`` for ``T_prune`` checks, under hysteresis.

    Each removal is checked against G5 (:func:`reference.invariants.pruning.check_g5_at_prune`); after
    the last removal, the growth test is re-run on the same probe with the dwell switched off
    (``T_d = 0``): under hysteresis it must not fire (:func:`reference.invariants.pruning.check_no_retrigger`).
    """
    C = probe_second_moment(state.params, probe)
    growth, events = prune_check(state.growth, ctx.growth_cfg, C, head_operators(state.params), state.step)
    pruned = [e.head_id for e in events if e.kind is EventKind.HEAD_PRUNE and e.head_id is not None]
    if not pruned:
        return PhaseResult(replace(state, growth=growth), events, ())
    params, opt_state = state.params, state.opt_state
    records: list[InvariantRecord] = []
    for hid in pruned:
        after = remove_head(params, hid)
        opt_state = drop_head_state(opt_state, hid)
        if ctx.train_cfg.check_invariants:
            res = check_g5_at_prune(
                layer_cfg=ctx.layer_cfg,
                theta=ctx.growth_cfg.theta,
                before=params,
                after=after,
                head_id=hid,
                C=C,
                Q_cap=state.growth.Q_cap,
                probe=probe,
            )
            records.extend(InvariantRecord(state.step, EVENT_HEAD_PRUNE, r, head_id=hid) for r in res)
        params = after
    _check_heads_in_step(params, growth)
    if ctx.train_cfg.check_invariants:
        no_grow = check_no_retrigger(growth_cfg=ctx.growth_cfg, params=params, growth=growth, C=C, step=state.step)
        records.append(InvariantRecord(state.step, EVENT_HEAD_PRUNE, no_grow))
    return PhaseResult(replace(state, params=params, opt_state=opt_state, growth=growth), events, tuple(records))


def prototype_prune_phase(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult:
    """SPEC §3.5 on the probe: remove a prototype whose mass ``n_j/n < ε_K`` for ``T_prune`` checks.

    D5 is checked at each removal on the probe tokens ``Y`` (which do not depend on ``P``), with the
    measured ``ΔF`` computed from the trainer's own ``P`` after removal.
    """
    params = state.params
    mass = prototype_masses(params, ctx.layer_cfg, probe, state.growth)
    growth, events = prototype_prune_check(state.growth, ctx.growth_cfg, mass, state.step)
    pruned = [e.prototype_id for e in events if e.kind is EventKind.PROTOTYPE_PRUNE and e.prototype_id is not None]
    if not pruned:
        return PhaseResult(replace(state, growth=growth), events, ())
    Y = forward(params, ctx.layer_cfg, probe.x, probe.labels).tokens()
    opt_state = state.opt_state
    records: list[InvariantRecord] = []
    for pid in pruned:
        j = prototype_column(params, pid)
        after = remove_prototype_column(params, pid)
        opt_state = _remove_p_column(opt_state, j)
        if ctx.train_cfg.check_invariants:
            ops = replace(REFERENCE_OPS, remove_prototype=measured_removal(params.P, after.P))
            res = d5_prototype_pruning(Y=Y, P=params.P, T_P=ctx.layer_cfg.T_P, j=j, ops=ops)
            records.extend(InvariantRecord(state.step, EVENT_PROTOTYPE_PRUNE, r, prototype_id=pid) for r in res)
        params = after
    if tuple(params.prototype_ids) != growth.prototype_ids:
        raise RuntimeError(
            f"prototype ids out of step: model {params.prototype_ids}, controller {growth.prototype_ids}"
        )
    return PhaseResult(replace(state, params=params, opt_state=opt_state, growth=growth), events, tuple(records))


def _remove_p_column(opt_state: OptState, j: int) -> OptState:
    # remove_state_column is generic in a TypeVar bound to each state type, which a union does not
    # satisfy; the two identical-looking calls let the type checker pick one binding each.
    if isinstance(opt_state, SGDState):
        return remove_state_column(opt_state, "P", j)
    return remove_state_column(opt_state, "P", j)


def measured_removal(P_before: F64Array, P_after: F64Array) -> Callable[[F64Array, int], F64Array]:
    """A ``remove_prototype`` for D5 that returns what the trainer actually kept (so the measured ``ΔF``
    is the trainer's); it refuses to be applied to any other ``P``."""

    def removed(P: F64Array, j: int) -> F64Array:
        if P is not P_before:
            raise ValueError("remove_prototype: this measured removal applies only to the P it was taken from")
        return P_after

    return removed


def _check_heads_in_step(params: ModelParams, growth: GrowthState) -> None:
    if sorted(params.heads) != sorted(growth.head_ids):
        raise RuntimeError(
            f"head bookkeeping out of step: model heads {sorted(params.heads)}, controller {sorted(growth.head_ids)}"
        )


def growth_check(
    ctx: Context, state: TrainerState, probe: Probe
) -> tuple[TrainerState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
    """One check of SPEC §3 on the probe: statistics and trackers (G6), grow (G1), prune heads (G5),
    prune prototypes (D5), in that order."""
    params = state.params
    C = probe_second_moment(params, probe)
    A_res = residual_for(params, C, state.growth.Q_cap)
    ext = exact_extremes(A_res)
    cache = forward(params, ctx.layer_cfg, probe.x, probe.labels)
    collapse = collapse_status(cache.tokens(), ctx.layer_cfg.T_P)
    coupling = coupling_statistics(params.P, cache.Q, {h: hc.A for h, hc in cache.heads.items()})
    Ms = head_operators(params)
    strengths = {h: head_strength(C, M) for h, M in sorted(Ms.items())}
    taus = {h: params.heads[h].tau for h in sorted(params.heads)}
    state, gaps, r_track = track_phase(ctx, state, A_res)
    cap = ctx.train_cfg.max_heads
    capped = cap is not None and len(state.params.heads) >= cap
    grow = grow_phase(ctx, state, probe)
    prune = prune_phase(ctx, grow.state, probe)
    mass = prototype_masses(prune.state.params, ctx.layer_cfg, probe, prune.state.growth)
    proto = prototype_prune_phase(ctx, prune.state, probe)
    events = grow.events + prune.events + proto.events
    record = CheckRecord(
        step=state.step,
        lam_max=ext.lam_max,
        lam_min=ext.lam_min,
        fro=frobenius(A_res),
        spectrum=tuple(eigenvalues_desc(A_res).tolist()),
        theta=ctx.growth_cfg.theta,
        phi_g=ctx.growth_cfg.phi_g,
        rank=state.growth.m,
        n_heads=len(params.heads),
        n_prototypes=params.P.shape[1],
        head_strength=strengths,
        tau=taus,
        mass=dict(zip(prune.state.growth.prototype_ids, mass.tolist(), strict=True)),
        oja_lam_gap=gaps[0],
        oja_cos=gaps[1],
        exin_lam_gap=gaps[2],
        exin_cos=gaps[3],
        capped=capped and ext.lam_max > ctx.growth_cfg.theta,
        births=count_kind(events, EventKind.BIRTH),
        head_prunes=count_kind(events, EventKind.HEAD_PRUNE),
        prototype_prunes=count_kind(events, EventKind.PROTOTYPE_PRUNE),
        collapse_T_c=collapse.T_c_free_energy,
        collapse_margin=collapse.margin_free_energy,
        **coupling,
    )
    return proto.state, record, events, r_track + grow.invariants + prune.invariants + proto.invariants


def coupling_statistics(
    P: Float64[np.ndarray, "d K"], Q: Float64[np.ndarray, "n K"], attention: Mapping[int, F64Array]
) -> dict[str, Any]:
    """The coupling statistics of a check (:mod:`reference.coupling_statistics`) as CheckRecord fields:
    separation and its minimum with the masses ``n_j/n`` of ``Q``, ``‖∇_P V‖_F``, and the attention
    entropy of each head (``attention[h]`` its B×T×T attention on the probe). Both engines call this."""
    S, S_min = prototype_separation(P, arr(Q.mean(axis=0)))
    return {
        "separation": S,
        "min_separation": S_min,
        "grad_V_norm": variance_gradient_norm(P, Q),
        "attention_entropy": {h: attention_entropy(A) for h, A in sorted(attention.items())},
    }


def count_kind(events: Sequence[GrowthEvent], kind: EventKind) -> int:
    return sum(1 for e in events if e.kind is kind)


__all__ = [
    "Context",
    "PhaseResult",
    "TrainerState",
    "birth_rng",
    "calibrate",
    "count_kind",
    "coupling_statistics",
    "drop_head_state",
    "grow_phase",
    "growth_check",
    "measured_removal",
    "newborn_growth_state",
    "newborn_head",
    "prototype_prune_phase",
    "prune_phase",
    "static_operator_checks",
    "track_phase",
    "unit_vector",
    "warm_start",
]
