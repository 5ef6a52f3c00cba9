"""The conformance kit (issue 9): the reference passes it, each deliberately broken adapter is caught
by its named check with a repro snippet that reproduces the failure on its own, a partial port gets a
report that says what it did not cover, the language-neutral round trip works and finds a planted
difference, vector files never execute code and bad ones name the file and the field, and the
committed golden vectors match the reference."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _snippets import run_snippet

from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.adapter import TrajectoryInputs, TrajectoryOutputs
from ddcl_incrt.conformance.adapters.reference import ReferenceAdapter
from ddcl_incrt.conformance.compare import ToleranceEntry, TolerancePolicy
from ddcl_incrt.conformance.operations import all_cases, call_port, compare_case, groups, operation_names
from ddcl_incrt.conformance.runner import (
    golden_differences,
    regenerate,
    regeneration_differences,
    reproduce,
    run_adapter,
    run_outputs,
    write_inputs,
)
from ddcl_incrt.conformance.trajectory import run_trajectory
from ddcl_incrt.conformance.vectors import GOLDEN_DIR, VectorFileError, read_vectors
from reference.tolerances import CheckKind, tolerance
from training.trainer import ReferenceEngine

PRIMITIVE_OPERATIONS = groups()["primitives"]

REFERENCE = "ddcl_incrt.conformance.adapters.reference:reference_adapter"
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# The reference, and the committed golden vectors
# --------------------------------------------------------------------------------------------------


def test_reference_adapter_passes_the_whole_kit() -> None:
    report = run_adapter(REFERENCE)
    assert report.exit_code == 0, report.to_markdown()
    assert {r.status for r in report.results} == {"pass"}
    assert report.uncovered_operations == []
    assert {r.operation for r in report.results} == set(operation_names())  # every operation has cases


def test_committed_golden_vectors_match_the_reference() -> None:
    """The reference's outputs on the committed inputs match the committed outputs as the kit compares
    a float64 port: true on any CPU, since the inputs are read from the files, never regenerated."""
    assert golden_differences() == [], "run `ddcl-incrt conformance --regenerate` (and say why in the commit)"


def test_regenerating_the_cases_reproduces_the_committed_inputs_within_tolerance() -> None:
    assert regeneration_differences() == [], "run `ddcl-incrt conformance --regenerate` (and say why in the commit)"


def test_golden_check_fails_on_a_changed_vector(tmp_path: Path) -> None:
    """Meta-test: a committed output that no longer matches the reference is found."""
    copy = tmp_path / "v1"
    shutil.copytree(GOLDEN_DIR, copy)
    path = copy / "cases" / "free_energy__basic" / "out.value.npy"
    np.save(path, np.load(path) + 1e-9)
    (diff,) = golden_differences(copy, only=["free_energy/*"])
    assert diff.startswith("free_energy/basic: output value changed"), diff


def test_golden_check_holds_outputs_to_the_float64_value_row_not_to_the_bit(tmp_path: Path) -> None:
    """Half the VALUE row of drift (another CPU's rounding) passes, twice the row fails: the check is
    neither bit-exact (machine-dependent) nor loose."""
    rtol = tolerance("float64", CheckKind.VALUE).rtol
    path_rel = Path("cases") / "free_energy__basic" / "out.value.npy"
    for factor, expected in ((0.5, []), (2.0, ["free_energy/basic: output value changed"])):
        copy = tmp_path / f"v1_{factor}"
        shutil.copytree(GOLDEN_DIR, copy)
        value = np.load(copy / path_rel)
        np.save(copy / path_rel, value + factor * rtol * max(float(np.max(np.abs(value))), 1.0))
        diffs = golden_differences(copy, only=["free_energy/basic"])
        assert [d.split(":", 2)[0] + ":" + d.split(":", 2)[1] for d in diffs] == expected, diffs


def test_regeneration_check_allows_last_bit_drift_of_float_inputs_and_nothing_more(tmp_path: Path) -> None:
    """A BLAS-built input one ulp off is the same case; one moved by twice the VALUE row, or an integer
    input changed by one, is not."""
    rtol = tolerance("float64", CheckKind.VALUE).rtol
    live = [c for c in all_cases() if c.check == "grow_decision/at_threshold_tie"]
    (case,) = live
    u = case.inputs["u_plus"]
    for moved, expected in (
        (np.nextafter(u, np.inf), []),
        (u + 2.0 * rtol, ["grow_decision/at_threshold_tie: input u_plus changed"]),
    ):
        edited = replace(case, inputs={**case.inputs, "u_plus": moved})
        diffs = regeneration_differences(only=["grow_decision/at_threshold_tie"], cases=[edited])
        assert [d.split(": error")[0] for d in diffs] == expected, diffs
    heads = case.inputs["state.heads"]
    edited = replace(case, inputs={**case.inputs, "state.heads": heads + 1})
    diffs = regeneration_differences(only=["grow_decision/at_threshold_tie"], cases=[edited])
    assert diffs == ["grow_decision/at_threshold_tie: input state.heads changed"]


def test_regenerated_vectors_agree_with_the_committed_ones(tmp_path: Path) -> None:
    """`--regenerate` on this machine writes vectors that the kit's comparison cannot tell from the
    committed ones: inputs within the VALUE row, outputs as a float64 port's."""
    fresh = regenerate(tmp_path / "v1")
    committed = {e.case.check: e for e in read_vectors(GOLDEN_DIR, expect_kind="golden")}
    regenerated = read_vectors(fresh, expect_kind="golden")
    assert sorted(e.case.check for e in regenerated) == sorted(committed)
    assert regeneration_differences(GOLDEN_DIR, cases=[e.case for e in regenerated]) == []
    for e in regenerated:
        ref = committed[e.case.check]
        assert e.outputs is not None
        assert ref.outputs is not None
        result = compare_case(ref.case, e.outputs, ref.outputs, TolerancePolicy())
        assert result.status == "pass", (e.case.check, result.message)


def test_golden_vectors_are_small_and_store_float64_exactly() -> None:
    size = sum(p.stat().st_size for p in GOLDEN_DIR.rglob("*") if p.is_file())
    assert size < 2_000_000, size
    entries = read_vectors(GOLDEN_DIR, expect_kind="golden")
    e = next(e for e in entries if e.case.check == "squared_distances/basic")
    Y, P = e.case.inputs["Y"], e.case.inputs["P"]
    assert Y.dtype == np.float64
    rng = np.random.default_rng([9, 0])  # the generator of the 'basic' primitive setting
    assert np.array_equal(Y, rng.standard_normal(Y.shape))
    assert np.array_equal(P, rng.standard_normal(P.shape))


# --------------------------------------------------------------------------------------------------
# Deliberately broken adapters: caught by a named check, reproduced on their own
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("factory", "check"), sorted(broken.EXPECTED_CATCH.items()))
def test_each_broken_adapter_is_caught_by_its_named_check(factory: str, check: str) -> None:
    spec = f"ddcl_incrt.conformance.broken:{factory}"
    report = run_adapter(spec)
    failed = {r.check: r for r in report.failures}
    assert check in failed, f"{factory} not caught by {check}; failures {sorted(failed)}"
    result = failed[check]
    assert result.worst is not None
    assert result.worst.ratio > 1.0
    # only the operations with the bug fail: the kit says where the port differs, not just that it does
    also = next(b.also for b in broken.PLANTED if b.factory == factory)
    assert {r.operation for r in report.failures} == {c.split("/")[0] for c in (check, *also)}
    assert set(also) <= set(failed), f"{factory} not caught by {also}; failures {sorted(failed)}"
    assert f"check={check!r}" in result.repro
    assert spec in result.repro
    run = run_snippet(result.repro)
    assert run.returncode != 0, run.stdout + run.stderr
    assert f"conformance check {check}: fail" in run.stderr


def test_a_repro_snippet_passes_on_a_correct_port() -> None:
    """The snippet discriminates: the same check on the reference runs clean."""
    snippet = "from ddcl_incrt.conformance.runner import reproduce\n"
    snippet += f"reproduce(check='grow_decision/dwell_boundary', adapter={REFERENCE!r})"
    run = run_snippet(snippet)
    assert run.returncode == 0, run.stderr


def test_eight_distinct_kinds_of_bug_are_planted() -> None:
    assert len(broken.EXPECTED_CATCH) >= 8
    assert len(set(broken.EXPECTED_CATCH.values())) == len(broken.EXPECTED_CATCH)


def test_every_broken_adapter_is_a_class_of_the_table() -> None:
    """No broken adapter escapes the table: every adapter class of broken.py with a bug (all but the
    partial port) has a factory listed in PLANTED, so the parametrised test above runs it against its
    catching check; and each factory builds that class."""
    classes = {
        obj
        for name, obj in vars(broken).items()
        if isinstance(obj, type)
        and issubclass(obj, ReferenceAdapter)
        and not name.startswith("_")
        and obj is not broken.PrimitivesOnly
        and obj.__module__ == broken.__name__
    }
    listed = {type(getattr(broken, b.factory)()) for b in broken.PLANTED}
    assert classes == listed, sorted(c.__name__ for c in classes ^ listed)
    assert len({b.factory for b in broken.PLANTED}) == len(broken.PLANTED)
    assert all(b.check in {c.check for c in all_cases()} for b in broken.PLANTED)


def test_docs_table_of_port_bug_classes_is_the_planted_list() -> None:
    text = (ROOT / "docs" / "porting.md").read_text(encoding="utf-8")
    assert broken.bug_table() in text, (
        "docs/porting.md's table of port-bug classes differs from broken.PLANTED; paste "
        "ddcl_incrt.conformance.broken.bug_table() over it"
    )


def test_a_partial_port_gets_a_report_that_says_exactly_what_was_not_covered() -> None:
    report = run_adapter("ddcl_incrt.conformance.broken:primitives_only")
    assert report.exit_code == 0
    assert report.uncovered_operations == [op for op in operation_names() if op not in PRIMITIVE_OPERATIONS]
    assert report.covered_summary() == {"primitives": "all", "layer": "none", "growth": "none", "training": "none"}
    statuses = {r.operation: r.status for r in report.results}
    assert all(statuses[op] == "pass" for op in PRIMITIVE_OPERATIONS)
    assert all(s == "not covered" for op, s in statuses.items() if op not in PRIMITIVE_OPERATIONS)
    md = report.to_markdown()
    assert "| layer | none |" in md
    assert "| primitives | all |" in md
    assert json.loads(report.to_json())["uncovered_operations"] == report.uncovered_operations


def test_an_adapter_that_raises_is_an_error_with_the_exception() -> None:
    class Raising(broken.PrimitivesOnly):
        name = "raises"

        def mean_entropy(self, Q: np.ndarray) -> float:
            raise NotImplementedError("entropy not ported yet")

    report = run_adapter(Raising(), only=["mean_entropy/*"])
    assert {r.status for r in report.results} == {"error"}
    assert "NotImplementedError: entropy not ported yet" in report.results[0].message
    assert report.exit_code == 1


# --------------------------------------------------------------------------------------------------
# Skips, expected failures, declared tolerances
# --------------------------------------------------------------------------------------------------


def test_skip_and_xfail_entries_that_match_nothing_warn() -> None:
    with pytest.warns(UserWarning, match=r"skip entry 'no_such_op/\*' matches no check"):
        report = run_adapter("ddcl_incrt.conformance.broken:primitives_only", skip=["no_such_op/*"])
    assert "skip entry 'no_such_op/*' matches no check" in report.warnings
    with pytest.warns(UserWarning, match="xfail entry 'free_energy/tepid' matches no check"):
        run_adapter("ddcl_incrt.conformance.broken:primitives_only", xfail=["free_energy/tepid"])


def test_xfail_marks_a_known_failure_and_an_unexpected_pass_fails() -> None:
    spec = "ddcl_incrt.conformance.broken:threshold_greater_equal"
    report = run_adapter(spec, xfail=["grow_decision/at_threshold_tie"], only=["grow_decision/*"])
    assert report.exit_code == 0
    assert {r.check: r.status for r in report.results}["grow_decision/at_threshold_tie"] == "xfail"
    report = run_adapter(spec, xfail=["grow_decision/clear_growth"], only=["grow_decision/*"])
    assert report.exit_code == 1
    assert {r.check: r.status for r in report.results}["grow_decision/clear_growth"] == "xpass"


def test_skip_removes_a_failure() -> None:
    spec = "ddcl_incrt.conformance.broken:dwell_off_by_one"
    report = run_adapter(spec, skip=["grow_decision/dwell_*"], only=["grow_decision/*"])
    assert report.exit_code == 0


def test_declared_tolerances_apply_and_are_reported_with_their_reasons(tmp_path: Path) -> None:
    spec = "ddcl_incrt.conformance.broken:temperature_scaling_free_energy"
    path = tmp_path / "tol.json"
    reason = "deliberately loose, to show that a declaration applies"
    path.write_text(
        json.dumps({"dtype": "float64", "entries": [{"check": "free_energy/*", "rtol": 1e5, "reason": reason}]})
    )
    report = run_adapter(spec, policy=path, only=["free_energy/*"])
    assert report.exit_code == 0
    assert reason in report.to_markdown()
    assert all("declared" in f.tolerance_reason for r in report.results for f in r.fields)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{not json", "not a readable JSON"),
        ('{"entries": {}}', "field 'entries' must be a list"),
        ('{"entries": [{"check": "x/*", "rtol": 1e-3}]}', "field 'entries\\[0\\]' needs"),
        ('{"entries": [{"check": "x/*", "rtol": 1e-3, "reason": " "}]}', "needs a reason"),
        ('{"entries": [{"check": "x/*", "rtol": -1, "reason": "r"}]}', "rtol"),
    ],
)
def test_a_bad_tolerance_declaration_names_the_file_and_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "tol.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=field) as info:
        TolerancePolicy.from_json(path)
    assert str(path) in str(info.value)


def test_tolerance_entry_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        ToleranceEntry(check="*", rtol=1.0, reason="")


# --------------------------------------------------------------------------------------------------
# The language-neutral mode
# --------------------------------------------------------------------------------------------------

# A "port" in plain numpy that reads only the documented file format (no kit imports): squared
# distances and soft assignments, written back as an outputs directory.
PLAIN_PORT = r"""
import json, sys
from pathlib import Path
import numpy as np
src, dst, shift = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
manifest = json.loads((src / "manifest.json").read_text())
out = {"format": "ddcl-incrt-conformance", "version": 1, "kind": "outputs", "port": "plain numpy", "cases": []}
for case in manifest["cases"]:
    op = case["operation"]
    if op not in ("squared_distances", "soft_assignments"):
        continue
    arr = {k: np.load(src / v["file"], allow_pickle=False) for k, v in case["inputs"].items()}
    if op == "squared_distances":
        Y, P = arr["Y"], arr["P"]
        result = {"D": ((Y[:, :, None] - P[None, :, :]) ** 2).sum(axis=1) + shift}
    else:
        S = -arr["D"] / case["scalars"]["T_P"]
        E = np.exp(S - S.max(axis=1, keepdims=True))
        result = {"Q": E / E.sum(axis=1, keepdims=True)}
    folder = dst / "cases" / case["check"].replace("/", "__")
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"check": case["check"], "operation": op, "outputs": {}}
    for name, a in result.items():
        np.save(folder / f"{name}.npy", a)
        entry["outputs"][name] = {"file": f"cases/{case['check'].replace('/', '__')}/{name}.npy",
                                  "dtype": "float64", "shape": list(a.shape)}
    out["cases"].append(entry)
(dst / "manifest.json").write_text(json.dumps(out))
"""


@pytest.fixture(scope="module")
def written_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inputs(tmp_path_factory.mktemp("kit") / "inputs")


def _plain_port(inputs: Path, outputs: Path, shift: float) -> None:
    run = subprocess.run(
        [sys.executable, "-c", PLAIN_PORT, str(inputs), str(outputs), repr(shift)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


def test_language_neutral_round_trip(written_inputs: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    _plain_port(written_inputs, outputs, 0.0)
    report = run_outputs(outputs)
    status = {r.check: r.status for r in report.results}
    ported = [c for c in status if c.split("/")[0] in ("squared_distances", "soft_assignments")]
    assert len(ported) == len([c for c in all_cases() if c.operation in ("squared_distances", "soft_assignments")])
    assert all(status[c] == "pass" for c in ported), report.to_markdown()
    assert all(s == "not covered" for c, s in status.items() if c not in ported)
    assert "squared_distances" not in report.uncovered_operations
    assert "layer_forward" in report.uncovered_operations
    missing = [op for op in PRIMITIVE_OPERATIONS if op not in ("squared_distances", "soft_assignments")]
    assert report.covered_summary()["primitives"] == f"partial: missing {missing}"
    assert report.exit_code == 0


def test_language_neutral_mode_finds_a_planted_difference(written_inputs: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    _plain_port(written_inputs, outputs, 1e-6)  # every squared distance off by 1e-6
    report = run_outputs(outputs)
    failed = {r.check: r for r in report.failures}
    assert "squared_distances/basic" in failed
    assert {r.operation for r in report.failures} == {"squared_distances"}
    r = failed["squared_distances/basic"]
    assert r.worst is not None
    assert r.worst.field == "D"
    assert r.worst.ratio > 1.0
    assert str(outputs.resolve()) in r.repro
    run = run_snippet(r.repro)
    assert run.returncode != 0
    assert "conformance check squared_distances/basic: fail" in run.stderr


def test_inputs_file_holds_no_outputs(written_inputs: Path) -> None:
    entries = read_vectors(written_inputs, expect_kind="inputs")
    assert all(e.outputs is None for e in entries)
    with pytest.raises(VectorFileError, match="expected a 'golden' file"):
        read_vectors(written_inputs, expect_kind="golden")


# --------------------------------------------------------------------------------------------------
# Loading never executes code; malformed, truncated and mismatched files
# --------------------------------------------------------------------------------------------------


def _golden_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "v1"
    shutil.copytree(GOLDEN_DIR, copy)
    return copy


class _Tripwire:
    """Unpickling this object would run code: it must never happen."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("CODE RAN",))


def test_a_pickled_object_array_is_refused_without_running_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _golden_copy(tmp_path)
    path = copy / "cases" / "squared_distances__basic" / "in.Y.npy"
    np.save(path, np.array([_Tripwire()], dtype=object), allow_pickle=True)
    assert pickle.dumps(_Tripwire())  # the payload is a real pickle
    with pytest.raises(VectorFileError, match=r"cases\[0\]\.inputs\.Y") as info:
        read_vectors(copy)
    assert str(path) in str(info.value)
    assert "pickle" in str(info.value)
    assert "CODE RAN" not in capsys.readouterr().out


def _edit_manifest(copy: Path, edit: object) -> Path:
    path = copy / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("version"), "field version: missing"),
        (lambda d: d.update(version=2), "field version: this kit reads version 1"),
        (lambda d: d.update(format="other"), "field format"),
        (lambda d: d["cases"][0].pop("operation"), "field cases\\[0\\].operation: missing"),
        (lambda d: d["cases"][0].update(operation="nope"), "field cases\\[0\\].operation: unknown"),
        (lambda d: d["cases"].insert(1, d["cases"][0]), "field cases\\[1\\].check: .* appears twice"),
        (lambda d: d["cases"][0]["inputs"]["Y"].update(shape=[7, 4]), "field cases\\[0\\].inputs.Y: shape"),
        (lambda d: d["cases"][0]["inputs"]["Y"].update(dtype="int64"), "field cases\\[0\\].inputs.Y: dtype"),
        (lambda d: d["cases"][0]["inputs"]["Y"].update(dtype="object"), "field cases\\[0\\].inputs.Y.dtype"),
        (lambda d: d["cases"][0]["inputs"]["Y"].update(file="../../x.npy"), "inputs.Y.file: expected a relative"),
        (lambda d: d["cases"][0]["inputs"]["Y"].update(file="cases/none.npy"), "inputs.Y: the file named"),
        (lambda d: d["cases"][0]["scalars"].update(T_P={"a": 1}), "field cases\\[0\\].scalars.T_P"),
        (lambda d: d.update(port=123), "field port: expected the port's name \\(str\\), got int"),
    ],
)
def test_a_malformed_or_mismatched_manifest_names_the_file_and_the_field(
    tmp_path: Path, edit: object, field: str
) -> None:
    copy = _golden_copy(tmp_path)
    _edit_manifest(copy, edit)
    with pytest.raises(VectorFileError, match=field) as info:
        read_vectors(copy)
    assert str(copy) in str(info.value)


def test_a_named_port_reads(tmp_path: Path) -> None:
    copy = _golden_copy(tmp_path)
    _edit_manifest(copy, lambda d: d.update(port="my-port"))
    assert len(read_vectors(copy)) == len(read_vectors(_golden_copy(tmp_path / "again")))


def test_a_manifest_key_given_twice_is_refused_naming_the_manifest(tmp_path: Path) -> None:
    copy = _golden_copy(tmp_path)
    path = copy / "manifest.json"
    text = path.read_text(encoding="utf-8")
    path.write_text('{"kind": "outputs", ' + text.lstrip()[1:], encoding="utf-8")
    with pytest.raises(VectorFileError, match="the key 'kind' appears twice") as info:
        read_vectors(copy)
    assert str(path) in str(info.value)


def test_a_truncated_npy_names_the_file_and_the_field(tmp_path: Path) -> None:
    copy = _golden_copy(tmp_path)
    path = copy / "cases" / "squared_distances__basic" / "in.P.npy"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(VectorFileError, match=r"cases\[0\]\.inputs\.P") as info:
        read_vectors(copy)
    assert str(path) in str(info.value)


def test_a_manifest_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    copy = _golden_copy(tmp_path)
    (copy / "manifest.json").write_text('{"format": "ddcl-incrt-conformance", ')
    with pytest.raises(VectorFileError, match=r"manifest\.json: field \(file\): not valid JSON"):
        read_vectors(copy)
    with pytest.raises(VectorFileError, match=r"no manifest\.json"):
        read_vectors(tmp_path / "nowhere")


def test_reproduce_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        reproduce(check="free_energy/basic")


class _FlipsAtTheTie(broken.PrimitivesOnly):
    """A correct port whose rounding decides the other way at the trajectory's near-tie: its θ sits half
    the float64 DECISION band below the committed one. The committed case has θ = λ_max of its second
    check as one machine rounded it; any machine computes that λ_max within a few ulps, far inside the
    band, so this port sees λ_max > θ (a birth) where the committed reference saw λ_max = θ (none), on
    every CPU. (One ulp would flip only on the CPU that generated the case.)"""

    name = "flips at the near-tie"
    capabilities = frozenset({"trajectory"})

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        band = tolerance("float64", CheckKind.DECISION)
        theta = inputs.growth_cfg.theta
        lowered = theta - 0.5 * (band.atol + band.rtol * abs(theta))
        return run_trajectory(ReferenceEngine(), replace(inputs, growth_cfg=replace(inputs.growth_cfg, theta=lowered)))[
            0
        ]


def test_a_trajectory_comparison_stops_at_the_first_near_tie_and_says_so() -> None:
    report = run_adapter(_FlipsAtTheTie(), only=["trajectory/*"])
    status = {r.check: r for r in report.results}
    tie = status["trajectory/near_tie"]
    assert tie.status == "pass", tie.message
    assert tie.note.startswith("stopped at the first near-tie, the check at step 20")
    assert "final parameters not compared" in tie.note
    # the stop is what made it pass: after the tie the port's events really differ from the reference's
    (entry,) = [e for e in read_vectors(GOLDEN_DIR) if e.case.check == "trajectory/near_tie"]
    assert entry.outputs is not None
    ours = call_port(_FlipsAtTheTie(), entry.case)["events"]
    assert not np.array_equal(ours, entry.outputs["events"])
    assert np.array_equal(ours[ours[:, 0] < 20], entry.outputs["events"][entry.outputs["events"][:, 0] < 20])
