"""The reference trainer (``training.trainer``): a short run on a tiny planted task, the optimiser state
across births and prunes, recorded invariants (zero violations on a correct run; planted violations
recorded as failures), the JSON record, and config validation.

Sizes are tiny (d ≤ 6, T ≤ 4, K ≤ 4, tens of steps) so the file runs in seconds under jaxtyping's
per-call checks.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import _phases as phases
import numpy as np
import pytest
from _small_run import LAYER as SMALL_LAYER
from _small_run import RUN as SMALL_RUN
from _small_run import small_data

import reference.growth_phases as growth_phases
import reference.growth_statistics as growth_statistics
import reference.incrt.controller as controller
import reference.invariants.pruning as pruning
import reference.surgery as surgery
from reference._arrays import arr
from reference.growth_phases import Context, TrainerState
from reference.growth_statistics import Probe, residual_for
from reference.incrt.controller import EventKind, GrowthConfig, GrowthState, HeadRecord
from reference.incrt.operators import eigh_error_bound, exact_extremes, head_strength
from reference.incrt.trackers import TrackerKind, TrackerResult
from reference.log import (
    EVENT_BIRTH,
    EVENT_CHECK,
    EVENT_HEAD_PRUNE,
    EVENT_PROTOTYPE_PRUNE,
    EVENT_TRAIN_STEP,
    InvariantRecord,
)
from reference.model import HeadParams, LayerConfig, forward
from reference.optim import AdamState, LearningRates
from reference.surgery import HEAD_PARAM_NAMES, add_head, head_param_name
from reference.tolerances import CheckKind, tolerance
from reference.train_config import TrainConfig
from training.data import SequenceDataset, planted_offsets
from training.record import RunRecord
from training.trainer import _probe as training_probe
from training.trainer import init_state, train, train_step

LAYER = LayerConfig(d_in=4, d=5, d_k=2, d_v=2, seq_len=4, K_max=4, n_classes=2, T_P=1.0, lambda_q=0.1)
RUN = TrainConfig(
    steps=80,
    batch_size=16,
    lr=LearningRates.uniform(1e-2),
    check_every=10,
    probe_size=32,
    calibration_probes=3,
    T_d=20,
    T_prune=2,
    eps_K=0.05,
    tracker_steps=10,
    eval_every=40,
)


def tiny_planted(seed: int = 0) -> SequenceDataset:
    return planted_offsets(n_train=64, n_test=32, seq_len=4, d_in=4, offsets=(1, 2), rng=np.random.default_rng(seed))


@pytest.fixture(scope="module")
def record() -> RunRecord:
    return train(tiny_planted(), LAYER, RUN, rng=np.random.default_rng(1))


def _violations(records: tuple[InvariantRecord, ...]) -> list[str]:
    return [f"step {r.step} {r.event}: {r.result.describe()}" for r in records if r.violation]


# --------------------------------------------------------------------------------------------------
# A short run
# --------------------------------------------------------------------------------------------------


def test_short_run_finishes_and_losses_decrease(record: RunRecord) -> None:
    L = record.losses.L
    assert len(L) == RUN.steps
    for name in ("L_task", "L_q", "L_OLS", "V", "F", "H_bar"):
        assert len(getattr(record.losses, name)) == RUN.steps
    assert all(math.isfinite(v) for v in L)
    assert np.mean(L[-10:]) < np.mean(L[:10]), (L[:10], L[-10:])
    assert [e.step for e in record.evaluations] == [40, 80]
    assert 0.0 <= record.test_accuracy <= 1.0
    assert record.wall_time_s > 0.0


def test_events_are_consistent_with_the_architecture(record: RunRecord) -> None:
    arch = record.architecture
    births = [e for e in record.events if e.kind is EventKind.BIRTH]
    head_prunes = [e for e in record.events if e.kind is EventKind.HEAD_PRUNE]
    proto_prunes = [e for e in record.events if e.kind is EventKind.PROTOTYPE_PRUNE]
    assert births, "the tiny run is expected to grow at least once (c_θ = 0.1 at initialisation)"
    assert arch.births == len(births)
    assert arch.head_prunes == len(head_prunes)
    assert arch.prototype_prunes == len(proto_prunes)
    born = {e.head_id for e in births}
    gone = {e.head_id for e in head_prunes}
    assert set(arch.head_ids) == ({0} | born) - gone
    assert arch.n_heads == 1 + len(births) - len(head_prunes) == len(record.final_params.heads)
    assert arch.captured_rank == len(births) == record.Q_cap.shape[1] <= LAYER.d
    assert arch.n_prototypes == LAYER.K_max - len(proto_prunes) == record.final_params.P.shape[1]
    assert set(arch.prototype_ids) == set(range(LAYER.K_max)) - {e.prototype_id for e in proto_prunes}
    steps = [c.step for c in record.checks]
    assert steps == list(range(RUN.check_every, RUN.steps + 1, RUN.check_every))
    for e in births:  # births only at checks, after the dwell, above θ, with u₊ and λ_birth recorded
        assert e.step in steps
        assert e.step >= RUN.T_d
        assert e.u_plus is not None
        assert e.lam_birth is not None
        assert e.margin > 0.0
        check = next(c for c in record.checks if c.step == e.step)
        assert e.lam_birth == check.lam_max
        assert check.births == 1
    assert [b.step for b in births] == sorted(b.step for b in births)
    assert all(b2.step - b1.step >= RUN.T_d for b1, b2 in itertools.pairwise(births))


def test_invariants_recorded_with_zero_violations(record: RunRecord) -> None:
    assert _violations(record.invariants) == []
    summary = record.summary()
    n_births = record.architecture.births
    assert summary["D1"].count == 3 * RUN.steps
    # G6: up to two checks per tracker per check, only for runs inside its hypotheses (gap, step size);
    # this tiny run has a certified gap at every check, so every check contributes all four
    assert summary["G6"].count == 4 * len(record.checks)
    assert summary["G1"].count == 4 * n_births
    # no violation; D4's checks are not promised where T_P ≥ T_c (its hypothesis), R1(a)'s where not orthogonal
    assert all(s.violations == 0 and s.certified + s.uncertified + s.unpromised == s.count for s in summary.values())
    # R1(a)'s split, not promised (the newborn's write is not orthogonal to the tokens), fails anyway
    assert all(s.failed_unpromised == 0 for cid, s in summary.items() if cid != "R1")
    assert {cid for cid, s in summary.items() if s.unpromised} <= {"D4", "R1"}
    assert summary["D4"].count == 4 * len(record.checks)
    events = {r.event for r in record.invariants}
    assert {EVENT_TRAIN_STEP, EVENT_CHECK, EVENT_BIRTH} <= events
    if record.architecture.prototype_prunes:
        assert summary["D5"].count == 3 * record.architecture.prototype_prunes
    births = {e.step: e.head_id for e in record.events if e.kind is EventKind.BIRTH}
    for r in record.invariants:
        if r.event == EVENT_BIRTH:
            assert births[r.step] == r.head_id


def test_record_round_trips_through_json(record: RunRecord, tmp_path: Path) -> None:
    text = record.to_json()
    again = RunRecord.from_json(text)
    assert again.to_json() == text
    path = record.save(tmp_path / "runs" / "tiny.json")
    loaded = RunRecord.load(path)
    assert loaded.to_json() == text
    assert loaded.summary() == record.summary()
    assert loaded.lam_max_trajectory() == record.lam_max_trajectory()


def test_the_run_is_reproducible_from_its_seeds() -> None:
    data = tiny_planted(3)
    cfg = replace(RUN, steps=20, check_invariants=False)
    a = train(data, LAYER, cfg, rng=np.random.default_rng(5))
    b = train(data, LAYER, cfg, rng=np.random.default_rng(5))
    assert a.losses == b.losses
    assert a.invariants == ()
    assert a.to_dict()["events"] == b.to_dict()["events"]


# --------------------------------------------------------------------------------------------------
# Optimiser state across births and prunes
# --------------------------------------------------------------------------------------------------


def _setup(optimizer: str = "adam", steps: int = 3, **growth: Any) -> tuple[Context, TrainerState, Probe]:
    data = tiny_planted(2)
    tcfg = replace(RUN, optimizer=optimizer)  # type: ignore[arg-type]
    gcfg = GrowthConfig(**{"theta": 1.0, "phi_g": 0.01, "T_d": 0, "T_prune": 1, "eps_K": 0.0, **growth})
    ctx = Context(layer_cfg=LAYER, train_cfg=tcfg, growth_cfg=gcfg)
    rng = np.random.default_rng(7)
    state = init_state(LAYER, tcfg, rng=rng)
    probe = Probe(x=arr(data.x_train[:24]), labels=data.labels_train[:24])
    for k in range(steps):
        batch = slice(8 * k, 8 * k + 16)
        state, _, _ = train_step(ctx, state, arr(data.x_train[batch]), data.labels_train[batch])
    return ctx, state, probe


def test_birth_leaves_existing_adam_moments_bit_identical() -> None:
    ctx, state, probe = _setup(theta=1e-12)  # any positive λ_max grows
    assert isinstance(state.opt_state, AdamState)
    before = dict(state.opt_state.moments)
    out = phases.grow(ctx, state, probe)
    assert [e.kind for e in out.events] == [EventKind.BIRTH]
    new = out.state
    assert isinstance(new.opt_state, AdamState)
    assert new.opt_state is state.opt_state
    for name, mom in before.items():
        after = new.opt_state.moments[name]
        assert after.t == mom.t
        assert np.array_equal(after.m, mom.m)
        assert np.array_equal(after.v, mom.v)
        assert after.m.tobytes() == mom.m.tobytes()
        assert after.v.tobytes() == mom.v.tobytes()
    old_head = state.params.heads[0]
    assert new.params.heads[0] is old_head
    assert np.array_equal(new.params.P, state.params.P)
    # the newborn's state starts at its first step, with its own count t = 1
    data = tiny_planted(2)
    stepped, _, _ = train_step(ctx, new, arr(data.x_train[:16]), data.labels_train[:16])
    assert isinstance(stepped.opt_state, AdamState)
    assert stepped.opt_state.moments[head_param_name(1, "W_Q")].t == 1
    assert stepped.opt_state.moments["W_in"].t == before["W_in"].t + 1
    ids = [r.result.claim_id for r in out.invariants]
    assert ids[:4] == ["G1"] * 4  # then G2–G4 on the check's A_res held fixed, and R1(a) on the probe
    assert set(ids[4:]) == {"G2", "G3", "G4", "R1"}
    assert _violations(out.invariants) == []


def _two_head_state(ctx: Context, state: TrainerState, weak: float) -> TrainerState:
    """Head 1 added with ``W_Q`` scaled by ``weak`` (so ``G_1`` is small), born at step 0; one direction
    captured (as after a birth)."""
    params, hid = add_head(state.params, LAYER, rng=np.random.default_rng(11))
    h = params.heads[hid]
    weak_head = HeadParams(W_Q=arr(weak * h.W_Q), W_K=h.W_K, W_V=h.W_V, W_O=h.W_O, s=h.s)
    params = replace(params, heads={**params.heads, hid: weak_head})
    Q_cap = arr(np.eye(LAYER.d)[:, :1])
    growth = GrowthState(
        Q_cap=Q_cap,
        last_growth_step=0,
        heads=(HeadRecord(0, 0), HeadRecord(hid, 0)),
        prototypes=state.growth.prototypes,
    )
    return replace(state, params=params, growth=growth, ranks=(0, 1))


def _prune_setup(optimizer: str = "adam") -> tuple[Context, TrainerState, Probe]:
    ctx, state, probe = _setup(optimizer, steps=0)
    state = _two_head_state(ctx, state, weak=1e-2)
    data = tiny_planted(2)
    for k in range(3):  # give head 1 optimiser state
        batch = slice(8 * k, 8 * k + 16)
        state, _, _ = train_step(ctx, state, arr(data.x_train[batch]), data.labels_train[batch])
    # θ above λ_max + G_h of every head (hysteresis passes), φ_g above the weak head's G_h only
    C = growth_statistics.probe_second_moment(state.params, probe)
    G = {h: head_strength(C, M) for h, M in growth_statistics.head_operators(state.params).items()}
    lam = exact_extremes(residual_for(state.params, C, state.growth.Q_cap)).lam_max
    assert G[1] < G[0]
    gcfg = replace(ctx.growth_cfg, theta=4.0 * (lam + max(G.values())), phi_g=math.sqrt(G[0] * G[1]))
    return replace(ctx, growth_cfg=gcfg), state, probe


def test_head_prune_drops_its_state_and_records_g5() -> None:
    ctx, state, probe = _prune_setup()
    out = phases.prune(ctx, state, probe)
    assert [(e.kind, e.head_id) for e in out.events] == [(EventKind.HEAD_PRUNE, 1)]
    assert sorted(out.state.params.heads) == [0]
    assert out.state.growth.head_ids == (0,)
    assert np.array_equal(out.state.growth.Q_cap, state.growth.Q_cap)  # Q_cap is left unchanged (SPEC §3.3)
    assert isinstance(out.state.opt_state, AdamState)
    assert isinstance(state.opt_state, AdamState)
    names = set(state.opt_state.moments)
    gone = {head_param_name(1, f) for f in HEAD_PARAM_NAMES}
    assert gone <= names
    assert set(out.state.opt_state.moments) == names - gone
    for name in names - gone:
        assert out.state.opt_state.moments[name] is state.opt_state.moments[name]
    checks = [r.result.check for r in out.invariants]
    assert {r.result.claim_id for r in out.invariants} == {"G5"}
    assert all(r.event == EVENT_HEAD_PRUNE for r in out.invariants)
    assert any("removal" in c for c in checks)
    assert any("ΔL_task" in c for c in checks)
    assert any("no re-trigger" in c for c in checks)
    assert any("measured ΔY" in c for c in checks)
    assert any("hysteresis" in c for c in checks)
    assert _violations(out.invariants) == []


@pytest.mark.claim("G6", "property")
def test_g6_records_runs_outside_its_hypotheses_as_not_promised() -> None:
    """A check whose ``A_res`` has no certified gap at either end (here ``A_res = 0``: every direction
    captured) records G6's checks uncertified and not promised, naming the failed hypothesis — a π/2
    bound could not fail and must not count as a pass; a gapped one records them promised."""
    ctx, state, probe = _setup(steps=0)
    gapped = arr(np.diag(np.linspace(1.0, -1.0, LAYER.d)))
    _, _, recs = phases.track(ctx, state, probe, gapped)
    assert [r.result.claim_id for r in recs] == ["G6"] * 4
    assert _violations(recs) == []
    assert all(r.promised for r in recs)
    _, gaps, outside = phases.track(ctx, state, probe, arr(np.zeros((LAYER.d, LAYER.d))))
    assert [r.result.claim_id for r in outside] == ["G6"] * 4
    assert all(not r.result.certified and r.promised is False for r in outside)
    assert all(r.failed_hypotheses == ("tracked_gap",) for r in outside), [r.failed_hypotheses for r in outside]
    assert len(gaps) == 4  # the gap to the oracle is still measured and reported


def test_prototype_masses_are_not_clipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Masses go to the controller as computed; a rounding excursion within the STOCHASTIC tolerance is
    accepted there, a larger one raises (naming ``mass``) instead of being clipped away."""
    ctx, state, probe = _setup(steps=0)
    right = growth_statistics.forward
    K = LAYER.K_max

    def shifted(excess: float) -> Any:
        def fwd(*args: Any, **kwargs: Any) -> Any:
            cache = right(*args, **kwargs)
            Q = cache.Q.copy()
            Q[:, 0] = 1.0 + excess  # every token's first assignment slightly above 1
            return replace(cache, Q=arr(Q))

        return fwd

    slack = tolerance("float64", CheckKind.STOCHASTIC).atol * K
    monkeypatch.setattr(growth_statistics, "forward", shifted(0.5 * slack))
    mass = growth_statistics.prototype_masses(state.params, LAYER, probe, state.growth)
    assert 1.0 < mass[0] <= 1.0 + slack  # not clipped, and within the tolerance
    phases.prune_prototypes(ctx, state, probe)  # accepted
    monkeypatch.setattr(growth_statistics, "forward", shifted(1e-9))  # a mass error far beyond rounding
    with pytest.raises(ValueError, match=r"\bmass\b"):
        phases.prune_prototypes(ctx, state, probe)


def test_prototype_prune_resizes_state_and_records_d5() -> None:
    ctx, state, probe = _setup(eps_K=0.9)  # every prototype's mass is below 0.9 unless one takes all
    assert isinstance(state.opt_state, AdamState)
    P_moments = state.opt_state.moments["P"]
    out = phases.prune_prototypes(ctx, state, probe)
    pruned = [e.prototype_id for e in out.events if e.kind is EventKind.PROTOTYPE_PRUNE]
    assert pruned, "ε_K = 0.9 with T_prune = 1 prunes at the first check"
    kept = [j for j, pid in enumerate(state.params.prototype_ids) if pid not in pruned]
    assert out.state.params.prototype_ids == tuple(state.params.prototype_ids[j] for j in kept)
    assert np.array_equal(out.state.params.P, state.params.P[:, kept])
    assert isinstance(out.state.opt_state, AdamState)
    new = out.state.opt_state.moments["P"]
    assert np.array_equal(new.m, P_moments.m[:, kept])
    assert np.array_equal(new.v, P_moments.v[:, kept])
    assert {r.result.claim_id for r in out.invariants} == {"D5"}
    assert len(out.invariants) == 3 * len(pruned)
    assert all(r.event == EVENT_PROTOTYPE_PRUNE and r.prototype_id in pruned for r in out.invariants)
    assert _violations(out.invariants) == []


def test_sgd_state_passes_through_births_and_prunes() -> None:
    ctx, state, probe = _prune_setup("sgd")
    out = phases.prune(ctx, state, probe)
    assert out.state.opt_state == state.opt_state
    assert len(out.events) == 1
    assert _violations(out.invariants) == []


# --------------------------------------------------------------------------------------------------
# Planted violations are recorded as failures
# --------------------------------------------------------------------------------------------------


def _failed(records: tuple[InvariantRecord, ...], claim: str, fragment: str) -> None:
    bad = [r for r in records if not r.result.holds]
    assert any(r.result.claim_id == claim and fragment in r.result.check for r in bad), (
        f"expected a recorded {claim} violation of {fragment!r}; failures: {[r.result.describe() for r in bad]}"
    )


@pytest.mark.claim("G5", "planted")
def test_planted_wrong_residual_after_removal_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, state, probe = _prune_setup()
    right = pruning.residual_for

    def forgot_projection(params: Any, C: Any, Q_cap: Any) -> Any:  # the classic slip: no Π⊥
        return right(params, C, arr(Q_cap[:, :0]))

    monkeypatch.setattr(pruning, "residual_for", forgot_projection)
    out = phases.prune(ctx, state, probe)
    _failed(out.invariants, "G5", "removal: A_res(after) − A_res(before)")


@pytest.mark.claim("G5", "planted")
@pytest.mark.parametrize(
    ("module", "name", "factor", "fragment"),
    [
        (pruning, "head_output_bound", 0.5, "‖U_h,b‖_F"),
        (pruning, "head_output_bound", 0.5, "measured ‖ΔY_b‖_F"),
        # the loss bound is loose for a weak head (its measured ΔL_task is far below it): plant a zero
        (pruning, "task_loss_change_bound", 0.0, "ΔL_task"),
    ],
)
def test_planted_too_small_output_bounds_are_recorded(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, factor: float, fragment: str
) -> None:
    ctx, state, probe = _prune_setup()
    right = getattr(module, name)

    def shrunk(*args: Any) -> Any:
        return right(*args) * factor

    monkeypatch.setattr(module, name, shrunk)
    out = phases.prune(ctx, state, probe)
    _failed(out.invariants, "G5", fragment)


@pytest.mark.claim("D5", "planted")
def test_planted_wrong_prototype_column_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, state, probe = _setup(eps_K=0.9)
    right = surgery.remove_prototype_column

    def off_by_one(params: Any, proto_id: int) -> Any:  # right ids, wrong column of P
        j = params.prototype_ids.index(proto_id)
        out = right(params, proto_id)
        return replace(out, P=np.delete(params.P, (j + 1) % params.P.shape[1], axis=1))

    monkeypatch.setattr(growth_phases, "remove_prototype_column", off_by_one)
    out = phases.prune_prototypes(ctx, state, probe)
    _failed(out.invariants, "D5", "ΔF_measured − (−(T/n)Σ log(1 − q_tj))")


@pytest.mark.claim("G1", "planted")
def test_planted_non_orthonormal_capture_is_recorded_by_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    right = controller.append_direction

    def stretched(Q_cap: Any, u: Any) -> Any:  # appends 1.001·u: no longer orthonormal
        out = right(Q_cap, u)
        out[:, -1] *= 1.001
        return out

    monkeypatch.setattr(controller, "append_direction", stretched)
    rec = train(tiny_planted(), LAYER, replace(RUN, steps=30), rng=np.random.default_rng(1))
    assert rec.architecture.births >= 1
    _failed(rec.invariants, "G1", "orthonormal Q_cap")
    assert rec.summary()["G1"].violations >= 1


@pytest.mark.claim("G6", "planted")
def test_planted_stuck_tracker_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck(A: Any, w0: Any, eta: float, n_steps: int) -> TrackerResult:  # reports the bottom pair
        lam, V = np.linalg.eigh(A)
        return TrackerResult(
            TrackerKind.OJA, arr(w0.copy()), arr(V[:, 0].copy()), eta, arr(np.full(n_steps, eta)), float(lam[0])
        )

    monkeypatch.setattr(growth_phases, "oja_track", stuck)
    rec = train(tiny_planted(), LAYER, replace(RUN, steps=20), rng=np.random.default_rng(1))
    _failed(rec.invariants, "G6", "direction")


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 0),
        ("batch_size", 0),
        ("optimizer", "rmsprop"),
        ("check_every", 0),
        ("probe_size", 0),
        ("calibration_probes", 0),
        ("c_theta", 0.0),
        ("c_theta", math.inf),
        ("theta", 0.0),
        ("theta", -1.0),
        ("phi_g", -1.0),
        ("phi_g", math.nan),
        ("T_d", -1),
        ("T_prune", 0),
        ("eps_K", 1.0),
        ("eps_K", -0.1),
        ("seed", -1),
        ("max_heads", 0),
        ("tracker_steps", 0),
        ("eval_every", -1),
    ],
)
def test_bad_train_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError), match=rf"TrainConfig\.{field}|{field}"):
        TrainConfig(**{"steps": 10, field: value})  # type: ignore[arg-type]
    # the config's own check (beartype's, under pytest, may answer first for a wrong Literal)
    if field != "optimizer":
        with pytest.raises(ValueError, match=rf"TrainConfig\.{field}"):
            TrainConfig(**{"steps": 10, field: value})  # type: ignore[arg-type]


def test_train_rejects_a_mismatched_dataset_or_config() -> None:
    data = tiny_planted()
    with pytest.raises(ValueError, match=r"TrainConfig\.probe_size"):
        train(data, LAYER, replace(RUN, probe_size=65), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"TrainConfig\.batch_size"):
        train(data, LAYER, replace(RUN, batch_size=65), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"layer_cfg\.d_in"):
        train(data, replace(LAYER, d_in=3), RUN, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"layer_cfg\.seq_len"):
        train(data, replace(LAYER, seq_len=5), RUN, rng=np.random.default_rng(0))


def test_check_record_reports_d4_collapse_status_on_the_probe_tokens() -> None:
    """D4 at the configured temperature: ``T_c = 2λ_max(Cov Y)`` of the probe's DDCL-input tokens, with
    the margin ``T_c − T_P``; checked against the eigenvalues of an explicitly centred covariance."""
    ctx, state, probe = _setup(steps=2)
    _, record, _, _ = growth_phases.growth_check(ctx, state, probe)
    Y = forward(state.params, LAYER, probe.x, probe.labels).Y.reshape(-1, LAYER.d)
    centred = Y - Y.mean(axis=0)
    lam_max = float(np.linalg.eigvalsh(centred.T @ centred / Y.shape[0])[-1])
    tol = tolerance("float64", CheckKind.VALUE)
    assert tol.allows(record.collapse_T_c, 2.0 * lam_max)
    assert tol.allows(record.collapse_margin, 2.0 * lam_max - LAYER.T_P)


# --------------------------------------------------------------------------------------------------
# Small rules of the phases (each test names the mutant of scripts/mutation/mutants.toml it kills)
# --------------------------------------------------------------------------------------------------


@pytest.mark.claim("G5", "planted")
def test_no_retrigger_check_ignores_the_dwell_time() -> None:
    """The re-trigger test runs the growth rule with ``T_d = 0``: right after a birth (dwell not over) an
    ``A_res`` above θ must still count as a re-trigger, else the check could never fail.
    [g5-no-retrigger-with-dwell]"""
    ctx, state, probe = _setup(steps=0)
    C = growth_statistics.probe_second_moment(state.params, probe)
    lam = exact_extremes(residual_for(state.params, C, state.growth.Q_cap)).lam_max
    gcfg = replace(ctx.growth_cfg, theta=0.5 * lam, T_d=1000)
    res = pruning.check_no_retrigger(growth_cfg=gcfg, params=state.params, growth=state.growth, C=C, step=0)
    assert not res.holds
    assert res.value == 1.0


def test_birth_weights_depend_on_the_seed_and_the_head_id_only() -> None:
    """``default_rng([seed, head_id])``: heads 1 and 2 differ; the same id gives the same weights.
    [phases-birth-rng-ignores-id]"""
    a = growth_phases.birth_rng(3, 1).standard_normal(4)
    assert np.array_equal(a, growth_phases.birth_rng(3, 1).standard_normal(4))
    assert not np.array_equal(a, growth_phases.birth_rng(3, 2).standard_normal(4))
    assert not np.array_equal(a, growth_phases.birth_rng(4, 1).standard_normal(4))


def test_warm_start_is_deflated_against_the_captured_basis() -> None:
    """Right after a birth the tracker vector is (close to) the captured ``u₊``, a fixed point of Oja for
    the eigenvalue 0 of ``A_res``; the warm start must leave the captured subspace. [phases-warm-start-not-deflated]"""
    Q = np.eye(4)[:, :1]
    w = growth_phases.warm_start(np.array([1.0, 0.2, 0.0, 0.0]), Q)  # mostly captured: fallback column of Π⊥
    assert abs(float(Q[:, 0] @ w)) <= tolerance("float64", CheckKind.VALUE).atol
    assert abs(float(np.linalg.norm(w)) - 1.0) <= tolerance("float64", CheckKind.VALUE).rtol
    v = growth_phases.warm_start(np.array([0.1, 1.0, 0.5, 0.0]), Q)  # mostly free: Π⊥w/‖Π⊥w‖
    expected = np.array([0.0, 1.0, 0.5, 0.0]) / np.sqrt(1.25)
    np.testing.assert_allclose(v, expected, rtol=0, atol=tolerance("float64", CheckKind.VALUE).atol)


def test_a_failed_save_keeps_the_previous_record(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RunRecord.save`` writes a temporary file and renames it: a write that fails half-way leaves the
    previous record intact and no temporary file behind (writing into the target would truncate it)."""
    path = record.save(tmp_path / "run.json")
    before = path.read_text(encoding="utf-8")

    def fails_half_way(self: RunRecord) -> str:
        return "{" * 100_000 + "\ud800"  # a lone surrogate: UTF-8 encoding fails after the prefix

    monkeypatch.setattr(RunRecord, "to_json", fails_half_way)
    with pytest.raises(UnicodeEncodeError):
        record.save(path)
    assert path.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_a_theta_the_oracle_cannot_resolve_at_a_check_is_refused_naming_it_and_the_step() -> None:
    """θ below the eigen-oracle's error bound on a check's operator (what a run whose weights blow up
    reaches; a θ already unresolvable at the start is refused before training, the test below): refused
    at that check, naming config.theta and the step, never decided on. The check is called directly on a
    state labelled step 10 (a run cannot reach it with such a θ any more)."""
    cfg = replace(SMALL_RUN, theta=1e-300)
    rng = np.random.default_rng(1)
    state = replace(init_state(SMALL_LAYER, cfg, rng=rng), step=10)
    ctx = Context(layer_cfg=SMALL_LAYER, train_cfg=cfg, growth_cfg=growth_phases.growth_config_for(cfg, 1e-300))
    with pytest.raises(ValueError, match=r"^config\.theta: θ = 1e-300 .*\[at the check of step 10: "):
        growth_phases.growth_check(ctx, state, training_probe(small_data(), cfg.probe_size, rng))


def test_an_explicit_theta_the_oracle_cannot_resolve_is_refused_before_training() -> None:
    """A given θ at or below the eigen-oracle's error bound ``E`` of an initial operator (the calibration
    probes', as the calibration would read them) is refused before the first step, naming theta; one
    ulp above the largest ``E`` the run trains. (It used to train until the first check, then fail there
    with a hint about weights that blow up.)"""
    data, seed = small_data(), 7
    rng = np.random.default_rng(seed)  # run()'s draws: the parameters, the check's probe, the calibration
    state = init_state(SMALL_LAYER, SMALL_RUN, rng=rng)
    probes = [training_probe(data, SMALL_RUN.probe_size, rng) for _ in range(1 + SMALL_RUN.calibration_probes)]
    empty = np.zeros((SMALL_LAYER.d, 0))
    E = max(
        eigh_error_bound(residual_for(state.params, growth_statistics.probe_second_moment(state.params, p), empty))
        for p in probes[1:]
    )
    steps: list[object] = []
    refusal = r"^theta: θ = .* is not above .*\[on the initial layer, at the calibration probes\]$"
    for theta in (E, E / 2):
        with pytest.raises(ValueError, match=refusal):
            train(
                data,
                SMALL_LAYER,
                replace(SMALL_RUN, theta=theta),
                rng=np.random.default_rng(seed),
                progress=steps.append,
            )
        assert steps == []
    cfg = replace(SMALL_RUN, theta=math.nextafter(E, math.inf), steps=2)
    record = train(data, SMALL_LAYER, cfg, rng=np.random.default_rng(seed), progress=steps.append)
    assert record.growth_config.theta == cfg.theta
    assert len(steps) == 2
