"""The audit's conclusions (``ddcl_incrt.audit.summary``) on constructed records with known answers, and
the ``ddcl-incrt audit`` command end to end (``--quick``, both engines, bad arguments)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _small_run import small_run

from ddcl_incrt.audit import summary as audit_summary_mod
from ddcl_incrt.audit.figures import FIGURES
from ddcl_incrt.audit.summary import audit_summary, claim_rows, event_rows, exit_code, findings
from ddcl_incrt.claim_checks import FalsifierResult, StepResult, falsifier_results
from ddcl_incrt.cli import main, proofs_line
from reference.claims.registry import REGISTRY
from reference.incrt.controller import EventKind, GrowthEvent
from reference.invariants.result import InvariantResult
from reference.log import EVENT_TRAIN_STEP, InvariantRecord
from training.record import RunRecord


@pytest.fixture(scope="module")
def record() -> RunRecord:
    return small_run()


def _with_invariant(rec: RunRecord, claim_id: str, value: float, bound: float) -> RunRecord:
    extra = InvariantRecord(1, EVENT_TRAIN_STEP, InvariantResult(claim_id, "planted", value, bound))
    return replace(rec, invariants=(*rec.invariants, extra))


def test_claim_table_has_one_row_per_registry_claim_in_order(record: RunRecord) -> None:
    rows = claim_rows(record)
    assert [r.claim_id for r in rows] == list(REGISTRY)
    assert [r.label for r in rows] == [c.label.value for c in REGISTRY.values()]
    by_id = {r.claim_id: r for r in rows}
    summary = record.summary()
    for cid, s in summary.items():
        # R1(a): the newborn's write is not orthogonal to the tokens here, so nothing is promised
        expected = "not promised" if cid == "R1" else "held"
        assert (by_id[cid].checks, by_id[cid].violations, by_id[cid].status) == (s.count, s.violations, expected)
    assert by_id["G3"].status == "held"  # at every birth, on that check's A_res held fixed
    assert by_id["D4"].status in ("held", "not promised")  # at every check; promised only while T_P < T_c
    assert by_id["R3"].status == "study: run `python -m ddcl_incrt.studies.time_scales --out DIR`"
    # no dual competitive layer is trained by the audit, and the row says so (the registry's reason)
    assert by_id["D6"].status == "not checked live"
    assert any(REGISTRY["D6"].not_live in line for line in audit_summary_mod.not_live_lines())
    assert by_id["R4"].status == audit_summary_mod.MEASURED_STATUS


def test_the_registry_names_every_event_a_run_checks_its_claims_at(record: RunRecord) -> None:
    """``Claim.live`` (which the "not checked live" status reads) agrees with what the trainer records;
    a registry entry that leaves out an event the run checks at is reported, naming claim and event."""
    assert {r.result.claim_id for r in record.invariants} >= {"D1", "G1", "G5", "G6"}
    assert audit_summary_mod.checks_outside_registry(record) == []
    planted = {**REGISTRY, "G5": replace(REGISTRY["G5"], live=("check",))}
    assert audit_summary_mod.checks_outside_registry(record, planted) == [
        "G5: recorded at head_prune, but its registry entry lists live=['check']"
    ]
    without_d1 = {cid: c for cid, c in REGISTRY.items() if cid != "D1"}
    assert audit_summary_mod.checks_outside_registry(record, without_d1) == [
        "D1: recorded at train_step, but the registry has no such claim"
    ]


def test_a_violated_proved_claim_sets_the_exit_code_and_a_measured_one_does_not(record: RunRecord) -> None:
    assert exit_code(record) == 0
    just_past = float(np.nextafter(1.0, 2.0))  # value one ulp above its bound
    bad = _with_invariant(record, "D1", just_past, 1.0)
    assert exit_code(bad) == 1
    row = {r.claim_id: r for r in claim_rows(bad)}["D1"]
    assert row.status == "violated"
    assert row.violations == 1
    assert exit_code(_with_invariant(record, "D1", 1.0, 1.0)) == 0  # value == bound holds
    assert exit_code(_with_invariant(record, "R2", 2.0, 1.0)) == 0  # R2 is `measured`
    assert any("D1" in f for f in findings(bad))


def _birth(step: int, hid: int) -> GrowthEvent:
    return GrowthEvent(step, EventKind.BIRTH, 1.0, 0.5, 0.5, "grow", head_id=hid, u_plus=np.ones(5) / 5**0.5)


def test_findings_name_a_ratcheting_head_count_and_dwell_paced_births(record: RunRecord) -> None:
    # T_d = 10, g = 10: births at 10, 20, 30 are each at the first check the dwell allowed; 55 is not a check.
    rec = replace(record, events=(_birth(10, 1), _birth(20, 2), _birth(30, 3)))
    rec = replace(rec, architecture=replace(rec.architecture, births=3, head_prunes=0))
    text = " ".join(findings(rec))
    assert "only ratcheted up: 3 births" in text
    assert "2 of the 2 later births came at the first check the dwell" in text
    late = replace(rec, events=(_birth(10, 1), _birth(40, 2), _birth(80, 3)))
    assert "first check the dwell" not in " ".join(findings(late))
    pruned = replace(rec, architecture=replace(rec.architecture, head_prunes=1))
    assert "ratcheted" not in " ".join(findings(pruned))


def test_event_rows_state_the_comparison_that_decided(record: RunRecord) -> None:
    rows = event_rows(record)
    assert len(rows) == len(record.events)
    for row, e in zip(rows, record.events, strict=True):
        assert (row.step, row.kind) == (e.step, e.kind.value)
        if e.kind is EventKind.BIRTH:
            assert f"{e.statistic:.4g} > θ" in row.reason
            assert row.unit == f"head {e.head_id}"


def test_summary_document_is_json_without_nan(record: RunRecord) -> None:
    doc = audit_summary(record, engine="reference", wall_time_s=1.0)
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text)["schema"] == audit_summary_mod.SCHEMA
    assert [c["claim_id"] for c in doc["claims"]] == list(REGISTRY)


# ---- the command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["reference", "accelerated"])
def test_audit_quick_writes_the_report_and_exits_zero(engine: str, tmp_path: Path) -> None:
    if engine == "accelerated":
        pytest.importorskip("torch")
    out = tmp_path / engine
    code = main(["audit", "--quick", "--dataset", "planted", "--steps", "60", "--engine", engine, "--out", str(out)])
    assert code == 0
    for name in ("report.html", "report.md", "summary.json", "record.json"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (doc["steps"], doc["exit_code"]) == (60, 0)
    assert engine in doc["engine"]
    rec = RunRecord.load(out / "record.json")
    assert len(rec.losses.L) == 60


def test_an_interrupted_audit_resumes_to_the_same_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--checkpoint-every writes checkpoints; --resume from the earlier one repeats the run exactly."""
    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "40", "--engine", "reference"]
    full = tmp_path / "full"
    assert main([*argv, "--out", str(full), "--checkpoint-every", "20"]) == 0
    first = full / "checkpoints" / "step-00000020.ckpt.npz"
    assert first.is_file()
    resumed = tmp_path / "resumed"
    assert main([*argv, "--out", str(resumed), "--resume", str(first)]) == 0

    def without_time(path: Path) -> dict[str, object]:
        d = json.loads(path.read_text(encoding="utf-8"))
        d.pop("wall_time_s")
        assert d["meta"]["provenance"]["python"]  # where and with what the run was made
        d["meta"]["provenance"].pop("date_utc")
        return d

    assert without_time(resumed / "record.json") == without_time(full / "record.json")
    other = ["audit", "--quick", "--dataset", "planted", "--steps", "50", "--engine", "reference"]
    assert main([*other, "--resume", str(first), "--out", str(tmp_path / "x")]) == 2
    assert "resume: the checkpoint was written with another training configuration" in capsys.readouterr().err
    folder = full / "checkpoints"  # a folder: the refusal names the file it chose there
    assert main([*other, "--resume", str(folder), "--out", str(tmp_path / "x")]) == 2
    newest = folder / "step-00000040.ckpt.npz"
    assert f"the checkpoint ({newest}, the newest intact checkpoint of {folder})" in capsys.readouterr().err


def test_an_audit_interrupted_after_training_names_its_last_state_and_resumes_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C or SIGTERM while the report is written (after training, --checkpoint-every 0): the line
    names the last step's checkpoint (written at the end of every audit's training) instead of "nothing
    was saved", and --resume from it writes the report without training again, the same record."""
    import ddcl_incrt.audit.report as report

    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "30", "--engine", "reference"]
    full = tmp_path / "full"
    assert main([*argv, "--out", str(full), "--checkpoint-every", "0"]) == 0
    interrupted = tmp_path / "interrupted"

    def stopped(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(report, "write_report", stopped)
        assert main([*argv, "--out", str(interrupted), "--checkpoint-every", "0"]) == 130
    last = interrupted / "checkpoints" / "step-00000030.ckpt.npz"
    err = capsys.readouterr().err
    assert f"training had finished: its last state is in {last} (resume from it)" in err
    assert "--resume" in err
    assert not (interrupted / "record.json").exists()
    progress: list[str] = []
    assert main([*argv, "--out", str(interrupted), "--resume", str(last)]) == 0
    progress.append(capsys.readouterr().out)
    assert "resuming from step 30" in progress[0]

    def without_time(path: Path) -> dict[str, object]:
        d = json.loads(path.read_text(encoding="utf-8"))
        d.pop("wall_time_s")
        d["meta"]["provenance"].pop("date_utc")
        return d

    assert without_time(interrupted / "record.json") == without_time(full / "record.json")


def test_an_audit_interrupted_in_the_final_evaluation_names_its_last_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer evaluates the final state after its loop, where its own note is not added, and the
    audit's note covered only what came after run_training: Ctrl-C there said "nothing was saved" beside
    the last step's checkpoint, already written."""
    from training.trainer import ReferenceEngine

    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "30", "--engine", "reference"]
    out = tmp_path / "out"
    real = ReferenceEngine.evaluate

    def stopped_at_the_end(self: ReferenceEngine, es: object, cfg: object, data: object, step: int) -> object:
        if step == 30:  # the final evaluation (the scheduled ones come before the last step)
            raise KeyboardInterrupt
        return real(self, es, cfg, data, step)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(ReferenceEngine, "evaluate", stopped_at_the_end)
        assert main([*argv, "--out", str(out), "--checkpoint-every", "0"]) == 130
    last = out / "checkpoints" / "step-00000030.ckpt.npz"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"ddcl-incrt audit: interrupted: training had finished: its last state is in {last} (resume from it) "
        "(run the same command with --resume and that path)"
    ]
    # resumed from that last checkpoint into another folder, nothing is trained or written: an interrupt
    # in the final evaluation names the checkpoint it resumed from
    with monkeypatch.context() as m:
        m.setattr(ReferenceEngine, "evaluate", stopped_at_the_end)
        assert main([*argv, "--out", str(tmp_path / "again"), "--resume", str(last)]) == 130
    assert f"training had finished: its last state is in {last} (resume from it)" in capsys.readouterr().err
    assert main([*argv, "--out", str(out), "--resume", str(last)]) == 0
    assert "resuming from step 30" in capsys.readouterr().out


def test_an_earlier_run_s_last_checkpoint_is_not_named_for_an_audit_interrupted_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint of the last step's name left in --out by an earlier run is no state of this one."""
    from ddcl_incrt.audit import run as audit_run

    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "30", "--engine", "reference"]
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out), "--checkpoint-every", "0"]) == 0
    capsys.readouterr()

    def stopped(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(audit_run, "named_dataset", stopped)
        assert main([*argv, "--out", str(out), "--checkpoint-every", "0"]) == 130
    assert capsys.readouterr().err == "ddcl-incrt audit: interrupted: nothing was saved\n"


def test_study_results_become_report_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--studies DIR: each study folder's table and figure appear in report.md and report.html."""
    study = tmp_path / "studies" / "toy"
    study.mkdir(parents=True)
    (study / "toy.md").write_text("# A toy study (measured)\n\n| arm | value |\n|---|---|\n| a | 0.25 |\n", "utf-8")
    (study / "toy.png").write_bytes(FIGURES[0].render(small_run(), tmp_path / "fig.png").read_bytes())
    out = tmp_path / "out"
    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "20", "--engine", "reference", "--out", str(out)]
    assert main([*argv, "--studies", str(tmp_path / "studies")]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "### A toy study (measured)" in md
    assert "| a | 0.25 |" in md
    assert "figures/study-toy.png" in md
    assert (out / "figures" / "study-toy.png").read_bytes() == (study / "toy.png").read_bytes()
    assert 'data-section="study-toy"' in (out / "report.html").read_text(encoding="utf-8")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["studies"] == [
        {"name": "toy", "title": "A toy study (measured)"}
    ]
    capsys.readouterr()
    assert main([*argv, "--studies", str(tmp_path / "nowhere")]) == 2
    assert "--studies" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "ten"], "--steps"),
        (["--theta", "-1"], "--theta"),
        (["--theta", "nan"], "--theta"),
        (["--dataset", "mnist"], "--dataset"),
        (["--checkpoint-every", "-1"], "--checkpoint-every"),
    ],
)
def test_bad_audit_arguments_name_the_argument(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", *argv])
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def test_coupling_measurements_read_the_checks(record: RunRecord) -> None:
    """R4's correlation and R1(b)'s around-birth separations on checks with constructed values."""
    checks = tuple(
        replace(c, separation=float(i + 1), min_separation=0.5, grad_V_norm=float(10 - i))
        for i, c in enumerate(record.checks)
    )
    rec = replace(record, checks=checks)
    m = audit_summary_mod.coupling_measurements(rec)
    assert m["R4"]["corr_separation_grad_V"] == pytest.approx(-1.0, rel=1e-12)
    assert m["R1"]["corr_separation_lam_max"] is not None
    for row in m["R1"]["around_births"]:
        at = [c for c in checks if c.step == row["birth_step"]]
        assert row["S_at_birth"] == (at[0].separation if at else None)
    assert m["R2"]["heads_by_birth_order"][0]["head_id"] == 0  # the initial head first
    assert "R4 (negative feedback)" not in " ".join(findings(rec))  # −1 agrees with the paper's sign
    flipped = replace(rec, checks=tuple(replace(c, grad_V_norm=float(i)) for i, c in enumerate(checks)))
    assert "R4 (negative feedback): the correlation" in " ".join(findings(flipped))


def test_r4_is_split_at_the_last_prototype_prune_with_n_and_a_confidence_interval(record: RunRecord) -> None:
    """Separation against ‖∇_P V‖ constructed to fall together before the last prototype prune and rise
    after it: the whole-run correlation hides two regimes of opposite sign, the split shows them."""
    last = max(e.step for e in record.events if e.kind is EventKind.PROTOTYPE_PRUNE)
    checks = tuple(
        replace(c, separation=float(i + 1), min_separation=0.5, grad_V_norm=float(10 - i if c.step <= last else i))
        for i, c in enumerate(record.checks)
    )
    rec = replace(record, checks=checks)
    before, after = audit_summary_mod.r4_by_regime(rec)
    n_before = sum(1 for c in checks if c.step <= last)
    assert (before["n"], after["n"]) == (n_before, len(checks) - n_before)
    assert f"step {last}" in before["regime"]
    assert after["r"] == pytest.approx(1.0, rel=1e-12)
    assert after["ci95"] is None  # |r| = 1: the interval is degenerate, none is given
    text = " ".join(findings(rec))
    assert "By regime" in text
    assert audit_summary_mod.r4_by_regime(replace(rec, events=())) == []


def test_a_correlations_interval_is_fishers_z() -> None:
    """The 95% interval against Fisher's z written out here: tanh(atanh r ± z_0.975/√(n − 3))."""
    x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [0.5, 0.9, 2.6, 2.4, 4.9, 4.1, 6.8]
    c = audit_summary_mod.correlation(x, y)
    r = float(np.corrcoef(x, y)[0, 1])
    half = 1.959963984540054 / np.sqrt(len(x) - 3)
    assert c["n"] == 7
    assert c["r"] == pytest.approx(r, rel=1e-12)
    assert c["ci95"] == pytest.approx([np.tanh(np.arctanh(r) - half), np.tanh(np.arctanh(r) + half)], rel=1e-9)
    assert audit_summary_mod.correlation(x[:3], y[:3])["ci95"] is None  # n < 4: no interval
    assert audit_summary_mod.correlation([1.0, 1.0], [2.0, 3.0])["r"] is None  # constant: undefined


def test_a_planted_run_is_compared_with_its_plant_and_accuracy_with_chance(record: RunRecord) -> None:
    assert record.dataset_meta["planted_heads"] == 2
    rec = replace(record, architecture=replace(record.architecture, n_heads=5))
    text = " ".join(findings(rec))
    assert "planted to be solved with 2 heads; the run ended with 5" in text
    assert "planted to be solved" not in " ".join(
        findings(replace(rec, architecture=replace(rec.architecture, n_heads=2)))
    )
    last = record.evaluations[-1]
    at_chance = replace(rec, evaluations=(*record.evaluations[:-1], replace(last, test_accuracy=0.5)))
    above = replace(rec, evaluations=(*record.evaluations[:-1], replace(last, test_accuracy=0.5 + 2**-10)))
    assert "at or below chance (1/2 = 0.500" in " ".join(findings(at_chance))
    assert "chance" not in " ".join(findings(above))


def test_the_proofs_and_falsifiers_are_summarised_per_claim_and_a_failure_is_a_finding() -> None:
    steps = [
        StepResult("D1", "D1.1", "s", "ok", "0 / 1", True, 0.1),
        StepResult("D1", "D1.2", "s", "FAILED", "2 / 1", False, 0.1),
        StepResult("G5", "G5.1", "s", "ok", "0 / 1", True, 0.1),
    ]
    falsifiers = [
        FalsifierResult("D1", "q_row_stochastic", "rows sum to 2"),
        FalsifierResult("D2", "temperature_positive", "", reason="only makes it defined"),
        FalsifierResult("G5", "hysteresis", "regrows", conclusion_fails=False),
    ]
    rows = {r["claim_id"]: r for r in audit_summary_mod.checked_elsewhere(steps, falsifiers)}
    assert list(rows) == ["D1", "D2", "G5"]  # registry order; claims with neither are left out
    assert (rows["D1"]["steps"], rows["D1"]["proved"], rows["D1"]["failed_steps"]) == (2, 1, ["D1.2"])
    assert (rows["D1"]["counterexamples"], rows["D1"]["hold_up"]) == (1, 1)
    assert (rows["D2"]["counterexamples"], rows["D2"]["no_falsifier"]) == (0, ["temperature_positive"])
    assert (rows["G5"]["hold_up"], rows["G5"]["failed_falsifiers"]) == (0, ["hysteresis"])
    text = " ".join(audit_summary_mod.elsewhere_findings(list(rows.values())))
    assert "Claim D1: the sympy steps D1.2 of its proof failed." in text
    assert "Claim G5: the counterexamples dropping hysteresis did not hold up" in text
    assert "D2" not in text
    # the terminal's one line: totals, so a failure shows as a shortfall there too (the outsider's "the
    # audit never reports the proof and falsifier results" on the terminal)
    assert proofs_line(list(rows.values())) == (
        "proofs: 2 of 3 sympy steps proved; falsifiers: 1 of 2 counterexamples hold up "
        "(and 1 hypothesis with a stated reason why none can exist)"
    )
    assert proofs_line(None).startswith("proofs and falsifiers: not run (--quick or --skip-proofs)")


def test_falsifier_results_hold_up_for_every_hypothesis_of_the_registry() -> None:
    results = falsifier_results()
    assert {(r.claim, r.hypothesis) for r in results} == {
        (cid, h.name)
        for cid, c in REGISTRY.items()
        if c.label.value == "proved" and c.implemented
        for h in c.hypotheses
    }
    assert all(r.holds_up for r in results)
    planted = replace(results[0], reason="", dropped_false=True, conclusion_fails=False)
    assert not planted.holds_up


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_is_a_plain_line_at_every_tenth_of_the_run_when_not_on_a_terminal(terminal: bool) -> None:
    """In a pipe or a log rich draws its bar once, at the end: a 40-s audit said nothing until then. Off
    a terminal the progress is one line per tenth of the run (and the last step), on one it is the bar."""
    import io

    from rich.console import Console

    from ddcl_incrt.audit.run import progress_bar
    from training.trainer import ProgressInfo

    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=200)
    with progress_bar(console, "digits · reference", 95) as update:
        for step in range(1, 96):
            update(ProgressInfo(step, 95, 1.5, 1.0, 2, 4, 0.5 if step > 50 else None, 0.25, violations=step // 90))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("digits · reference: step ")]
    if terminal:  # the bar, drawn by rich (its last frame shows the whole run), and no plain lines
        assert lines == []
        drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # without the terminal's colour codes
        assert "95/95" in drawn
        assert "λmax/θ=2.00 violations=1" in drawn
        return
    assert [int(line.split()[4].split("/")[0]) for line in lines] == [9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 95]
    assert lines[0].startswith("digits · reference: step 9/95 L=1.500 heads=2 K=4 λmax/θ=— violations=0 ")
    assert "λmax/θ=2.00 violations=1 " in lines[-1]


def test_the_tracker_finding_says_what_g6_said_not_always_held(record: RunRecord) -> None:
    """The small run's MCA-EXIN is 0.27 θ from the exact eigensolver, so the tracker finding is made; it
    said "G6 held" whatever G6's row said. With one certified, promised G6 check planted just past its
    bound the row is violated, and so is the finding's clause."""

    def tracker_text(rec: RunRecord) -> str:
        (text,) = [f for f in findings(rec) if f.startswith("The eigen-trackers of G6")]
        return text

    assert "G6 held (no violated check)" in tracker_text(record)
    i, inv = next(
        (i, x)
        for i, x in enumerate(record.invariants)
        if x.result.claim_id == "G6" and x.result.certified and x.promised is not False and x.result.bound > 0.0
    )
    planted = replace(inv, result=replace(inv.result, value=math.nextafter(inv.result.bound * 1.001, math.inf)))
    violated = replace(record, invariants=(*record.invariants[:i], planted, *record.invariants[i + 1 :]))
    (row,) = [r for r in claim_rows(violated) if r.claim_id == "G6"]
    assert (row.status, row.violations) == ("violated", 1)
    text = tracker_text(violated)
    assert f"G6 was violated at 1 of its {row.checks} checks" in text
    assert "G6 held" not in text
