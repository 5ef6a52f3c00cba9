"""The conformance kit on real ports and through its entry points: the accelerated adapter passes the
whole kit in float64 and in float32 (its declared tolerances in the report), property mode passes on
the correct ports and fails on planted bugs, the pytest plugin and the command line work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.operations import groups, load_adapter, operation_names
from ddcl_incrt.conformance.properties import NOT_COVERED, PROPERTIES, run_properties
from ddcl_incrt.conformance.runner import run_adapter
from reference.claims.records import Label
from reference.claims.registry import REGISTRY

REFERENCE = "ddcl_incrt.conformance.adapters.reference:reference_adapter"
ACCELERATED = "ddcl_incrt.conformance.adapters.accelerated:accelerated_"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_accelerated_adapter_passes_the_whole_kit(dtype: str) -> None:
    report = run_adapter(ACCELERATED + dtype)
    assert report.exit_code == 0, report.to_markdown()
    assert {r.status for r in report.results} == {"pass"}
    assert report.uncovered_operations == []
    assert report.policy.dtype == dtype
    # the float32 declaration is in the report, with the reasons of the table rows it uses
    md = report.to_markdown()
    assert f"(table {dtype} VALUE)" in md
    assert f"(table {dtype} DECISION)" in md
    # near-ties are reported as such: the trajectory comparison stopped, the static count was widened
    notes = {r.check: r.note for r in report.results}
    assert notes["trajectory/near_tie"].startswith("stopped at the first near-tie, the check at step 20")
    assert notes["static_growth/near_tie"].startswith("near-tie: 1 eigenvalue(s)")
    assert notes["trajectory/short_run"] == ""


def test_the_float32_port_fails_the_float64_tolerances(tmp_path: Path) -> None:
    """The declaration matters: held to the float64 rows, the float32 port fails (so its pass is not vacuous)."""
    policy = tmp_path / "float64.json"
    policy.write_text(json.dumps({"dtype": "float64", "entries": []}))
    report = run_adapter(ACCELERATED + "float32", policy=policy, only=["layer_*"])
    assert report.exit_code == 1
    assert all(r.status == "fail" for r in report.results)


def test_property_mode_passes_on_the_correct_ports() -> None:
    for spec in (REFERENCE, ACCELERATED + "float64"):
        results = run_properties(load_adapter(spec), max_examples=2, shrink=False)
        bad = [r for r in results if r.status == "fail"]
        assert not bad, [(r.claim, r.message) for r in bad]
        assert {r.claim for r in results if r.status == "pass"} == {p.claim for p in PROPERTIES}


@pytest.mark.parametrize(
    ("factory", "claim"),
    [("normalisation_variance", "D1"), ("sign_flip_assignments", "D2"), ("stale_captured_basis", "G1-G3")],
)
def test_property_mode_catches_a_planted_bug(factory: str, claim: str) -> None:
    results = run_properties(load_adapter(f"ddcl_incrt.conformance.broken:{factory}"), max_examples=5, shrink=False)
    status = {r.claim: r.status for r in results}
    assert status[claim] == "fail"


def test_property_mode_lists_every_proved_claim_and_what_a_partial_port_misses() -> None:
    results = run_properties(load_adapter("ddcl_incrt.conformance.broken:primitives_only"), max_examples=2)
    claims = {r.claim for r in results}
    proved = {c.id for c in REGISTRY.values() if c.label is Label.PROVED}
    covered = {c for p in PROPERTIES for c in p.claim.replace("G1-G3", "G1,G2,G3").split(",")}
    assert proved <= covered | set(NOT_COVERED)  # each proved claim is tested or said not to be, with why
    assert claims >= set(NOT_COVERED)
    status = {r.claim: r.status for r in results}
    assert status["G1-G3"] == status["G5"] == status["BP"] == "not covered"
    assert status["D1"] == "pass"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}


def _plugin_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in an empty directory with no configuration: only the plugin's items exist."""
    (tmp_path / "empty.ini").write_text("[pytest]\n")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(tmp_path / "empty.ini")]
    cmd += ["--rootdir", str(tmp_path), "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env())


def test_pytest_plugin_on_the_reference(tmp_path: Path) -> None:
    run = _plugin_run(tmp_path, f"--ddcl-adapter={REFERENCE}", "-k", "grow_decision or train_step")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "9 passed" in run.stdout


def test_pytest_plugin_on_a_broken_adapter(tmp_path: Path) -> None:
    spec = "ddcl_incrt.conformance.broken:optimiser_state_after_birth"
    run = _plugin_run(tmp_path, f"--ddcl-adapter={spec}", "-k", "train_step")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED ::conformance::train_step/adam_after_birth" in run.stdout
    assert "reproduce(check='train_step/adam_after_birth'" in run.stdout
    assert "1 failed, 2 passed" in run.stdout


def test_pytest_plugin_does_nothing_without_its_option(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    run = _plugin_run(tmp_path, "-W", "error")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_command_line_writes_json_and_markdown_and_exits_by_the_result(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ddcl-incrt")
    spec = "ddcl_incrt.conformance.broken:threshold_greater_equal"
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    cmd = [str(exe), "conformance", "--adapter", spec, "--only", "grow_decision/*"]
    run = subprocess.run([*cmd, "--json", str(out_json), "--markdown", str(out_md)], capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    data = json.loads(out_json.read_text())
    (bad,) = [c for c in data["checks"] if c["status"] != "pass"]
    assert bad["check"] == "grow_decision/at_threshold_tie"
    assert bad["worst_error_over_tolerance"] == "inf"
    assert "reproduce(check='grow_decision/at_threshold_tie'" in out_md.read_text()
    run = subprocess.run([*cmd, "--xfail", "grow_decision/at_threshold_tie"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    run = subprocess.run([str(exe), "conformance", "--adapter", "no.such:thing"], capture_output=True, text=True)
    assert run.returncode == 2
    assert "cannot import 'no.such'" in run.stderr


def test_every_operation_is_declared_by_the_real_adapters() -> None:
    for spec in (REFERENCE, ACCELERATED + "float64", ACCELERATED + "float32"):
        assert load_adapter(spec).capabilities == frozenset(operation_names())


class _BrokenPrimitivesOnly(broken.NormalisationVariance):
    """The V normalisation bug in a port of the primitives only (so that property mode runs D1, D2, D5)."""

    capabilities = frozenset(groups()["primitives"])


def broken_primitives_only() -> _BrokenPrimitivesOnly:
    return _BrokenPrimitivesOnly()


def test_command_line_property_mode_sets_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    from ddcl_incrt.cli import main

    args = ["conformance", "--only", "mean_entropy/*", "--properties", "--property-examples", "5", "--adapter"]
    assert main([*args, "ddcl_incrt.conformance.broken:primitives_only"]) == 0
    # its mean_entropy checks pass; D1 fails
    assert main([*args, f"{__name__}:broken_primitives_only"]) == 1
    out = capsys.readouterr().out
    assert "property mode" in out
    assert "L_q = L_OLS + V" in out
