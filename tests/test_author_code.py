"""The growth variant ``author_code`` (reference.incrt.author_code; docs/studies/planted-heads.md §2.5): each
element of the author's rule against a hand derivation from the author's formulas (cell 5 of
``nimzoexin59/incrt-geo-proteins``), its decisions through the one growth check in both engines, and
G6's step-size hypothesis failing where the author's fixed step is too large for the operator."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import _phases as phases
import numpy as np
import pytest
import torch
from _accelerated_harness import compare_trajectories, first_tie
from _small_run import LAYER, RUN, TRAIN_SEED, small_data, small_run

from accelerated import trackers as acc_trk
from accelerated.trainer import train as accelerated_train
from reference import growth_phases as gp
from reference.growth_phases import Context, calibrate, growth_config_for
from reference.growth_statistics import Probe
from reference.incrt import author_code as ac
from reference.incrt.controller import (
    EventKind,
    GrowthConfig,
    GrowthState,
    HeadRecord,
    check_growth_variants,
    initial_state,
)
from reference.incrt.trackers import TrackerKind
from reference.train_config import TrainConfig
from training.checkpoint import Checkpoint, CheckpointPolicy
from training.record import RunRecord
from training.trainer import ReferenceEngine, init_state, resume, run

D = 5
G = 10  # check_every in the decision tests


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- the author's constants and formulas, by hand ------------------------------------------------------


def test_step_sizes_are_one_over_ten_d_and_half_of_it() -> None:
    assert ac.author_steps(16) == (1 / 160, 1 / 320)
    assert ac.author_steps(256) == (1 / 2560, 1 / 5120)


def test_min_dwell_time_by_hand() -> None:
    # ⌈κ_T/(ηΔ²)·ln(1/ε)⌉ with κ_T = 2, ε = 0.05: η = 1/50, Δ = 1 gives ⌈100 ln 20⌉ = ⌈299.57⌉ = 300
    assert ac.min_dwell_time(1 / 50, 1.0) == 300
    assert ac.min_dwell_time(1 / 50, 2.0) == 75  # ⌈25 ln 20⌉ = ⌈74.89⌉
    assert ac.min_dwell_time(1 / 50, 0.9e-8) == 10000  # the author's guard below 1e-8
    # the constant prune dwell T_d(1/(10d), 0.1) = ⌈2·10d·100·ln 20⌉: 95 864 checks at d = 16, 1 533 815 at 256
    assert ac.author_prune_dwell(16) == math.ceil(32000 * math.log(20)) == 95864
    assert ac.author_prune_dwell(256) == 1533815


def test_gaps_are_floored_and_gamma_star_weights_them() -> None:
    assert ac.spectral_gaps(np.array([3.0, 1.0, 0.5, 0.0])) == (2.0, 0.5)
    assert ac.spectral_gaps(np.array([1.0, 1.0, 1.0])) == (1e-8, 1e-8)  # repeated: the floor
    assert ac.spectral_gaps(np.array([1.0])) == (1e-8, 1e-8)
    assert ac.gamma_star(2.0, 0.5) == pytest.approx(2.0 / 2.50000001, rel=1e-15)


def test_oja_step_carries_the_coupling_term() -> None:
    # S = [[0, 1], [1, 0]], u₊ = e₁, u₋ = e₂: Su₊ = e₂, R = 0, c = u₊ᵀSu₋ = 1, so
    # u' ∝ e₁ + η(e₂ − (1 − g*)e₂) = e₁ + ηg* e₂
    S = np.array([[0.0, 1.0], [1.0, 0.0]])
    eta, g = 0.1, 0.3
    got = ac.author_oja_step(np.array([1.0, 0.0]), np.array([0.0, 1.0]), S, eta, g)
    want = np.array([1.0, eta * g]) / math.hypot(1.0, eta * g)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    # without the coupling (g* = 1) it is the plain normalised Oja step: e₁ + η e₂ (R = 0)
    plain = ac.author_oja_step(np.array([1.0, 0.0]), np.array([0.0, 1.0]), S, eta, 1.0)
    np.testing.assert_allclose(plain, np.array([1.0, eta]) / math.hypot(1.0, eta), rtol=1e-15)


def test_mca_exin_step_carries_the_factor_y_and_ascends_where_y_is_negative() -> None:
    # S = diag(1, −1, 0), u₊ = e₃ (c = 0), u₋ = (cos φ, sin φ, 0): y = cos²φ − sin²φ and
    # Su₋ − y u₋ = 2 cos φ sin φ (sin φ, −cos φ, 0), so u' ∝ (cos φ(1 − 2ηy sin²φ), sin φ(1 + 2ηy cos²φ), 0)
    S = np.diag([1.0, -1.0, 0.0])
    e3 = np.array([0.0, 0.0, 1.0])
    eta = 0.1
    for phi in (math.pi / 6, math.pi / 3):
        c, s = math.cos(phi), math.sin(phi)
        y = c * c - s * s
        want = np.array([c * (1 - 2 * eta * y * s * s), s * (1 + 2 * eta * y * c * c), 0.0])
        got = ac.author_mca_exin_step(np.array([c, s, 0.0]), e3, S, eta, 0.5)
        np.testing.assert_allclose(got, want / np.linalg.norm(want), rtol=1e-14, atol=1e-16)
        moved_to_minor = abs(got[1]) > s  # toward e₂, the eigenvector of λ_min = −1
        assert moved_to_minor == (y > 0)  # y = 1/2 at π/6: descent; y = −1/2 at π/3: ascent toward λ_max


def test_mca_exin_step_is_orthogonal_to_the_new_u_plus() -> None:
    rng = np.random.default_rng(0)
    B = rng.standard_normal((D, D))
    S = B + B.T
    u_plus, u_minus = ac.initial_trackers(rng, D)
    up, um = ac.author_track(S, u_plus, u_minus, np.linalg.eigvalsh(S)[::-1].copy())
    assert abs(um @ up) < 1e-15
    assert np.linalg.norm(up) == pytest.approx(1.0, abs=1e-15)
    assert np.linalg.norm(um) == pytest.approx(1.0, abs=1e-15)


def test_the_redraw_is_orthogonal_to_the_captured_directions_and_seeded() -> None:
    Q = np.linalg.qr(np.random.default_rng(1).standard_normal((D, 2)))[0]
    up, um = ac.redraw_trackers(ac.redraw_rng(3, 1), Q)
    assert np.max(np.abs(Q.T @ up)) < 1e-15
    assert np.max(np.abs(Q.T @ um)) < 1e-15
    assert abs(up @ um) < 1e-15
    up2, _ = ac.redraw_trackers(ac.redraw_rng(3, 1), Q)
    np.testing.assert_array_equal(up, up2)
    assert not np.array_equal(up, ac.redraw_trackers(ac.redraw_rng(3, 2), Q)[0])


def test_the_torch_tracker_step_is_the_reference_one() -> None:
    rng = np.random.default_rng(2)
    B = rng.standard_normal((D, D))
    S = B + B.T
    u_plus, u_minus = ac.initial_trackers(rng, D)
    spec = np.linalg.eigvalsh(S)[::-1].copy()
    up, um = ac.author_track(S, u_plus, u_minus, spec)
    g = ac.gamma_star(*ac.spectral_gaps(spec))
    tp, tm = acc_trk.author_track(torch.tensor(S), torch.tensor(u_plus), torch.tensor(u_minus), g)
    np.testing.assert_allclose(tp.numpy(), up, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tm.numpy(), um, rtol=1e-13, atol=1e-15)


# ---- the decisions -----------------------------------------------------------------------------------


def _cfg(theta: float = 1.0) -> GrowthConfig:
    return GrowthConfig(
        theta=theta, phi_g=0.01 * theta, T_d=0, T_prune=5, eps_K=0.0, min_heads=0, hysteresis=False,
        variants=("author_code",),
    )  # fmt: skip


def _u(i: int = 0) -> np.ndarray:
    u = np.zeros(D)
    u[i] = 1.0
    return u


def _grow(
    state: GrowthState, lam_max: float, lam_min: float, delta: float, step: int
) -> tuple[GrowthState, tuple[object, ...]]:
    hid = max(state.head_ids) + 1
    return ac.author_grow_decision(
        state, _cfg(), (lam_max, lam_min, _u(state.m)), delta, step, d=D, check_every=G, new_head_id=hid
    )


def _births(events: tuple[object, ...]) -> int:
    return sum(1 for e in events if getattr(e, "kind", None) is EventKind.BIRTH)


def test_growth_needs_both_gates_strictly() -> None:
    s0 = initial_state(D, 2)
    big = 10.0  # T_d = ⌈2·50/100·ln 20⌉ = 3 checks: far below the 10 000 before the first birth
    assert _births(_grow(s0, 1.5, 0.4, big, G)[1]) == 1
    assert _births(_grow(s0, 1.5, 0.5, big, G)[1]) == 0  # λ̂_min = θ/2: not below
    assert _births(_grow(s0, 1.0, 0.4, big, G)[1]) == 0  # λ̂_max = θ: not above
    assert _births(_grow(s0, 1.5, 0.6, big, G)[1]) == 0  # the paper's rule would grow here (λ_max > θ)


def test_the_first_birth_waits_only_for_a_dwell_beyond_ten_thousand_checks() -> None:
    s0 = initial_state(D, 2)
    # η₊ = 1/50 at d = 5: T_d = ⌈100/Δ²·ln 20⌉; Δ = 0.173 gives 10 010 checks; the first check (index 0) has
    # 10 000 behind it, the eleventh 10 010
    delta = 0.173
    T_d = ac.min_dwell_time(1 / 50, delta)
    assert T_d == 10010
    assert _births(_grow(s0, 2.0, 0.0, delta, G)[1]) == 0
    assert _births(_grow(s0, 2.0, 0.0, delta, 10 * G)[1]) == 0
    assert _births(_grow(s0, 2.0, 0.0, delta, 11 * G)[1]) == 1


def test_later_births_wait_for_the_adaptive_dwell_of_this_checks_gap() -> None:
    s0 = initial_state(D, 2)
    s1, ev = _grow(s0, 2.0, 0.0, 10.0, 5 * G)
    assert _births(ev) == 1
    assert s1.last_growth_step == 5 * G
    # Δ = 1: T_d = 300 checks after the birth
    assert _births(_grow(s1, 2.0, 0.0, 1.0, 5 * G + 299 * G)[1]) == 0
    assert _births(_grow(s1, 2.0, 0.0, 1.0, 5 * G + 300 * G)[1]) == 1
    # Δ = 2: T_d = 75: the same check grows with a larger gap
    assert _births(_grow(s1, 2.0, 0.0, 2.0, 5 * G + 75 * G)[1]) == 1


def test_author_pruning_resets_young_heads_and_has_no_floor_and_no_hysteresis() -> None:
    dwell = ac.author_prune_dwell(D)  # 29 958 checks at d = 5
    assert dwell == math.ceil(2 / (1 / 50 * 0.01) * math.log(20))
    heads = (HeadRecord(0, 0, below_count=99), HeadRecord(1, 0, below_count=50))
    state = replace(initial_state(D, 2), heads=heads)
    weak = {0: 0.0, 1: 0.0}
    young, _ = ac.author_prune_decision(state, _cfg(), weak, (dwell - 1) * G, d=D, check_every=G)
    assert [h.below_count for h in young.heads] == [0, 0]  # reset while young, even below φ_g
    old, ev = ac.author_prune_decision(state, _cfg(), weak, dwell * G, d=D, check_every=G)
    assert old.heads == (HeadRecord(1, 0, below_count=51),)  # head 0 reached 100: pruned, no hysteresis asked
    assert [e.head_id for e in ev if e.kind is EventKind.HEAD_PRUNE] == [0]
    last = replace(state, heads=(HeadRecord(0, 0, below_count=99),))
    empty, _ = ac.author_prune_decision(last, _cfg(), {0: 0.0}, dwell * G, d=D, check_every=G)
    assert empty.heads == ()  # no minimum head count
    strong, _ = ac.author_prune_decision(last, _cfg(), {0: 0.02}, dwell * G, d=D, check_every=G)
    assert strong.heads[0].below_count == 0  # G_h ≥ φ_g = 0.01 resets the counter


def test_author_code_combines_with_no_other_variant() -> None:
    assert check_growth_variants("v", ("author_code",)) == ("author_code",)
    with pytest.raises(ValueError, match="combines with no other variant"):
        check_growth_variants("v", ("author_code", "prune_at_theta"))


def test_the_variants_config_turns_off_hysteresis_and_the_head_floor_only_under_it() -> None:
    author = growth_config_for(TrainConfig(steps=1, growth_variants=("author_code",)), 0.5)
    paper = growth_config_for(TrainConfig(steps=1), 0.5)
    assert (author.hysteresis, author.min_heads, author.phi_g, author.T_prune) == (False, 0, 0.005, 5)
    assert (paper.hysteresis, paper.min_heads, paper.variants) == (True, 1, ())


def test_the_initial_trackers_are_orthogonal_only_under_the_variant() -> None:
    author = init_state(LAYER, replace(RUN, growth_variants=("author_code",)), rng=np.random.default_rng(0))
    paper = init_state(LAYER, RUN, rng=np.random.default_rng(0))
    assert abs(author.w_top @ author.w_bottom) < 1e-15
    assert abs(paper.w_top @ paper.w_bottom) > 1e-3
    np.testing.assert_array_equal(author.w_top, paper.w_top)


# ---- G6 watched on the author's trackers ---------------------------------------------------------------


def _author_ctx_state(A_scale: float) -> tuple[Context, gp.TrainerState, Probe, np.ndarray]:
    cfg = replace(RUN, growth_variants=("author_code",))
    data = small_data()
    probe = Probe(x=data.x_train[:4], labels=data.labels_train[:4])  # N = 4·4 = 16 tokens
    state = init_state(LAYER, cfg, rng=np.random.default_rng(TRAIN_SEED))
    growth_cfg, _ = calibrate(state.params, cfg, [probe])
    ctx = Context(LAYER, cfg, growth_cfg)
    A = A_scale * np.diag([1.0, 0.5, 0.0, -0.25, -1.0])  # spread 2·A_scale
    return ctx, state, probe, A


@pytest.mark.parametrize(("A_scale", "fails"), [(4.0, True), (1.0, False)])
def test_g6_step_size_hypothesis_fails_where_the_authors_step_is_too_large(A_scale: float, fails: bool) -> None:
    """η₊ = 1/(10d) = 1/50 on S = N·A_res with N = 16: η₊(λ_max − λ_min)(S) = 16·2·A_scale/50, 2.56 (> 2:
    fails) at A_scale = 4 and 0.64 (holds) at 1; the paper's trackers on the same operator keep the
    certified step 1/‖A‖_F, so their step-size hypothesis holds in both cases."""
    ctx, state, probe, A = _author_ctx_state(A_scale)
    eta_spread = (1 / 50) * 16 * (2 * A_scale)
    assert (eta_spread > 2) == fails
    _, _, records = phases.track(ctx, state, probe, A)
    assert records, "G6 is recorded at every check under the variant"
    hyps = {h for r in records for h in (r.failed_hypotheses or ())}
    assert ("step_size" in hyps) == fails
    assert not any(r.violation for r in records)  # where it fails nothing was promised: not a violation
    paper_ctx = replace(ctx, train_cfg=RUN, growth_cfg=replace(ctx.growth_cfg, variants=()))
    paper_state = init_state(LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED))
    _, _, paper_records = phases.track(paper_ctx, paper_state, probe, A)
    assert "step_size" not in {h for r in paper_records for h in (r.failed_hypotheses or ())}


def test_g6_is_checked_on_the_authors_uncoupled_steps() -> None:
    rng = np.random.default_rng(5)
    B = rng.standard_normal((D, D))
    S = B + B.T
    u_plus, u_minus = ac.initial_trackers(rng, D)
    runs = gp.author_g6_runs(S, u_plus, u_minus)
    assert runs[0].kind is TrackerKind.OJA
    assert runs[0].eta == 1 / 50
    assert runs[0].n_steps == 1
    # the Oja run is the author's step with g* = 1 (no coupling)
    np.testing.assert_allclose(runs[0].w, ac.author_oja_step(u_plus, u_minus, S, 1 / 50, 1.0), rtol=1e-14)
    y = float(u_minus @ S @ u_minus)
    assert len(runs) == (2 if y > 0 else 1)
    if len(runs) == 2:
        assert runs[1].alphas[0] == pytest.approx((1 / 100) * y / float(u_minus @ u_minus), rel=1e-15)


# ---- the whole check, both engines ---------------------------------------------------------------------

AUTHOR = replace(RUN, steps=100, theta=0.005, eval_every=0, growth_variants=("author_code",))


@pytest.mark.usefixtures("one_torch_thread")
def test_engines_agree_under_author_code() -> None:
    ref = small_run(AUTHOR)
    acc = accelerated_train(small_data(), LAYER, AUTHOR, rng=np.random.default_rng(TRAIN_SEED), dtype=torch.float64)
    assert (first_tie(ref, "float64"), first_tie(acc, "float64")) == (None, None), "a near-tie: pick another case"
    births = [(e.step, e.head_id) for e in ref.events if e.kind is EventKind.BIRTH]
    assert births == [(40, 1)]  # one birth, then the adaptive dwell (far beyond 100 steps) holds every other
    assert compare_trajectories(ref, acc, 1e-9).differences == ()
    # what decided: at the birth the trackers' λ̂_max (the event's statistic) is not the exact λ_max
    birth = next(e for e in ref.events if e.kind is EventKind.BIRTH)
    check = next(c for c in ref.checks if c.step == birth.step)
    assert birth.statistic != check.lam_max
    assert birth.statistic > ref.growth_config.theta == AUTHOR.theta
    assert ref.growth_config.hysteresis is False
    assert ref.growth_config.min_heads == 0
    # the paper's rule on the same run grows at the first check with λ_max > θ (the dwell T_d = 10 steps)
    paper = small_run(replace(AUTHOR, growth_variants=()))
    assert next(e.step for e in paper.events if e.kind is EventKind.BIRTH) == 10


@pytest.mark.usefixtures("one_torch_thread")
def test_the_differential_comparison_finds_a_torch_tracker_without_its_coupling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planted bug: the device's tracker step with g* = 1 (no coupling in the Oja step, none in MCA-EXIN);
    the comparison against the reference must see it."""
    right = acc_trk.author_track

    def uncoupled(
        S: torch.Tensor, u_plus: torch.Tensor, u_minus: torch.Tensor, gstar: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return right(S, u_plus, u_minus, 1.0)

    monkeypatch.setattr(acc_trk, "author_track", uncoupled)
    ref = small_run(AUTHOR)
    acc = accelerated_train(small_data(), LAYER, AUTHOR, rng=np.random.default_rng(TRAIN_SEED), dtype=torch.float64)
    assert compare_trajectories(ref, acc, 1e-9).differences != ()


def test_the_authors_prune_rule_never_fires_in_a_short_run() -> None:
    """Under the variant a head prune needs a head older than the prune dwell (29 958 checks at d = 5): with
    φ_g = 10 every head is weak at every check after the birth, and none is pruned."""
    rec = small_run(AUTHOR)
    after = [c for c in rec.checks if c.step > 40]
    assert after
    assert all(g < rec.growth_config.phi_g for c in after for g in c.head_strength.values())
    assert rec.architecture.head_prunes == 0
    assert rec.architecture.n_heads == 2


# ---- the audit under the variant -----------------------------------------------------------------------


def test_the_audit_passes_the_variant_to_the_run() -> None:
    from ddcl_incrt.audit.run import AuditOptions, train_config
    from ddcl_incrt.cli import build_parser

    assert train_config(AuditOptions(quick=True, growth_variants=("author_code",))).growth_variants == ("author_code",)
    assert train_config(AuditOptions(quick=True)).growth_variants == ()
    args = build_parser().parse_args(["audit", "--growth-variant", "author_code"])
    assert args.growth_variants == ["author_code"]
    assert build_parser().parse_args(["audit"]).growth_variants is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["audit", "--growth-variant", "author"])


def test_the_audit_says_what_decided_under_the_variant() -> None:
    from ddcl_incrt.audit.summary import author_code_pacing, event_rows, findings

    rec = small_run(AUTHOR)
    pacing = author_code_pacing(rec)
    assert pacing.checks == 10
    assert pacing.prune_dwell == 29958
    # every birth needs both gates open at its check, and the exact λ_max above θ there (a Rayleigh quotient
    # is at most λ_max)
    assert pacing.gates_open >= rec.architecture.births == 1
    assert pacing.exact_above >= pacing.gates_open
    assert len(pacing.birth_ratios) == 1
    assert 0.0 < pacing.birth_ratios[0] < 1.0
    found = findings(rec)
    assert any("prune dwell is 29958 checks at d = 5" in f for f in found)
    assert not any("dwell timer" in f for f in found)  # the paper rule's T_d finding does not apply
    births = [r for r in event_rows(rec) if r.kind == "birth"]
    assert all("trackers' λ̂_max" in r.reason for r in births)
    paper = small_run(replace(AUTHOR, growth_variants=()))
    assert not any("author_code" in f for f in findings(paper))


def test_a_run_under_the_variant_resumes_bit_for_bit(tmp_path: Path) -> None:
    """A checkpoint between checks holds the author's tracker vectors (their one-step estimates decide the
    birth at step 40 and every later check's recorded tracker gaps depend on them) and the dwell state."""
    policy = CheckpointPolicy(tmp_path, at_steps=frozenset({35}), keep=0)
    record = run(
        small_data(), LAYER, AUTHOR, rng=np.random.default_rng(TRAIN_SEED), engine=ReferenceEngine(), checkpoints=policy
    )
    assert [e.step for e in record.events if e.kind is EventKind.BIRTH] == [40]
    resumed = resume(Checkpoint.load(policy.path(35)), small_data(), engine=ReferenceEngine())

    def comparable(rec: RunRecord) -> dict[str, object]:
        d: dict[str, object] = json.loads(rec.to_json())
        d.pop("wall_time_s")
        return d

    assert comparable(resumed) == comparable(record)
    # planted: a checkpoint whose tracker vectors were lost (re-drawn) gives another record
    ck = Checkpoint.load(policy.path(35))
    lost = replace(ck, state=replace(ck.state, w_top=ck.state.w_bottom, w_bottom=ck.state.w_top))
    assert comparable(resume(lost, small_data(), engine=ReferenceEngine())) != comparable(record)
