"""Exact resume from a point where every counter of the growth rule is mid-way.

At the interruption point of this run a head's weak-check counter, a prototype's low-mass counter and
the dwell clock are all non-zero (the dwell clock strictly inside ``(0, T_d)``), and the rest of the run
depends on each of them: a prototype and a head are pruned after the interruption before a counter
restarted there could reach ``T_prune``, a check sees ``λ_max > θ`` while the dwell still blocks a
birth, and the next birth comes sooner than ``T_d`` after the interruption. So a checkpoint that loses
any of them (on save or on load) changes the record; the test asserts those facts about the run first,
so that it cannot degrade into a resume that nothing depends on.

Same process, same machine: the resumed record must equal the uninterrupted one bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _small_run import LAYER, RUN, TRAIN_SEED, small_data

from reference.growth_phases import TrainerState
from reference.incrt.controller import EventKind
from training.checkpoint import Checkpoint, CheckpointPolicy, state_differences
from training.record import RunRecord
from training.trainer import ReferenceEngine, resume, run

# The small run's shape with checks every 5 steps, a long patience (8 checks) and a long dwell (25
# steps), so that the counters carry over many checks; φ_g = 10 keeps every head weak. Events: births at
# 25 and 50 (λ_max > θ at 30–45, blocked by the dwell), prototypes 3 and 2 pruned at 40 and 45, heads
# 0 and 2 pruned at 70 and 85.
CFG = replace(RUN, check_every=5, T_prune=8, T_d=25, theta=0.03, eps_K=0.1)
AT = 36  # heads' counters (7, 3), prototypes' (6, 7), last growth at 25: all mid-way


def comparable(record: RunRecord) -> dict[str, Any]:
    d = json.loads(record.to_json())
    d.pop("wall_time_s")
    return d


class _Recording(ReferenceEngine):
    """The reference engine, keeping its state after step ``AT`` (what a checkpoint there must hold)."""

    def __init__(self) -> None:
        self.kept: TrainerState | None = None

    def step(self, ctx: Any, es: TrainerState, x: Any, labels: Any) -> Any:
        out = super().step(ctx, es, x, labels)
        if out[0].step == AT:
            self.kept = out[0]
        return out


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunRecord, Path, TrainerState]:
    tmp = tmp_path_factory.mktemp("midway")
    engine = _Recording()
    policy = CheckpointPolicy(tmp, at_steps=frozenset({AT}), keep=0)
    record = run(small_data(), LAYER, CFG, rng=np.random.default_rng(TRAIN_SEED), engine=engine, checkpoints=policy)
    assert engine.kept is not None
    return record, policy.path(AT), engine.kept


def _checks_after(step: int, until: int) -> int:
    """Checks in ``(step, until]``: how far a counter restarted at ``step`` gets by ``until``."""
    return until // CFG.check_every - step // CFG.check_every


def test_every_counter_is_mid_way_at_the_interruption_point(
    interrupted: tuple[RunRecord, Path, TrainerState],
) -> None:
    _, _, state = interrupted
    g = state.growth
    assert state.step == AT
    assert all(h.below_count > 0 for h in g.heads), g.heads
    assert any(0 < p.low_mass_count < CFG.T_prune for p in g.prototypes), g.prototypes
    assert 0 < AT - g.last_growth_step < CFG.T_d, g.last_growth_step


def test_the_rest_of_the_run_depends_on_each_counter(interrupted: tuple[RunRecord, Path, TrainerState]) -> None:
    """Each fact below is what makes one lost counter visible in the record."""
    record, _, state = interrupted
    after = [e for e in record.events if e.step > AT]
    below = {h.head_id: h.below_count for h in state.growth.heads}
    low = {p.prototype_id: p.low_mass_count for p in state.growth.prototypes}
    # a head pruned sooner than a restarted weak-check counter allows
    assert any(
        e.kind is EventKind.HEAD_PRUNE
        and e.head_id is not None
        and below.get(e.head_id, 0) > 0
        and _checks_after(AT, e.step) < CFG.T_prune
        for e in after
    )
    # a prototype pruned sooner than a restarted low-mass counter allows
    assert any(
        e.kind is EventKind.PROTOTYPE_PRUNE
        and e.prototype_id is not None
        and low.get(e.prototype_id, 0) > 0
        and _checks_after(AT, e.step) < CFG.T_prune
        for e in after
    )
    # a check with λ_max > θ that the dwell blocks (a lost clock would grow there) ...
    births = [e.step for e in after if e.kind is EventKind.BIRTH]
    assert births, "no birth after the interruption"
    last = state.growth.last_growth_step
    assert any(AT < c.step < births[0] and c.lam_max > c.theta and c.step - last < CFG.T_d for c in record.checks), (
        "no check blocked by the dwell after the interruption"
    )
    # ... and a birth sooner than T_d after the interruption (a clock restarted there would block it)
    assert births[0] - AT < CFG.T_d


def test_the_checkpoint_holds_every_counter(interrupted: tuple[RunRecord, Path, TrainerState]) -> None:
    _, path, state = interrupted
    loaded = Checkpoint.load(path).state
    assert state_differences(loaded, state) == []
    assert loaded.growth.heads == state.growth.heads
    assert loaded.growth.prototypes == state.growth.prototypes
    assert loaded.growth.last_growth_step == state.growth.last_growth_step


def test_resuming_mid_way_repeats_the_record_bit_for_bit(interrupted: tuple[RunRecord, Path, TrainerState]) -> None:
    record, path, _ = interrupted
    ck = Checkpoint.load(path)
    assert comparable(resume(ck, small_data(), engine=ReferenceEngine())) == comparable(record)


def test_the_accelerated_engine_resumes_mid_way_bit_for_bit(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from accelerated.trainer import AcceleratedEngine

    engine = AcceleratedEngine(torch.float64)
    policy = CheckpointPolicy(tmp_path, at_steps=frozenset({AT}), keep=0)
    record = run(small_data(), LAYER, CFG, rng=np.random.default_rng(TRAIN_SEED), engine=engine, checkpoints=policy)
    ck = Checkpoint.load(policy.path(AT))
    g = ck.state.growth
    assert all(h.below_count > 0 for h in g.heads)
    assert any(p.low_mass_count > 0 for p in g.prototypes)
    assert 0 < AT - g.last_growth_step < CFG.T_d
    assert comparable(resume(ck, small_data(), engine=engine)) == comparable(record)
