"""The kit cannot pass by doing nothing (a minimum coverage, ``--min-coverage``), its errors go to stderr
with the USAGE exit code, and ``--adapter package.module:factory`` finds a module in the current working
directory. Every test plants the failure its check exists for, next to a baseline that passes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ddcl_incrt.cli import main
from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.operations import AdapterLoadError, all_cases, load_adapter
from ddcl_incrt.conformance.runner import golden, run_adapter, run_outputs
from ddcl_incrt.conformance.vectors import FORMAT_NAME, VectorEntry, write_vectors
from ddcl_incrt.exit_codes import FAILED_CHECK, OK, USAGE

PRIMITIVES_ONLY = "ddcl_incrt.conformance.broken:primitives_only"
EXE = Path(sys.executable).with_name("ddcl-incrt")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "PYTHONPATH"}


def _outputs(tmp_path: Path, checks: list[str]) -> Path:
    """An outputs directory holding the reference's (correct) outputs of ``checks``."""
    entries = [VectorEntry(e.case, e.outputs) for e in golden() if e.case.check in checks]
    return write_vectors(tmp_path / "out", "outputs", entries, port="test")


def _empty_outputs(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    manifest = {"format": FORMAT_NAME, "version": 1, "kind": "outputs", "cases": []}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


class _NothingDeclared:
    name = "declares nothing"
    capabilities: frozenset[str] = frozenset()


class _EntropyNotImplemented(broken.PrimitivesOnly):
    name = "entropy declared, not implemented"

    def mean_entropy(self, Q: np.ndarray) -> float:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# Minimum coverage
# --------------------------------------------------------------------------------------------------


def test_an_outputs_manifest_with_no_cases_fails_naming_the_manifest(tmp_path: Path) -> None:
    full = [e.case.check for e in golden() if e.case.operation == "squared_distances"]
    assert run_outputs(_outputs(tmp_path / "full", full)).exit_code == OK

    empty = _empty_outputs(tmp_path)
    report = run_outputs(empty)
    assert report.failures == []  # no check failed: the old report said "not covered 78", exit 0
    assert report.exit_code == FAILED_CHECK
    (problem,) = report.coverage_problems()
    assert "nothing was compared" in problem
    assert f"{empty.resolve() / 'manifest.json'} has no cases" in problem
    data = report.to_dict()
    assert data["exit_code"] == FAILED_CHECK
    assert data["minimum_coverage"]["compared"] == 0
    assert data["minimum_coverage"]["problems"] == [problem]
    assert "below the minimum" in report.to_markdown()


def test_a_declared_operation_partly_written_fails_until_the_rest_is_skipped(tmp_path: Path) -> None:
    written = ["squared_distances/basic"]
    report = run_outputs(_outputs(tmp_path, written))
    assert report.failures == []
    assert report.exit_code == FAILED_CHECK
    (problem,) = report.coverage_problems()
    assert problem.startswith("squared_distances: declared")
    assert "squared_distances/cold" in problem
    assert "squared_distances/basic" not in problem.split("not covered:")[1]
    skipped = run_outputs(tmp_path / "out", skip=["squared_distances/[!b]*"])
    assert skipped.coverage_problems() == []
    assert skipped.exit_code == OK


def test_an_adapter_that_declares_nothing_fails() -> None:
    report = run_adapter(_NothingDeclared())
    assert {r.status for r in report.results} == {"not covered"}
    assert report.exit_code == FAILED_CHECK
    (problem,) = report.coverage_problems()
    assert "the adapter 'declares nothing' declares no operations (its capabilities are empty)" in problem


def test_a_declared_operation_that_raises_not_implemented_fails_as_not_implemented() -> None:
    baseline = run_adapter(PRIMITIVES_ONLY, only=["mean_entropy/*", "free_energy/*"])
    assert baseline.exit_code == OK
    assert baseline.coverage_problems() == []

    report = run_adapter(_EntropyNotImplemented(), only=["mean_entropy/*", "free_energy/*"])
    assert report.exit_code == FAILED_CHECK
    # the free_energy checks; mean_entropy's were not compared
    assert report.compared == len([c for c in all_cases() if c.operation == "free_energy"])
    assert {r.status for r in report.results if r.operation == "mean_entropy"} == {"error"}
    assert all(r.not_implemented for r in report.results if r.operation == "mean_entropy")
    (problem,) = report.coverage_problems()
    assert problem.startswith("declared but not implemented (raised NotImplementedError): mean_entropy;")

    nothing = run_adapter(_EntropyNotImplemented(), only=["mean_entropy/*"])
    assert nothing.compared == 0
    assert "nothing is implemented yet" in nothing.coverage_problems()[0]


def test_selecting_only_undeclared_operations_compares_nothing_and_fails() -> None:
    report = run_adapter(PRIMITIVES_ONLY, only=["grow_decision/*"])
    assert report.exit_code == FAILED_CHECK
    assert "none of the selected checks is of an operation the port declares" in report.coverage_problems()[0]


def test_skipping_every_check_compares_nothing_and_fails() -> None:
    report = run_adapter(PRIMITIVES_ONLY, only=["mean_entropy/*"], skip=["mean_entropy/*"])
    assert report.exit_code == FAILED_CHECK
    assert "every check of the port's operations was skipped" in report.coverage_problems()[0]


def test_min_coverage_is_the_number_of_checks_that_must_be_compared() -> None:
    four = ["mean_entropy/*"]
    assert run_adapter(PRIMITIVES_ONLY, only=four, min_coverage=4).exit_code == OK
    report = run_adapter(PRIMITIVES_ONLY, only=four, min_coverage=5)
    assert report.failures == []
    assert report.exit_code == FAILED_CHECK
    assert report.coverage_problems() == ["4 check(s) compared; --min-coverage requires 5 compared"]
    assert report.to_dict()["minimum_coverage"]["required"] == 5


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_min_coverage_refuses_what_is_not_a_positive_whole_number(bad: object) -> None:
    with pytest.raises(ValueError, match="min_coverage: expected a whole number >= 1"):
        run_adapter(PRIMITIVES_ONLY, only=["mean_entropy/*"], min_coverage=bad)  # type: ignore[arg-type]


def test_command_line_min_coverage_and_the_json_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    args = ["conformance", "--adapter", PRIMITIVES_ONLY, "--only", "mean_entropy/*", "--json", str(out)]
    assert main([*args, "--min-coverage", "4"]) == OK
    assert json.loads(out.read_text(encoding="utf-8"))["exit_code"] == OK
    assert main([*args, "--min-coverage", "5"]) == FAILED_CHECK
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["exit_code"] == FAILED_CHECK
    assert data["minimum_coverage"]["problems"] == ["4 check(s) compared; --min-coverage requires 5 compared"]
    assert "below the minimum coverage" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([*args, "--min-coverage", "0"])
    assert exc.value.code == USAGE
    assert "--min-coverage" in capsys.readouterr().err


def test_command_line_empty_manifest_exits_failed_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = _empty_outputs(tmp_path)
    assert main(["conformance", "--outputs", str(empty)]) == FAILED_CHECK
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())  # rich wraps long lines
    assert "nothing was compared" in out
    assert "has no cases" in out
    assert "exit code 1: below the minimum coverage" in out


def test_pytest_plugin_fails_an_adapter_that_declares_nothing(tmp_path: Path) -> None:
    (tmp_path / "declares_nothing_port.py").write_text(
        "class Port:\n    name = 'nothing'\n    capabilities = frozenset()\n\n\ndef factory():\n    return Port()\n",
        encoding="utf-8",
    )
    (tmp_path / "empty.ini").write_text("[pytest]\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(tmp_path / "empty.ini")]
    cmd += ["--rootdir", str(tmp_path), "-q", "-p", "no:xdist"]
    run = subprocess.run(
        [*cmd, "--ddcl-adapter=declares_nothing_port:factory", "-k", "coverage or mean_entropy"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=_env(),
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "declares no operations" in run.stdout
    assert "1 failed, 4 skipped" in run.stdout
    run = subprocess.run(
        [*cmd, f"--ddcl-adapter={PRIMITIVES_ONLY}", "-k", "coverage or mean_entropy"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=_env(),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout


# --------------------------------------------------------------------------------------------------
# Errors on stderr, exit code USAGE
# --------------------------------------------------------------------------------------------------


LOAD_ERRORS = {
    "missing module": ("", "nowhere_port_x9:factory", "cannot import 'nowhere_port_x9'", False),
    "raises on import": ("raise RuntimeError('boom at import')\n", None, "RuntimeError: boom at import", True),
    "syntax error": ("def broken(:\n", None, "SyntaxError", True),
    "missing dependency": ("import no_such_dependency_x9\n", None, "No module named 'no_such_dependency_x9'", True),
    "no factory": ("x = 1\n", None, "has no callable 'factory'", False),
    "factory raises": ("def factory():\n    return 1 / 0\n", None, "factory() raised ZeroDivisionError", True),
    "not an adapter": (
        "def factory():\n    return 42\n",
        None,
        "expected an object with `name` and `capabilities`",
        False,
    ),
    "unknown capability": (
        "class P:\n    name = 'p'\n    capabilities = frozenset({'sqaured_distances'})\n\n\ndef factory():\n"
        "    return P()\n",
        None,
        "unknown operations ['sqaured_distances']",
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(LOAD_ERRORS))
def test_an_adapter_that_cannot_be_loaded_is_a_usage_error_on_stderr(
    port_dir: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    source, spec, expected, traceback_shown = LOAD_ERRORS[case]
    module = f"load_error_port_{sorted(LOAD_ERRORS).index(case)}"
    if spec is None:
        (port_dir / f"{module}.py").write_text(source, encoding="utf-8")
        spec = f"{module}:factory"
    out_json = port_dir / "r.json"
    assert main(["conformance", "--adapter", spec, "--json", str(out_json)]) == USAGE
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout carries the report only, and there is none
    assert not out_json.exists()
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith(f"ddcl-incrt conformance: error: adapter {spec!r}: ")
    assert expected in last
    if traceback_shown:  # the port's own line, not the kit's frames
        assert f"{module}.py" in captured.err
        assert "importlib" not in captured.err
        assert "ddcl_incrt/conformance/operations.py" not in captured.err
    with pytest.raises(AdapterLoadError, match=re.escape(expected)):
        load_adapter(spec)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--outputs", "somewhere", "--properties"], "--properties: property mode runs on a Python adapter"),
        (["--write-inputs", "somewhere", "--min-coverage", "3"], "--min-coverage: only with --adapter or --outputs"),
        (["--template", "somewhere", "--json", "r.json"], "--json: only with --adapter or --outputs"),
        (["--adapter", PRIMITIVES_ONLY, "--only", "no_such_op/*"], "only: ['no_such_op/*'] match no check"),
        (["--adapter", "no_colon"], "expected 'package.module:factory', got 'no_colon'"),
    ],
)
def test_usage_errors_go_to_stderr_and_exit_usage(
    port_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert main(["conformance", *args]) == USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err
    assert sorted(p.name for p in port_dir.iterdir()) == []  # nothing was written


# --------------------------------------------------------------------------------------------------
# --adapter finds a module in the current working directory
# --------------------------------------------------------------------------------------------------

CWD_PORT = """
from ddcl_incrt.conformance.broken import PrimitivesOnly


def factory():
    return PrimitivesOnly()
"""


def test_an_adapter_in_the_current_directory_is_found(port_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    (port_dir / "cwd_port_a1.py").write_text(CWD_PORT, encoding="utf-8")
    path_before = list(sys.path)
    report = run_adapter("cwd_port_a1:factory", only=["mean_entropy/*"])
    assert report.exit_code == OK
    assert report.compared == 4
    assert sys.path == path_before  # the working directory was on sys.path for the import only

    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.chdir(elsewhere)  # port_dir's monkeypatch.chdir restores the directory afterwards
    (port_dir / "cwd_port_a2.py").write_text(CWD_PORT, encoding="utf-8")
    with pytest.raises(AdapterLoadError, match=f"looked in the current directory {elsewhere}"):
        load_adapter("cwd_port_a2:factory")


def test_the_command_finds_an_adapter_in_the_directory_it_runs_in(tmp_path: Path) -> None:
    """The ``ddcl-incrt`` script's own ``sys.path[0]`` is its bin folder, not the working directory."""
    (tmp_path / "cwd_port_b.py").write_text(CWD_PORT, encoding="utf-8")
    cmd = [str(EXE), "conformance", "--adapter", "cwd_port_b:factory", "--only", "mean_entropy/*"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300)
    assert run.returncode == OK, run.stdout + run.stderr
    assert "pass 4" in run.stdout
    other = tmp_path / "other"
    other.mkdir()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=other, env=_env(), timeout=300)
    assert run.returncode == USAGE
    assert run.stdout == ""
    assert "cannot import 'cwd_port_b'" in run.stderr
