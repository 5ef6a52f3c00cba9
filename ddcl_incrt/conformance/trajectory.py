"""The kit's ``trajectory`` operation on an engine: a short run given completely, through the training
loop's own body (:func:`training.trainer.advance`), so the reference and the accelerated adapters run
the one loop the trainer runs, with the kit's minibatches instead of drawn ones.
"""

from __future__ import annotations

import numpy as np

from ddcl_incrt.conformance.adapter import EVENT_CODES, F64, CheckStatistics, TrajectoryInputs, TrajectoryOutputs
from reference.growth_phases import Context, TrainerState, birth_rng, growth_config_for, unit_vector
from reference.growth_statistics import Probe
from reference.incrt.author_code import orthogonalised
from reference.incrt.controller import GrowthEvent, GrowthVariant, initial_state
from reference.model import init_head
from reference.optim import AdamState
from reference.surgery import HEAD_PARAM_NAMES
from reference.train_config import TrainConfig
from training.trainer import Engine, EngineState, advance


def probe_of(x: F64) -> Probe:
    """The growth statistics use the probe's inputs only; the labels are placeholders."""
    return Probe(x=np.array(x, dtype=np.float64), labels=np.zeros(x.shape[0], dtype=np.int64))


def trajectory_context(inputs: TrajectoryInputs, growth_variants: tuple[GrowthVariant, ...] = ()) -> Context:
    """The trainer's context for a :class:`TrajectoryInputs` (thresholds explicit, no invariants); the
    kit's trajectories follow SPEC's rule, ``growth_variants`` is for the ports of another rule
    (:mod:`ddcl_incrt.conformance.author_rule`)."""
    g = inputs.growth_cfg
    train_cfg = TrainConfig(
        steps=inputs.batches_x.shape[0],
        batch_size=inputs.batches_x.shape[1],
        optimizer="adam",
        lr=inputs.lr,
        check_every=inputs.check_every,
        probe_size=inputs.probe_x.shape[0],
        theta=g.theta,
        phi_g=g.phi_g,
        T_d=g.T_d,
        T_prune=g.T_prune,
        eps_K=g.eps_K,
        seed=inputs.seed,
        tracker_steps=5,
        check_invariants=False,
        growth_variants=growth_variants,
    )
    # another rule's thresholds as the trainer derives them for its variant (e.g. author_code: no hysteresis)
    growth_cfg = growth_config_for(train_cfg, g.theta) if growth_variants else g
    return Context(layer_cfg=inputs.layer_cfg, train_cfg=train_cfg, growth_cfg=growth_cfg)


def check_births(inputs: TrajectoryInputs) -> None:
    """The engines draw a newborn head from ``birth_rng(seed, id)``; refuse ``births`` that differ."""
    for hid, head in inputs.births.items():
        drawn = init_head(inputs.layer_cfg, birth_rng(inputs.seed, hid))
        for f in HEAD_PARAM_NAMES:
            if not np.array_equal(np.asarray(head[f]), np.asarray(getattr(drawn, f))):
                raise ValueError(f"inputs.births[{hid}].{f}: not the reference's birth_rng({inputs.seed}, {hid}) draw")


def initial_trainer_state(inputs: TrajectoryInputs, growth_variants: tuple[GrowthVariant, ...] = ()) -> TrainerState:
    d = inputs.layer_cfg.d
    growth = initial_state(d, inputs.layer_cfg.K_max)
    w = unit_vector(np.ones(d, dtype=np.float64))  # under SPEC's rule trackers take part in no decision
    w_bottom = w
    if "author_code" in growth_variants:  # the author's trackers decide, from u₋ ⟂ u₊ (cell 5 LayerState)
        w_bottom = orthogonalised(unit_vector(np.arange(1.0, d + 1.0)), w)
    return TrainerState(
        params=inputs.params, opt_state=AdamState(), growth=growth, step=0, ranks=(0,), w_top=w, w_bottom=w_bottom
    )


def event_row(e: GrowthEvent) -> tuple[int, int, int, int] | None:
    """A growth event as the kit's int64 row ``(step, kind, head_id, prototype_id)``; None for an event
    that is not one of :data:`EVENT_CODES` (a near-tie)."""
    if e.kind not in EVENT_CODES:
        return None
    hid = -1 if e.head_id is None else e.head_id
    pid = -1 if e.prototype_id is None else e.prototype_id
    return e.step, EVENT_CODES[e.kind], hid, pid


def run_trajectory(
    engine: Engine[EngineState], inputs: TrajectoryInputs, growth_variants: tuple[GrowthVariant, ...] = ()
) -> tuple[TrajectoryOutputs, F64]:
    """``engine``'s run of ``inputs`` (with every check's statistics and captured basis) and its decision
    statistics: rows ``(step, statistic, threshold,
    kind)`` for every comparison of every check (kind 0: ``λ_max`` vs θ, 1: ``G_h`` vs φ_g, 2:
    ``n_j/n`` vs ε_K), from which the kit finds the first near-tie in any precision."""
    check_births(inputs)
    ctx = trajectory_context(inputs, growth_variants)
    es = engine.start(ctx, initial_trainer_state(inputs, growth_variants))
    probe = probe_of(inputs.probe_x)
    g = inputs.growth_cfg
    losses: list[list[float]] = []
    events: list[tuple[int, int, int, int]] = []
    pairs: list[tuple[float, float, float, float]] = []
    checks: list[CheckStatistics] = []
    for s in range(inputs.batches_x.shape[0]):
        done = advance(engine, ctx, es, inputs.batches_x[s], inputs.batches_labels[s], probe)
        es = done.es
        losses.append([float(done.losses[k]) for k in ("L", "L_task", "L_q")])
        if done.check is not None:
            rec = done.check
            pairs.append((rec.step, rec.lam_max, g.theta, 0))
            pairs.extend((rec.step, v, g.phi_g, 1) for v in rec.head_strength.values())
            pairs.extend((rec.step, v, g.eps_K, 2) for v in rec.mass.values())
            events.extend(row for e in done.events if (row := event_row(e)) is not None)
            Q_cap = np.array(engine.reference_state(es).growth.Q_cap, dtype=np.float64)
            strengths = {int(h): float(v) for h, v in sorted(rec.head_strength.items())}
            checks.append(CheckStatistics(int(rec.step), float(rec.lam_max), strengths, Q_cap))
    out = TrajectoryOutputs(
        losses=np.array(losses, dtype=np.float64).reshape(-1, 3),
        events=np.array(events, dtype=np.int64).reshape(-1, 4),
        final_params=engine.reference_state(es).params,
        checks=tuple(checks),
    )
    return out, np.array(pairs, dtype=np.float64).reshape(-1, 4)


__all__ = ["check_births", "event_row", "initial_trainer_state", "probe_of", "run_trajectory", "trajectory_context"]
