"""What the report says: property mode's results in every format (JSON, Markdown, terminal) with the
falsifying examples and the exit code, hypothesis's exception groups unwrapped, and a wrong shape or
dtype named as such with both sides. Each check is shown catching a planted failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ddcl_incrt.cli import main
from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.compare import TolerancePolicy
from ddcl_incrt.conformance.operations import compare_case, groups, grow_decision
from ddcl_incrt.conformance.runner import golden, run_adapter
from ddcl_incrt.exit_codes import FAILED_CHECK, OK
from reference import ddcl
from reference.incrt.controller import GrowthConfig, GrowthState

pytest.importorskip("hypothesis")

from ddcl_incrt.conformance.properties import PROPERTIES, failure_text, run_properties

PRIMITIVES_ONLY = "ddcl_incrt.conformance.broken:primitives_only"


class _BrokenV(broken.NormalisationVariance):
    """The V normalisation bug in a port of the primitives only (D1 fails; nothing else runs)."""

    capabilities = frozenset(groups()["primitives"])


def broken_v() -> _BrokenV:
    return _BrokenV()


class _TwoBugs(broken.PrimitivesOnly):
    """Two distinct failures of D1: an exception at K = 1, a wrong L_q elsewhere."""

    name = "two bugs"

    def quantisation_loss(self, Y: np.ndarray, P: np.ndarray, Q: np.ndarray) -> float:
        if P.shape[1] == 1:
            raise ZeroDivisionError("K = 1 not handled")
        return 2.0 * ddcl.quantisation_loss(Y, P, Q)


# --------------------------------------------------------------------------------------------------
# Property results in every report format
# --------------------------------------------------------------------------------------------------


def _run(tmp_path: Path, spec: str) -> tuple[int, dict[str, Any], str]:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    args = ["conformance", "--adapter", spec, "--only", "mean_entropy/*", "--properties"]
    code = main([*args, "--property-examples", "5", "--json", str(out_json), "--markdown", str(out_md)])
    return code, json.loads(out_json.read_text(encoding="utf-8")), out_md.read_text(encoding="utf-8")


def test_property_results_are_in_the_json_and_markdown_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, md = _run(tmp_path, PRIMITIVES_ONLY)  # a correct port of the primitives
    assert code == data["exit_code"] == OK
    props = {p["claim"]: p for p in data["properties"]}
    assert props["D1"]["status"] == "pass"
    assert props["D1"]["falsifying_example"] == ""
    assert props["G1-G3"]["status"] == "not covered"
    assert "## Property mode" in md
    assert "| D1 | L_q = L_OLS + V, V ≥ 0 for any row-stochastic Q | pass |" in md

    code, data, md = _run(tmp_path, f"{__name__}:broken_v")  # its mean_entropy checks pass; D1 fails
    assert data["counts"] == {"pass": 4}
    assert code == data["exit_code"] == FAILED_CHECK
    assert data["verdict"] == "exit code 1: 1 property failed"
    props = {p["claim"]: p for p in data["properties"]}
    d1 = props["D1"]
    assert d1["status"] == "fail"
    assert d1["message"].startswith("AssertionError: D1 |L_q − (L_OLS + V)|")
    assert "example=" in d1["falsifying_example"]  # hypothesis's text, not a bare exception
    assert "### property D1: fail" in md
    assert "Falsifying example:" in md
    assert d1["falsifying_example"].splitlines()[0] in md
    out = capsys.readouterr().out
    assert "property mode" in out
    assert "falsifying example:" in out


def test_without_properties_the_json_says_so() -> None:
    data = run_adapter(PRIMITIVES_ONLY, only=["mean_entropy/*"]).to_dict()
    assert data["properties"] is None
    assert data["exit_code"] == OK


def test_several_distinct_failures_are_each_reported_with_their_example() -> None:
    """Hypothesis raises an ExceptionGroup for several distinct failures; the report unwraps it."""
    (d1,) = run_properties(_TwoBugs(), max_examples=10, only=[PROPERTIES[0]])
    assert d1.status == "fail"
    assert d1.message.startswith("hypothesis found 2 distinct failures")
    assert "ExceptionGroup" not in d1.message
    assert "ZeroDivisionError: K = 1 not handled" in d1.message
    assert "AssertionError: D1" in d1.message
    blocks = d1.falsifying_example.split("failure 2 of 2: ")
    assert len(blocks) == 2
    assert all("example=" in b for b in blocks)


def test_failure_text_unwraps_nested_groups_and_keeps_every_note() -> None:
    first, second = ValueError("first"), AssertionError("second")
    first.add_note("Falsifying example: test(example=1)")
    second.add_note("Falsifying example: test(example=2)")
    group = ExceptionGroup("Hypothesis found 2 distinct failures.", [first, ExceptionGroup("inner", [second])])
    message, example = failure_text(group)
    assert message == (
        "hypothesis found 2 distinct failures; failure 1 of 2: ValueError: first; "
        "failure 2 of 2: AssertionError: second"
    )
    assert example == (
        "failure 1 of 2: Falsifying example: test(example=1)\nfailure 2 of 2: Falsifying example: test(example=2)"
    )
    single = AssertionError("only")
    single.add_note("Falsifying example: test(example=3)")
    assert failure_text(single) == ("AssertionError: only", "Falsifying example: test(example=3)")


# --------------------------------------------------------------------------------------------------
# Shape and dtype named in mismatch messages
# --------------------------------------------------------------------------------------------------


class _ScalarAsVector(broken.PrimitivesOnly):
    """A port returning ``(1,)`` arrays where the reference has 0-d ones: the decision state's
    ``last_growth_step`` (int64) and ``mean_entropy``'s value."""

    name = "(1,) for ()"
    capabilities = frozenset({"grow_decision", "mean_entropy"})

    def grow_decision(
        self, state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: np.ndarray, step: int, new_head_id: int
    ) -> GrowthState:
        out = grow_decision(state, config, lam_max, u_plus, step, new_head_id)
        # past the dataclass's own (run-time checked, under pytest) constructor, as a port's array would be
        object.__setattr__(out, "last_growth_step", np.array([out.last_growth_step]))
        return out

    def mean_entropy(self, Q: np.ndarray) -> np.ndarray:
        return np.array([ddcl.mean_entropy(Q)])


def test_a_wrong_shape_scalar_is_a_shape_mismatch_naming_both_shapes() -> None:
    report = run_adapter(_ScalarAsVector(), only=["grow_decision/clear_growth", "mean_entropy/basic"])
    results = {r.check: r for r in report.results}
    decision = results["grow_decision/clear_growth"]
    assert decision.status == "fail"
    # not "mismatch [35] vs reference 35": the shapes are named, the dtype agrees and is said once
    assert decision.message == (
        "state.last_growth_step: shape mismatch: port shape (1,), reference shape () (dtype int64); "
        "values [35] vs reference 35"
    )
    entropy = results["mean_entropy/basic"]
    assert entropy.message == "value: shape mismatch: port shape (1,), reference shape () (dtype float64)"
    assert decision.worst is not None
    assert decision.worst.label == "shape mismatch"
    md = report.to_markdown()
    assert "| `grow_decision/clear_growth` | fail | state.last_growth_step | shape mismatch |" in md
    assert json.loads(report.to_json())["checks"][0]["worst_error_over_tolerance"] == "inf"


class _StepOffByOne(_ScalarAsVector):
    name = "last_growth_step + 1"

    def grow_decision(
        self, state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: np.ndarray, step: int, new_head_id: int
    ) -> GrowthState:
        out = grow_decision(state, config, lam_max, u_plus, step, new_head_id)
        return replace(out, last_growth_step=out.last_growth_step + 1)


def test_a_shape_mismatch_names_both_dtypes_where_they_differ() -> None:
    """A file port's outputs keep their dtype (an adapter's are converted at the boundary): a float
    ``(1,)`` where the reference has an int64 ``()``."""
    entry = next(e for e in golden() if e.case.check == "grow_decision/clear_growth")
    assert entry.outputs is not None
    actual = {k: np.array(v) for k, v in entry.outputs.items()}
    actual["state.last_growth_step"] = np.array([35.0])
    result = compare_case(entry.case, actual, entry.outputs, TolerancePolicy())
    assert result.message == (
        "state.last_growth_step: shape mismatch: port shape (1,), reference shape (); "
        "port dtype float64, reference dtype int64; expected an integer array"
    )
    actual["state.last_growth_step"] = np.array(35.0)
    result = compare_case(entry.case, actual, entry.outputs, TolerancePolicy())
    assert result.message == (
        "state.last_growth_step: dtype mismatch: port dtype float64, reference dtype int64 (shape ()); "
        "expected an integer array"
    )


def test_a_right_shape_wrong_value_integer_is_a_plain_mismatch() -> None:
    """The baseline of the shape label: equal shapes, different values."""
    report = run_adapter(_StepOffByOne(), only=["grow_decision/clear_growth"])
    (result,) = report.results
    assert result.status == "fail"
    assert result.message == "state.last_growth_step: mismatch: 36 vs reference 35"


BROKEN_V_MODULE = """
from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.operations import groups


class BrokenV(broken.NormalisationVariance):
    capabilities = frozenset(groups()["primitives"])


def factory():
    return BrokenV()
"""


def test_pytest_plugin_property_failure_shows_its_falsifying_example(tmp_path: Path) -> None:
    (tmp_path / "broken_v_port.py").write_text(BROKEN_V_MODULE, encoding="utf-8")
    (tmp_path / "empty.ini").write_text("[pytest]\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(tmp_path / "empty.ini")]
    cmd += ["--rootdir", str(tmp_path), "-q", "-p", "no:xdist", "--ddcl-properties", "-k", "properties and D1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "PYTHONPATH"}

    def plugin(spec: str) -> subprocess.CompletedProcess[str]:
        args = [*cmd, f"--ddcl-adapter={spec}"]
        return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)

    run = plugin(PRIMITIVES_ONLY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    run = plugin("broken_v_port:factory")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout
    assert "D1: L_q = L_OLS + V" in run.stdout
    assert "example=" in run.stdout  # hypothesis's falsifying example, not only the exception


# --------------------------------------------------------------------------------------------------
# Reports that cannot hide a failure
# --------------------------------------------------------------------------------------------------


def test_the_process_exit_code_is_the_json_exit_code_when_a_property_fails(tmp_path: Path) -> None:
    """In a separate process (what CI sees): checks all pass, a property fails, and the JSON's exit_code
    and the process's are both 1."""
    out = tmp_path / "r.json"
    exe = Path(sys.executable).with_name("ddcl-incrt")
    cmd = [str(exe), "conformance", "--adapter", f"{__name__}:broken_v", "--only", "mean_entropy/*"]
    cmd += ["--properties", "--property-examples", "5", "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    here = Path(__file__).resolve().parent  # this module, importable by its pytest name in the new process
    env["PYTHONPATH"] = os.pathsep.join([str(here), str(here.parent), env.get("PYTHONPATH", "")])
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.exists(), run.stdout + run.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["counts"] == {"pass": 4}
    assert run.returncode == data["exit_code"] == FAILED_CHECK, run.stdout + run.stderr
    assert data["verdict"] == "exit code 1: 1 property failed"


def test_a_field_off_by_a_constant_factor_prints_the_factor() -> None:
    """V averaged over n·K is V/K (K = 4 in the basic setting), F without T_P is F/T_P (T_P = 1/4 in the
    cold one), C over n − 1 is n/(n − 1) times C (n = B·T = 6 probe tokens): the message names the factor."""
    report = run_adapter(broken.NormalisationVariance(), only=["prototype_variance/basic"])
    assert "port/reference = 0.25" in report.failures[0].message
    report = run_adapter(broken.TemperatureScalingFreeEnergy(), only=["free_energy/cold"])
    assert "port/reference = 4" in report.failures[0].message
    report = run_adapter(broken.SecondMomentUnbiased(), only=["growth_statistics/one_head_m0"])
    assert "C: error" in report.failures[0].message
    assert "port/reference = 1.2 on all 16 entries (a constant factor)" in report.failures[0].message
    # an error that is not one factor gets no ratio
    report = run_adapter(broken.SignFlipAssignments(), only=["soft_assignments/basic"])
    assert "port/reference" not in report.failures[0].message


def test_constant_factor_only_for_one_factor_within_the_value_row() -> None:
    from ddcl_incrt.conformance.compare import constant_factor
    from reference.tolerances import CheckKind, tolerance

    rtol = tolerance("float64", CheckKind.VALUE).rtol
    b = np.array([[1.0, -2.0], [0.0, 4.0]])
    assert constant_factor(3.0 * b, b, rtol) == 3.0
    assert constant_factor(3.0 * b + np.array([[0.0, 0.0], [1e-3, 0.0]]), b, rtol) is None  # nonzero where b = 0
    assert constant_factor(b * np.array([[3.0, 3.0], [1.0, 3.0 * (1 + 1e-6)]]), b, rtol) is None  # spread > rtol
    assert constant_factor(np.zeros_like(b), b, rtol) is None
    assert constant_factor(b, np.zeros_like(b), rtol) is None


def test_a_cases_note_is_printed_beside_its_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The note that says what a case pins is in every format next to the failure, and in the repro's error."""
    spec = "ddcl_incrt.conformance.broken:min_heads_ignored"
    check = "prune_decision/last_head_kept"
    note = next(e.case.note for e in golden() if e.case.check == check)
    assert note.startswith("SPEC §3.3, at least one head remains")
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    code = main(["conformance", "--adapter", spec, "--only", check, "--json", str(out_json), "--markdown", str(out_md)])
    assert code == FAILED_CHECK
    (entry,) = json.loads(out_json.read_text(encoding="utf-8"))["checks"]
    assert entry["status"] == "fail"
    assert entry["case_note"] == note
    assert f"Case: {note}" in out_md.read_text(encoding="utf-8")
    terminal = " ".join(capsys.readouterr().out.split())
    assert "case: " + " ".join(note.split()) in terminal
    from ddcl_incrt.conformance.runner import reproduce

    with pytest.raises(AssertionError, match=re.escape("case: SPEC §3.3, at least one head remains")):
        reproduce(check=check, adapter=spec)
