"""The reference as a conformance adapter: every operation, by the reference's own functions.

Its outputs on the kit's cases are the golden vectors (``ddcl-incrt conformance --regenerate``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ddcl_incrt.conformance.adapter import (
    EVENT_CODES,
    F64,
    FORWARD_ARRAYS,
    FORWARD_SCALARS,
    I64,
    OPERATIONS,
    TrajectoryInputs,
    TrajectoryOutputs,
)
from reference import ddcl
from reference.backward import loss_and_gradients
from reference.growth_phases import Context, TrainerState, birth_rng, growth_check, unit_vector
from reference.growth_statistics import Probe, head_operators, probe_second_moment, residual_for
from reference.incrt.capture import greedy_capture
from reference.incrt.controller import (
    GrowthConfig,
    GrowthState,
    grow_decision,
    initial_state,
    prototype_prune_check,
    prune_check,
)
from reference.incrt.operators import eigenvalues_desc, head_strength
from reference.model import LayerConfig, ModelParams, forward, init_head
from reference.optim import Adam, AdamState, LearningRates
from reference.surgery import HEAD_PARAM_NAMES, flatten, unflatten
from reference.train_config import TrainConfig
from training.trainer import train_step


def probe_of(x: F64) -> Probe:
    """The growth statistics use the probe's inputs only; the labels are placeholders."""
    return Probe(x=np.array(x, dtype=np.float64), labels=np.zeros(x.shape[0], dtype=np.int64))


def trajectory_context(inputs: TrajectoryInputs) -> Context:
    """The reference trainer's context for a :class:`TrajectoryInputs` (thresholds explicit, no invariants)."""
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
    )
    return Context(layer_cfg=inputs.layer_cfg, train_cfg=train_cfg, growth_cfg=g)


def check_births(inputs: TrajectoryInputs) -> None:
    """The reference draws a newborn head from ``birth_rng(seed, id)``; refuse ``births`` that differ."""
    for hid, head in inputs.births.items():
        drawn = init_head(inputs.layer_cfg, birth_rng(inputs.seed, hid))
        for f in HEAD_PARAM_NAMES:
            if not np.array_equal(np.asarray(head[f]), np.asarray(getattr(drawn, f))):
                raise ValueError(f"inputs.births[{hid}].{f}: not the reference's birth_rng({inputs.seed}, {hid}) draw")


def initial_trainer_state(inputs: TrajectoryInputs) -> TrainerState:
    d = inputs.layer_cfg.d
    growth = initial_state(d, inputs.layer_cfg.K_max)
    w = unit_vector(np.ones(d, dtype=np.float64))  # trackers do not take part in any decision
    return TrainerState(
        params=inputs.params, opt_state=AdamState(), growth=growth, step=0, ranks=(0,), w_top=w, w_bottom=w
    )


def run_trajectory(inputs: TrajectoryInputs) -> tuple[TrajectoryOutputs, np.ndarray]:
    """The reference's run of ``inputs`` and its decision statistics: rows ``(step, statistic,
    threshold, kind)`` for every comparison of every check (kind 0: ``λ_max`` vs θ, 1: ``G_h`` vs
    φ_g, 2: ``n_j/n`` vs ε_K), from which the kit finds the first near-tie in any precision."""
    check_births(inputs)
    ctx = trajectory_context(inputs)
    state = initial_trainer_state(inputs)
    losses: list[list[float]] = []
    events: list[tuple[int, int, int, int]] = []
    pairs: list[tuple[float, float, float, float]] = []
    g = inputs.growth_cfg
    for s in range(inputs.batches_x.shape[0]):
        state, step_losses, _ = train_step(ctx, state, inputs.batches_x[s], inputs.batches_labels[s])
        losses.append([step_losses["L"], step_losses["L_task"], step_losses["L_q"]])
        if state.step % inputs.check_every == 0:
            state, rec, evs, _ = growth_check(ctx, state, probe_of(inputs.probe_x))
            pairs.append((rec.step, rec.lam_max, g.theta, 0))
            pairs.extend((rec.step, v, g.phi_g, 1) for v in rec.head_strength.values())
            pairs.extend((rec.step, v, g.eps_K, 2) for v in rec.mass.values())
            for e in evs:
                if e.kind in EVENT_CODES:
                    hid = -1 if e.head_id is None else e.head_id
                    pid = -1 if e.prototype_id is None else e.prototype_id
                    events.append((e.step, EVENT_CODES[e.kind], hid, pid))
    out = TrajectoryOutputs(
        losses=np.array(losses, dtype=np.float64).reshape(-1, 3),
        events=np.array(events, dtype=np.int64).reshape(-1, 4),
        final_params=state.params,
    )
    return out, np.array(pairs, dtype=np.float64).reshape(-1, 4)


class ReferenceAdapter:
    """Every operation of :data:`ddcl_incrt.conformance.adapter.OPERATIONS` by the reference."""

    name = "reference"
    capabilities: frozenset[str] = frozenset(OPERATIONS)

    # primitives --------------------------------------------------------------------------------
    def squared_distances(self, Y: F64, P: F64) -> F64:
        return ddcl.squared_distances(Y, P)

    def soft_assignments(self, D: F64, T_P: float) -> F64:
        return ddcl.soft_assignments(D, T_P)

    def quantisation_loss(self, Y: F64, P: F64, Q: F64) -> float:
        return ddcl.quantisation_loss(Y, P, Q)

    def ols_loss(self, Y: F64, P: F64, Q: F64) -> float:
        return ddcl.ols_loss(Y, P, Q)

    def prototype_variance(self, P: F64, Q: F64) -> float:
        return ddcl.prototype_variance(P, Q)

    def free_energy(self, Y: F64, P: F64, T_P: float) -> float:
        return ddcl.free_energy(Y, P, T_P)

    def mean_entropy(self, Q: F64) -> float:
        return ddcl.mean_entropy(Q)

    def grad_quantisation_fixed_Q(self, Y: F64, P: F64, Q: F64) -> tuple[F64, F64]:
        return ddcl.grad_quantisation_fixed_Q(Y, P, Q)

    def grad_free_energy(self, Y: F64, P: F64, T_P: float) -> tuple[F64, F64]:
        return ddcl.grad_free_energy(Y, P, T_P)

    def grad_variance_fixed_Q(self, P: F64, Q: F64) -> F64:
        return ddcl.grad_variance_fixed_Q(P, Q)

    def grad_quantisation_full(self, Y: F64, P: F64, T_P: float) -> tuple[F64, F64]:
        return ddcl.grad_quantisation_full(Y, P, T_P)

    # the layer ---------------------------------------------------------------------------------
    def layer_forward(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
        cache = forward(params, cfg, x, labels)
        out = {k: np.array(getattr(cache, k), dtype=np.float64) for k in FORWARD_ARRAYS}
        out.update({k: np.array(getattr(cache, k), dtype=np.float64) for k in FORWARD_SCALARS})
        return out

    def layer_gradients(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
        return loss_and_gradients(params, cfg, x, labels)[1]

    # growth ------------------------------------------------------------------------------------
    def growth_statistics(self, params: ModelParams, probe_x: F64, Q_cap: F64) -> Mapping[str, F64]:
        C = probe_second_moment(params, probe_of(probe_x))
        Ms = head_operators(params)
        A = residual_for(params, C, Q_cap)
        ids = sorted(Ms)
        return {
            "C": C,
            "M_a": np.stack([Ms[h] for h in ids]),
            "A_res": A,
            "spectrum": eigenvalues_desc(A),
            "G_h": np.array([head_strength(C, Ms[h]) for h in ids], dtype=np.float64),
        }

    def static_growth(self, A: F64, theta: float) -> tuple[F64, F64]:
        res = greedy_capture(A, theta)
        return res.Q_cap, np.array(res.lam_births, dtype=np.float64)

    def grow_decision(
        self, state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: F64, step: int, new_head_id: int
    ) -> GrowthState:
        return grow_decision(state, config, (lam_max, u_plus), step, new_head_id=new_head_id)[0]

    def prune_decision(
        self, state: GrowthState, config: GrowthConfig, C: F64, M_a: Mapping[int, F64], step: int
    ) -> GrowthState:
        return prune_check(state, config, C, M_a, step)[0]

    def prototype_prune_decision(self, state: GrowthState, config: GrowthConfig, mass: F64, step: int) -> GrowthState:
        return prototype_prune_check(state, config, mass, step)[0]

    # training ----------------------------------------------------------------------------------
    def train_step(
        self, cfg: LayerConfig, params: ModelParams, adam: AdamState, x: F64, labels: I64, lr: LearningRates
    ) -> tuple[ModelParams, AdamState]:
        _, grads = loss_and_gradients(params, cfg, x, labels)
        new, state = Adam(lr=lr).step(adam, flatten(params), grads)
        return unflatten(new, like=params), state

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        return run_trajectory(inputs)[0]


def reference_adapter() -> ReferenceAdapter:
    """The factory ``ddcl_incrt.conformance.adapters.reference:reference_adapter``."""
    return ReferenceAdapter()


__all__ = [
    "ReferenceAdapter",
    "check_births",
    "initial_trainer_state",
    "probe_of",
    "reference_adapter",
    "run_trajectory",
    "trajectory_context",
]
