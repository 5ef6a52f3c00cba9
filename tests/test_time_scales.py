"""Claim R3's study: the stability criteria (reference.coupling_statistics) and the sweep
(ddcl_incrt.studies.time_scales).

The criteria are the study's definitions (docs/studies/time-scales.md); these tests check that each is
computed as defined and that each fires, alone, on a record planted to violate it (just past its bound),
never that joint training is stable."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ddcl_incrt.studies import time_scales as ts
from reference.coupling_statistics import (
    STABILITY_BOUNDS,
    STABILITY_CRITERIA,
    StabilityBounds,
    StabilityCriterion,
    effective_prototype_count,
    free_energy_descent,
    stability_criteria,
    windowed_means,
)
from reference.model import LayerConfig
from reference.train_config import TrainConfig
from training.data import planted_offsets
from training.record import RunRecord
from training.trainer import train

STEPS = 20  # 10 windows of 2 steps
N_CHECKS = 4


@pytest.fixture(scope="module")
def trained() -> RunRecord:
    """A real (tiny) run of the reference trainer: the record whose losses and checks are planted below."""
    data = planted_offsets(n_train=64, n_test=32, rng=np.random.default_rng(0))
    layer = LayerConfig(d_in=6, d=8, d_k=4, d_v=4, seq_len=8, K_max=4, n_classes=2, T_P=1.0, lambda_q=0.1)
    cfg = TrainConfig(steps=STEPS, batch_size=8, check_every=5, probe_size=16, calibration_probes=1)
    cfg = replace(cfg, check_invariants=False, eps_K=0.0)
    record = train(data, layer, cfg, rng=np.random.default_rng(1))
    assert len(record.checks) == N_CHECKS
    assert len(record.losses.F) == STEPS
    return record


def _steps(window_values: list[float]) -> tuple[float, ...]:
    """A per-step series whose 10 windows of 2 steps have exactly these means."""
    assert len(window_values) == 10
    return tuple(v for v in window_values for _ in range(2))


def healthy(record: RunRecord) -> RunRecord:
    """``record`` with clean planted values: F and L_task fall, S constant at 1, S_min 0.5, uniform masses."""
    F = _steps([10.0, 8.0, 6.0, 4.0, 3.0, 2.5, 2.2, 2.1, 2.0, 2.0])
    L_task = _steps([2.3, 2.0, 1.7, 1.5, 1.3, 1.2, 1.1, 1.0, 1.0, 1.0])
    losses = replace(record.losses, F=F, L_task=L_task, L=tuple(x + 0.1 for x in L_task))
    checks = tuple(
        replace(c, separation=1.0, min_separation=0.5, mass={0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25}) for c in record.checks
    )
    return replace(record, losses=losses, checks=checks)


def failing(record: RunRecord) -> set[str]:
    return {c.name for c in stability_criteria(record) if not c.holds}


def with_losses(record: RunRecord, **series: tuple[float, ...]) -> RunRecord:
    return replace(record, losses=replace(record.losses, **series))


def with_check(record: RunRecord, index: int, **fields: object) -> RunRecord:
    checks = list(record.checks)
    checks[index] = replace(checks[index], **fields)  # type: ignore[arg-type]
    return replace(record, checks=tuple(checks))


# --------------------------------------------------------------------------------------------------
# The criteria: known answers, and each fires alone on a planted violation
# --------------------------------------------------------------------------------------------------


@pytest.mark.claim("R3", "property")
def test_criteria_hold_on_a_healthy_record_with_hand_computed_values(trained: RunRecord) -> None:
    crit = {c.name: c for c in stability_criteria(healthy(trained))}
    assert tuple(crit) == STABILITY_CRITERIA
    # F's windows fall 10 → 2 and never rise: rise 0, drop 8
    assert crit["free_energy_descent"].value == 0.0
    assert crit["separation_bounded"].value == 1.0
    assert crit["prototypes_distinct"].value == 0.5
    assert crit["mass_spread"].value == pytest.approx(4.0, rel=1e-15)  # uniform over 4: N_eff = 4
    assert crit["finite_losses"].value == 0.0
    assert crit["task_loss_bounded"].value == pytest.approx(1.0 / 2.3, rel=1e-15)
    assert all(c.holds for c in crit.values())


@pytest.mark.claim("R3", "property")
def test_windowed_means_and_free_energy_rise_over_drop_known_answers() -> None:
    assert windowed_means([1.0, 3.0, 5.0, 7.0, 9.0], 2) == (3.0, 8.0)  # array_split: [1, 3, 5], [7, 9]
    # windows 10, 2, 6: drop = 10 − 2 = 8, rise = 6 − 2 = 4 (the best later-minus-earlier), ratio 1/2
    c = free_energy_descent([10.0, 2.0, 6.0], windows=3)
    assert c.value == 0.5
    assert not c.holds
    # a rise that happens before the minimum counts too: windows 5, 9, 1 → rise 4, drop 4
    assert free_energy_descent([5.0, 9.0, 1.0], windows=3).value == 1.0
    assert free_energy_descent([1.0, 1.0, 1.0], windows=3).value == 0.0  # neither rose nor fell
    assert free_energy_descent([1.0, 1.0, 2.0], windows=3).value == math.inf  # rose, never fell
    assert effective_prototype_count({0: 1.0, 1: 0.0}) == 1.0
    assert effective_prototype_count({0: 0.5, 1: 0.5}) == pytest.approx(2.0, rel=1e-15)


@pytest.mark.claim("R3", "planted")
def test_free_energy_rising_back_is_flagged_by_exactly_its_criterion_just_past_the_bound(trained: RunRecord) -> None:
    base = healthy(trained)
    # windows 10 … 2, then back up: drop 8, so a rise of 0.25 · 8 = 2 is the bound
    at = _steps([10.0, 8.0, 6.0, 4.0, 3.0, 2.5, 2.2, 2.1, 2.0, 4.0])
    past = _steps([10.0, 8.0, 6.0, 4.0, 3.0, 2.5, 2.2, 2.1, 2.0, float(np.nextafter(4.0, 5.0))])
    assert failing(with_losses(base, F=at)) == set()
    assert failing(with_losses(base, F=past)) == {"free_energy_descent"}


@pytest.mark.claim("R3", "planted")
def test_separation_blowing_up_is_flagged_by_exactly_its_criterion_just_past_the_bound(trained: RunRecord) -> None:
    base = healthy(trained)
    assert failing(with_check(base, 1, separation=100.0)) == set()
    assert failing(with_check(base, 1, separation=float(np.nextafter(100.0, 200.0)))) == {"separation_bounded"}
    assert failing(with_check(base, 2, separation=math.inf)) == {"separation_bounded"}


@pytest.mark.claim("R3", "planted")
def test_merged_prototypes_are_flagged_by_exactly_their_criterion_just_past_the_bound(trained: RunRecord) -> None:
    base = healthy(trained)
    last = N_CHECKS - 1
    assert failing(with_check(base, last, min_separation=0.01)) == set()
    assert failing(with_check(base, last, min_separation=float(np.nextafter(0.01, 0.0)))) == {"prototypes_distinct"}


def _two_masses_with_n_eff(target: float) -> float:
    """``p`` with ``N_eff({1 − p, p}) = target`` (bisection on [0, 1/2], where N_eff rises from 1 to 2)."""
    lo, hi = 0.0, 0.5
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if effective_prototype_count({0: 1.0 - mid, 1: mid}) < target else (lo, mid)
    return hi


@pytest.mark.claim("R3", "planted")
def test_mass_on_one_prototype_is_flagged_by_exactly_its_criterion_just_past_the_bound(trained: RunRecord) -> None:
    base = healthy(trained)
    last = N_CHECKS - 1
    p = _two_masses_with_n_eff(1.5)
    assert effective_prototype_count({0: 1.0 - p, 1: p}) >= 1.5
    below = float(np.nextafter(p, 0.0))
    assert effective_prototype_count({0: 1.0 - below, 1: below}) < 1.5
    assert failing(with_check(base, last, mass={0: 1.0 - p, 1: p, 2: 0.0, 3: 0.0})) == set()
    assert failing(with_check(base, last, mass={0: 1.0 - below, 1: below, 2: 0.0, 3: 0.0})) == {"mass_spread"}


@pytest.mark.claim("R3", "planted")
def test_a_non_finite_loss_is_flagged_by_exactly_its_criterion(trained: RunRecord) -> None:
    base = healthy(trained)
    L = list(base.losses.L)
    L[7] = math.nan
    assert failing(with_losses(base, L=tuple(L))) == {"finite_losses"}
    L[7] = math.inf
    assert failing(with_losses(base, L=tuple(L))) == {"finite_losses"}


@pytest.mark.claim("R3", "planted")
def test_a_task_loss_ending_above_its_start_is_flagged_by_exactly_its_criterion(trained: RunRecord) -> None:
    base = healthy(trained)
    at = _steps([2.3, 2.0, 1.7, 1.5, 1.3, 1.2, 1.1, 1.0, 1.0, 2.3])
    past = _steps([2.3, 2.0, 1.7, 1.5, 1.3, 1.2, 1.1, 1.0, 1.0, float(np.nextafter(2.3, 3.0))])
    assert failing(with_losses(base, L_task=at)) == set()
    assert failing(with_losses(base, L_task=past)) == {"task_loss_bounded"}


def test_a_single_prototype_left_is_a_collapse(trained: RunRecord) -> None:
    collapsed = with_check(healthy(trained), N_CHECKS - 1, separation=None, min_separation=None, mass={0: 1.0})
    assert failing(collapsed) == {"prototypes_distinct", "mass_spread"}


def test_the_real_record_is_judged_on_its_own_values(trained: RunRecord) -> None:
    """On the unplanted run every criterion is evaluated from the record (values finite or ∞, no error)."""
    crit = stability_criteria(trained)
    assert [c.name for c in crit] == list(STABILITY_CRITERIA)
    first = trained.checks[0].separation
    assert first is not None
    assert crit[1].value == max(c.separation for c in trained.checks if c.separation is not None) / first


def test_criteria_refuse_bad_input(trained: RunRecord) -> None:
    with pytest.raises(ValueError, match="series"):
        windowed_means([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="windows"):
        StabilityBounds(windows=1)
    with pytest.raises(ValueError, match="max_free_energy_rise"):
        StabilityBounds(max_free_energy_rise=0.0)
    with pytest.raises(ValueError, match="mass"):
        effective_prototype_count({0: 1.5, 1: -0.5})
    with pytest.raises(ValueError, match="record"):
        stability_criteria(replace(trained, checks=()))
    assert not StabilityCriterion("x", math.nan, 1.0, upper=True).holds
    assert not StabilityCriterion("x", math.nan, 1.0, upper=False).holds


# --------------------------------------------------------------------------------------------------
# The sweep: rates, grid checks, boundaries, outputs
# --------------------------------------------------------------------------------------------------


def test_rates_of_the_two_arms() -> None:
    a = ts.rates_for(ts.ARM_P_FIXED, 0.1)
    assert (a.prototypes, a.rest, a.temperatures) == pytest.approx((1e-2, 1e-3, 1e-3), rel=1e-15)
    b = ts.rates_for(ts.ARM_MEAN_FIXED, 100.0)
    assert b.rest / b.prototypes == pytest.approx(100.0, rel=1e-14)
    assert math.sqrt(b.rest * b.prototypes) == pytest.approx(math.sqrt(3e-3 * 1e-2), rel=1e-14)
    assert b.temperatures == b.rest
    assert len(ts.RATIOS) == 11
    assert ts.RATIOS[0] == pytest.approx(1e-3)
    assert ts.RATIOS[-1] == pytest.approx(100.0)


def test_bad_sweep_arguments_give_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="ratio"):
        ts.rates_for(ts.ARM_P_FIXED, 0.0)
    with pytest.raises(ValueError, match="arm"):
        ts.rates_for("both", 1.0)
    with pytest.raises(ValueError, match="grid is empty"):
        ts.SweepConfig(ratios=())
    with pytest.raises(ValueError, match=r"ratios\[1\]"):
        ts.SweepConfig(ratios=(0.1, -1.0))
    with pytest.raises(ValueError, match="increasing"):
        ts.SweepConfig(ratios=(1.0, 0.1))
    with pytest.raises(ValueError, match="seeds"):
        ts.ArmSpec(ts.ARM_P_FIXED, ())
    with pytest.raises(SystemExit):
        ts.main(["--out", str(tmp_path), "--ratios", "0,1"])
    assert "ratios[0]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ts.main(["--out", str(tmp_path), "--ratios", ""])
    assert "grid is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ts.main(["--out", str(tmp_path), "--arms", "P-fixed,both"])
    assert "--arms" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ts.main(["--out", str(tmp_path), "--seeds", "0,x"])
    assert "--seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ts.main(["--out", str(tmp_path), "--seeds", "0,0"])
    assert "repeated seeds" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_boundaries_and_majority() -> None:
    r = (0.01, 0.1, 1.0, 10.0)
    assert ts.boundaries(r, [False, False, True, True]) == (None, 1.0)
    assert ts.boundaries(r, [True, False, False, False]) == (0.01, None)
    assert ts.boundaries(r, [False, True, False, False]) == (None, None)  # isolated: listed, no boundary
    assert ts.boundaries(r, [True, True, True, True]) == (10.0, 0.01)
    assert ts.unstable_majority([False] * 5 + [True] * 5)
    assert not ts.unstable_majority([False] * 4 + [True] * 6)


def _fake_run(ratio: float, seed: int, stable: bool, acc: float) -> ts.RunResult:
    crit = tuple(StabilityCriterion(n, 0.0, 1.0, upper=True) for n in STABILITY_CRITERIA)
    if not stable:
        crit = (StabilityCriterion("free_energy_descent", 2.0, 0.25, upper=True), *crit[1:])
    return ts.RunResult(ts.ARM_P_FIXED, ratio, seed, ratio * 1e-2, 1e-2, crit, acc, 1, 2, 0, 1.0)


def test_study_result_summaries_on_constructed_runs() -> None:
    cfg = ts.SweepConfig(ratios=(0.1, 1.0, 10.0), arms=(ts.ArmSpec(ts.ARM_P_FIXED, (0, 1)),), steps=10, workers=1)
    runs = (
        _fake_run(0.1, 0, True, 0.5),
        _fake_run(0.1, 1, True, 0.6),
        _fake_run(1.0, 0, True, 0.9),
        _fake_run(1.0, 1, False, 0.7),
        _fake_run(10.0, 0, False, 0.2),
        _fake_run(10.0, 1, True, 0.3),
    )
    res = ts.StudyResult(cfg, runs, 1.0)
    d = res.to_dict()["arms"][ts.ARM_P_FIXED]
    assert (d["lower_boundary"], d["upper_boundary"]) == (None, 1.0)  # 1 of 2 unstable is "at least half"
    assert d["best_median_test_accuracy"] == pytest.approx(0.8)
    # learned iff test accuracy >= 0.8 · 0.8 = 0.64
    assert [res.learned(r) for r in runs] == [False, False, True, True, False, False]
    assert [c["stable"] for c in d["cells"]] == [2, 1, 1]
    md = ts.markdown(res)
    assert "between 0.1 and 1" in md
    assert "| P-fixed | 10 | 0 | no | free_energy_descent |" in md


def test_quick_sweep_writes_its_three_files(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    assert ts.main(["--out", str(tmp_path), "--quick"]) == 0
    data = json.loads((tmp_path / "time_scales.json").read_text(encoding="utf-8"))
    assert data["schema"] == ts.SCHEMA
    assert data["label"] == "measured"
    assert len(data["runs"]) == len(ts.QUICK_RATIOS) * 2
    for run in data["runs"]:
        assert run["error"] is None
        assert set(run["criteria"]) == set(STABILITY_CRITERIA)
        assert run["stable"] == all(c["holds"] for c in run["criteria"].values())
        record = RunRecord.load(tmp_path / "records" / ts.record_name(run["arm"], run["ratio"], run["seed"]))
        recomputed = {c.name: c.value for c in stability_criteria(record, STABILITY_BOUNDS)}
        assert recomputed == pytest.approx({k: v["value"] for k, v in run["criteria"].items()}, rel=1e-12)
    assert "## Arm `P-fixed`" in (tmp_path / "time_scales.md").read_text(encoding="utf-8")
    assert (tmp_path / "time_scales.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # re-judging from the saved records gives the same verdicts; a run without a record is an error if
    # the progress log reports one, else it is listed as not run
    cfg = ts.SweepConfig.quick()
    table = ts.feature_scale_table(cfg, tmp_path).splitlines()
    assert len(table) == 2 + len(data["runs"])  # header, rule, one row per (arm, ratio) with 1 seed each
    again, missing = ts.from_records(cfg, tmp_path)
    assert missing == []
    assert [r.to_dict()["criteria"] for r in again.runs] == [r["criteria"] for r in data["runs"]]
    (tmp_path / "records" / ts.record_name(ts.ARM_P_FIXED, 0.1, 0)).unlink()
    (tmp_path / "records" / ts.record_name(ts.ARM_P_FIXED, 10.0, 0)).unlink()
    (tmp_path / "progress.log").write_text(
        "[1/4] P-fixed r=0.1 seed=0: error: ValueError: P: step overflowed (test acc nan, 1.0 s)\n", encoding="utf-8"
    )
    partial, missing = ts.from_records(cfg, tmp_path)
    assert missing == ["P-fixed r=10 seed=0"]
    errored = partial.runs[0]
    assert errored.error == "ValueError: P: step overflowed"
    assert not errored.stable
