"""Two events at one growth check, on both engines: what the first one changes must be seen by the second.

* A second head prune's hysteresis statistic ``λ_max(A_res)`` is formed from the heads still present,
  i.e. without the head pruned first (SPEC §3.3; ``prune_decision``'s docstring).
* A prototype's column index in ``P`` (and in its optimiser state) is its index after the removals made
  earlier at the same check.
* A head's age, which must reach ``T_d`` before it may be pruned, is measured from its own birth, not
  from the last growth (SPEC §3.3: "no prune of a younger head").

Each case is a whole check (``engine.check``) on a constructed two-dimensional layer whose growth
statistics are known by hand: the probe's tokens are ``(±2, 0)`` and ``W_in = I``, ``E_pos = 0``, so
``C = X̄ᵀX̄/n = diag(4, 0)``; head ``h`` has ``W_Q = (1, 0)ᵀ``, ``W_K = (0, 2m_h)ᵀ``, ``d_k = 1``,
``s = 0``, so ``M_h = W_Q W_Kᵀ`` and ``M_a^h = (M_h − M_hᵀ)/2 = m_h J`` with ``J = [[0, 1], [−1, 0]]``.
Then ``½(C M_a + (C M_a)ᵀ) = 2(Σ_h m_h)·[[0, 1], [1, 0]]`` (nothing captured, ``Π⊥ = I``), whose
largest eigenvalue is ``λ_max = 2|Σ_h m_h|``, and ``G_h = ‖C M_a^h‖_F = 4|m_h|``. Every ``W_V`` is 0,
so the tokens are ``Y = X`` whatever the attention.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from reference.growth_phases import Context, TrainerState
from reference.growth_statistics import Probe
from reference.incrt.controller import EventKind, GrowthConfig, GrowthEvent, GrowthState, HeadRecord, PrototypeRecord
from reference.model import HeadParams, LayerConfig, ModelParams
from reference.optim import AdamMoments, AdamState, LearningRates
from reference.train_config import TrainConfig
from training.trainer import ReferenceEngine

LAYER = LayerConfig(d_in=2, d=2, d_k=1, d_v=1, seq_len=2, K_max=4, n_classes=2, T_P=1.0, lambda_q=0.0)
STEP = 100  # the step of the check
FAR = 1024.0  # a prototype this far from every token gets assignment exp(−FAR²) = 0 exactly: mass 0
NEAR_P = np.array([[2.0, -2.0], [0.0, 0.0]])  # prototypes on the two tokens: mass ½ each


def _head(m: float) -> HeadParams:
    return HeadParams(
        W_Q=np.array([[1.0], [0.0]]),
        W_K=np.array([[0.0], [2.0 * m]]),
        W_V=np.zeros((2, 1)),
        W_O=np.zeros((1, 2)),
        s=0.0,
    )


def _probe() -> Probe:
    x = np.array([[[2.0, 0.0], [-2.0, 0.0]]] * 4)  # 8 tokens (±2, 0): C = diag(4, 0) exactly
    return Probe(x=x, labels=np.array([0, 1, 0, 1]))


@dataclass(frozen=True)
class Case:
    m: dict[int, float]  # head id -> m_h
    births: dict[int, int]  # head id -> birth step
    last_growth: int
    P: np.ndarray  # d×K, columns in prototype id order 0..K−1
    growth_cfg: GrowthConfig

    def context_and_state(self) -> tuple[Context, TrainerState]:
        K = self.P.shape[1]
        params = ModelParams(
            W_in=np.eye(2),
            E_pos=np.zeros((2, 2)),
            heads={h: _head(m) for h, m in self.m.items()},
            next_head_id=max(self.m) + 1,
            P=self.P,
            prototype_ids=tuple(range(K)),
            W_c=np.zeros((2, 2)),
            b_c=np.zeros(2),
        )
        # Adam's moments of P: column j holds j + 1 (and (j + 1)/8), so a removed column shows which one
        cols = np.arange(1.0, K + 1.0)
        moments = {"P": AdamMoments(m=np.tile(cols, (2, 1)), v=np.tile(cols / 8.0, (2, 1)), t=3)}
        growth = GrowthState(
            Q_cap=np.zeros((2, 0)),
            last_growth_step=self.last_growth,
            heads=tuple(HeadRecord(h, self.births[h]) for h in sorted(self.m)),
            prototypes=tuple(PrototypeRecord(j) for j in range(K)),
        )
        state = TrainerState(
            params=params,
            opt_state=AdamState(moments),
            growth=growth,
            step=STEP,
            ranks=(0,),
            w_top=np.array([0.6, 0.8]),
            w_bottom=np.array([0.8, -0.6]),
        )
        cfg = self.growth_cfg
        train = TrainConfig(
            steps=200,
            lr=LearningRates.uniform(1e-2),
            check_every=10,
            probe_size=4,
            theta=cfg.theta,
            phi_g=cfg.phi_g,
            T_d=cfg.T_d,
            T_prune=cfg.T_prune,
            eps_K=cfg.eps_K,
            tracker_steps=5,
        )
        return Context(layer_cfg=LAYER, train_cfg=train, growth_cfg=cfg), state


def _reference_check(ctx: Context, state: TrainerState) -> tuple[TrainerState, tuple[GrowthEvent, ...], Any]:
    engine = ReferenceEngine()
    new, _, events, invariants = engine.check(ctx, engine.start(ctx, state), _probe())
    return engine.reference_state(new), events, invariants


def _accelerated_check(ctx: Context, state: TrainerState) -> tuple[TrainerState, tuple[GrowthEvent, ...], Any]:
    torch = pytest.importorskip("torch")
    from accelerated.trainer import AcceleratedEngine

    engine = AcceleratedEngine(torch.float64)
    new, _, events, invariants = engine.check(ctx, engine.start(ctx, state), _probe())
    return engine.reference_state(new), events, invariants


ENGINES: dict[str, Callable[[Context, TrainerState], tuple[TrainerState, tuple[GrowthEvent, ...], Any]]] = {
    "reference": _reference_check,
    "accelerated": _accelerated_check,
}


def _decisions(events: Sequence[GrowthEvent]) -> list[tuple[EventKind, int | None]]:
    return [
        (e.kind, e.head_id if e.kind is EventKind.HEAD_PRUNE else e.prototype_id)
        for e in events
        if e.kind is not EventKind.NEAR_TIE
    ]


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_the_second_prunes_hysteresis_is_taken_without_the_head_pruned_first(engine: str) -> None:
    """Heads m = (1/2, −1/16, 1/8), θ = 27/16, φ_g = 3/4, T_prune = 1, T_d = 0.

    ``G = (2, 1/4, 1/2)``: heads 1 and 2 are weak, head 1 (the smaller ``G``) is tried first. With all
    three heads ``λ_max = 2|1/2 − 1/16 + 1/8| = 9/8`` (no birth: ``9/8 < θ``); ``9/8 + 1/4 = 22/16 ≤ θ``,
    so head 1 goes. Head 2 then sees heads {0, 2}: ``λ_max = 2|1/2 + 1/8| = 5/4`` and ``5/4 + 1/2 =
    28/16 > 27/16``: head 2 stays. (Formed with head 1 still counted it would read ``9/8 + 1/2 = 26/16
    ≤ θ`` and head 2 would go too.)"""
    cfg = GrowthConfig(theta=27 / 16, phi_g=0.75, T_d=0, T_prune=1, eps_K=0.0)
    case = Case({0: 0.5, 1: -1 / 16, 2: 1 / 8}, {0: 0, 1: 0, 2: 0}, 0, NEAR_P, cfg)
    after, events, invariants = ENGINES[engine](*case.context_and_state())
    assert _decisions(events) == [(EventKind.HEAD_PRUNE, 1)]
    (prune,) = [e for e in events if e.kind is EventKind.HEAD_PRUNE]
    assert prune.lam_max == pytest.approx(9 / 8, rel=1e-14)
    assert prune.statistic == pytest.approx(1 / 4, rel=1e-14)
    assert sorted(after.params.heads) == [0, 2]
    assert after.growth.head_ids == (0, 2)
    assert all(r.result.holds for r in invariants)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_prototypes_column_is_taken_after_the_removal_before_it(engine: str) -> None:
    """Prototypes 0 and 2 lie ``FAR`` from every token (mass exactly 0 < ε_K = 1/4), 1 and 3 on the
    tokens (mass ½ each). Equal masses go in id order: 0 first (column 0), then 2, which is column 1
    once column 0 is gone (its original column 2 now holds prototype 3). What remains of ``P`` and of
    Adam's moments of ``P`` is the original columns 1 and 3 (moments 2 and 4)."""
    P = np.array([[FAR, 2.0, -FAR, -2.0], [FAR, 0.0, FAR, 0.0]])
    cfg = GrowthConfig(theta=4.0, phi_g=0.0, T_d=0, T_prune=1, eps_K=0.25)
    case = Case({0: 0.5}, {0: 0}, 0, P, cfg)
    ctx, state = case.context_and_state()
    after, events, invariants = ENGINES[engine](ctx, state)
    assert _decisions(events) == [(EventKind.PROTOTYPE_PRUNE, 0), (EventKind.PROTOTYPE_PRUNE, 2)]
    assert after.params.prototype_ids == (1, 3)
    np.testing.assert_array_equal(after.params.P, P[:, [1, 3]])
    assert isinstance(after.opt_state, AdamState)
    moments = after.opt_state.moments["P"]
    np.testing.assert_array_equal(moments.m, np.array([[2.0, 4.0], [2.0, 4.0]]))
    np.testing.assert_array_equal(moments.v, np.array([[2.0, 4.0], [2.0, 4.0]]) / 8.0)
    assert [p.prototype_id for p in after.growth.prototypes] == [1, 3]
    assert all(r.result.holds for r in invariants)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_heads_age_runs_from_its_own_birth_not_from_the_last_growth(engine: str) -> None:
    """Heads m = (1/2, 1/16, 1/16): head 1 born at step 10, head 2 at 95 (the last growth), T_d = 20,
    check at step 100, φ_g = 3/4 (both weak, ``G = 1/4``), θ = 4 (``λ_max = 5/4``: no birth, and every
    hysteresis test ``≤ 5/4 + 1/4`` passes). Head 1 is 90 steps old: pruned. Head 2 is 5 steps old:
    kept. (Measured from the last growth, both would be 5 steps old and both kept.)"""
    cfg = GrowthConfig(theta=4.0, phi_g=0.75, T_d=20, T_prune=1, eps_K=0.0)
    case = Case({0: 0.5, 1: 1 / 16, 2: 1 / 16}, {0: 0, 1: 10, 2: 95}, 95, NEAR_P, cfg)
    after, events, invariants = ENGINES[engine](*case.context_and_state())
    assert _decisions(events) == [(EventKind.HEAD_PRUNE, 1)]
    assert sorted(after.params.heads) == [0, 2]
    assert all(r.result.holds for r in invariants)
