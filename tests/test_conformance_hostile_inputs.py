"""Hostile inputs to ``ddcl-incrt conformance`` and the kit's Python API: a port that exits the process
(``sys.exit``) fails instead of ending the run as a pass, an adapter whose ``name`` or ``capabilities``
raises or has the wrong type is a usage error naming the attribute, a report path that would overwrite
the outputs being compared (or the other report) is refused before any work, a ``--skip`` pattern that
matches nothing is one line on stderr, and the API's entry points name a wrong-typed argument."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ddcl_incrt.cli import main
from ddcl_incrt.conformance import operations
from ddcl_incrt.conformance.operations import AdapterLoadError, PortExited, check_adapter, load_adapter
from ddcl_incrt.conformance.properties import run_properties, select_properties
from ddcl_incrt.conformance.runner import golden, reproduce, run_adapter
from ddcl_incrt.conformance.vectors import VectorEntry, read_vectors, write_vectors
from ddcl_incrt.exit_codes import FAILED_CHECK, USAGE

ONE_CHECK = "squared_distances/single_prototype"
REFERENCE = "ddcl_incrt.conformance.adapters.reference:reference_adapter"


def _port(folder: Path, module: str, body: str) -> str:
    """A module ``module`` in ``folder`` with a class ``P`` (its body ``body``) and ``factory``; its spec."""
    source = "import sys\n\nimport numpy as np\n\n\nclass P:\n" + body + "\n\ndef factory():\n    return P()\n"
    (folder / f"{module}.py").write_text(source, encoding="utf-8")
    return f"{module}:factory"


SQUARED = "    def squared_distances(self, Y, P):\n        return ((Y[:, :, None] - P[None]) ** 2).sum(axis=1)\n"
GOOD = "    name = 'p'\n    capabilities = frozenset({'squared_distances'})\n" + SQUARED

# --------------------------------------------------------------------------------------------------
# A port that exits: never a silent pass
# --------------------------------------------------------------------------------------------------

EXITS_AT_LOAD = {
    "at import": ("sys.exit(0)\n", "cannot import", "SystemExit: 0"),
    "in factory()": ("def factory():\n    raise SystemExit(0)\n", "factory() raised", "SystemExit: 0"),
    "reading name": (
        "class P:\n    @property\n    def name(self):\n        sys.exit(0)\n    capabilities = frozenset()\n\n\n"
        "def factory():\n    return P()\n",
        "adapter.name: reading it raised",
        "SystemExit: 0",
    ),
    "reading capabilities": (
        "class P:\n    name = 'p'\n    @property\n    def capabilities(self):\n        sys.exit(3)\n\n\n"
        "def factory():\n    return P()\n",
        "adapter.capabilities: reading it raised",
        "SystemExit: 3",
    ),
}


@pytest.mark.parametrize("case", sorted(EXITS_AT_LOAD))
def test_a_port_that_exits_while_it_is_loaded_is_a_usage_error(
    port_dir: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    source, where, raised = EXITS_AT_LOAD[case]
    module = f"exit_port_{sorted(EXITS_AT_LOAD).index(case)}"
    (port_dir / f"{module}.py").write_text("import sys\n\n" + source, encoding="utf-8")
    spec = f"{module}:factory"
    out_json = port_dir / "r.json"
    assert main(["conformance", "--adapter", spec, "--json", str(out_json)]) == USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert not out_json.exists()
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith(f"ddcl-incrt conformance: error: adapter {spec!r}: ")
    assert where in last
    assert raised in last
    assert f"{module}.py" in last  # where the port's code exited
    sys.modules.pop(module, None)
    with pytest.raises(AdapterLoadError, match=raised):
        load_adapter(spec)


def test_a_method_that_exits_fails_its_checks_and_the_report_is_written(
    port_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "    name = 'p'\n    capabilities = frozenset({'squared_distances'})\n"
    body += "    def squared_distances(self, Y, P):\n        sys.exit(0)\n"
    spec = _port(port_dir, "exit_method_port", body)
    out_json = port_dir / "r.json"
    code = main(["conformance", "--adapter", spec, "--only", "squared_distances/*", "--json", str(out_json)])
    assert code == FAILED_CHECK
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert report["exit_code"] == FAILED_CHECK
    assert report["checks"]
    for check in report["checks"]:
        assert check["status"] == "error"
        assert "SystemExit: 0" in check["message"]
        assert "exit_method_port.py" in check["message"]
    assert "exit code 1" in capsys.readouterr().out


def test_a_method_that_exits_is_an_errored_check_in_the_api_and_ctrl_c_still_stops_the_run() -> None:
    class Exits:
        name = "exits"
        capabilities = frozenset({"squared_distances"})

        def squared_distances(self, Y: object, P: object) -> object:
            raise SystemExit("bye")

    report = run_adapter(Exits(), only=[ONE_CHECK])
    (result,) = report.results
    assert result.status == "error"
    assert result.message.startswith("PortExited: the port's code raised SystemExit: bye")
    assert report.exit_code == FAILED_CHECK

    class Interrupted(Exits):
        def squared_distances(self, Y: object, P: object) -> object:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_adapter(Interrupted(), only=[ONE_CHECK])


def test_a_method_that_exits_fails_its_property() -> None:
    class Exits:
        name = "exits"
        capabilities = frozenset({"oja_track", "mca_exin_track"})

        def oja_track(self, A: object, w0: object, eta: float, n_steps: int) -> object:
            return operations.oja_track(A, w0, eta, n_steps)  # type: ignore[arg-type]

        def mca_exin_track(self, A: object, w0: object, eta: float, n_steps: int) -> object:
            sys.exit(0)

    (result,) = run_properties(Exits(), max_examples=2, shrink=False, only=select_properties(["G6"]))
    assert result.status == "fail"
    assert "PortExited" in result.message
    assert "SystemExit: 0" in result.message


def test_port_code_turns_only_non_exceptions_into_port_exited() -> None:
    with pytest.raises(PortExited) as info, operations.port_code():
        raise GeneratorExit
    assert isinstance(info.value.__cause__, GeneratorExit)
    with pytest.raises(ZeroDivisionError), operations.port_code():
        raise ZeroDivisionError
    with pytest.raises(KeyboardInterrupt), operations.port_code():
        raise KeyboardInterrupt


# --------------------------------------------------------------------------------------------------
# An adapter's name and capabilities
# --------------------------------------------------------------------------------------------------

BAD_ATTRIBUTES = {
    "name raises": (
        "    @property\n    def name(self):\n        raise RuntimeError('boom')\n"
        "    capabilities = frozenset({'squared_distances'})\n" + SQUARED,
        "adapter.name: reading it raised RuntimeError: boom",
    ),
    "capabilities raises": (
        "    name = 'p'\n    @property\n    def capabilities(self):\n        raise RuntimeError('boom')\n" + SQUARED,
        "adapter.capabilities: reading it raised RuntimeError: boom",
    ),
    "a method attribute raises": (
        "    name = 'p'\n    capabilities = frozenset({'squared_distances'})\n"
        "    @property\n    def squared_distances(self):\n        raise RuntimeError('boom')\n",
        "adapter.squared_distances: reading it raised RuntimeError: boom",
    ),
    "capabilities a str": (
        "    name = 'p'\n    capabilities = 'squared_distances'\n" + SQUARED,
        "adapter.capabilities: expected a collection of operation names (a frozenset of str), got str",
    ),
    "capabilities not str": (
        "    name = 'p'\n    capabilities = frozenset({1})\n" + SQUARED,
        "adapter.capabilities: expected operation names (str), got [1]",
    ),
    "name not a str": (
        "    name = 123\n    capabilities = frozenset({'squared_distances'})\n" + SQUARED,
        "adapter.name: expected a str (the port's name in the report), got int",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ATTRIBUTES))
def test_an_adapter_attribute_that_raises_or_has_the_wrong_type_is_a_usage_error(
    port_dir: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    body, expected = BAD_ATTRIBUTES[case]
    spec = _port(port_dir, f"attribute_port_{sorted(BAD_ATTRIBUTES).index(case)}", body)
    assert main(["conformance", "--adapter", spec]) == USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith(f"ddcl-incrt conformance: error: adapter {spec!r}: {expected}")
    assert "internal error" not in captured.err
    with pytest.raises(AdapterLoadError, match=f"adapter {spec!r}: "):
        load_adapter(spec)
    with pytest.raises(AdapterLoadError, match=f"adapter {spec!r}: "):
        reproduce(check=ONE_CHECK, adapter=spec)


def test_a_correct_adapter_with_a_list_of_capabilities_still_loads(port_dir: Path) -> None:
    spec = _port(port_dir, "list_port", GOOD.replace("frozenset({'squared_distances'})", "['squared_distances']"))
    assert reproduce(check=ONE_CHECK, adapter=spec).status == "pass"


def test_check_adapter_names_the_attribute_that_raised() -> None:
    class Raises:
        name = "r"

        @property
        def capabilities(self) -> frozenset[str]:
            raise OSError("no such table")

    with pytest.raises(ValueError, match=r"adapter\.capabilities: reading it raised OSError: no such table") as info:
        check_adapter(Raises())
    assert isinstance(info.value.__cause__, OSError)


# --------------------------------------------------------------------------------------------------
# Report paths that would overwrite the input or each other
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def outputs_dir(tmp_path: Path) -> Path:
    entries = [VectorEntry(e.case, e.outputs) for e in golden() if e.case.operation == "squared_distances"]
    return write_vectors(tmp_path / "out", "outputs", entries, port="test")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("option", "relative"),
    [("--json", "manifest.json"), ("--markdown", "manifest.json"), ("--json", "."), ("--markdown", "sub/r.md")],
)
def test_a_report_inside_the_outputs_being_compared_is_refused_before_any_work(
    outputs_dir: Path, capsys: pytest.CaptureFixture[str], option: str, relative: str
) -> None:
    before = _snapshot(outputs_dir)
    report = outputs_dir / relative
    assert main(["conformance", "--outputs", str(outputs_dir), option, str(report)]) == USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"ddcl-incrt conformance: error: {option} {report}: in the --outputs directory {outputs_dir} being "
        "compared (it would overwrite the port's files); write the report elsewhere"
    )
    assert _snapshot(outputs_dir) == before


def test_a_report_through_a_link_into_the_outputs_is_refused(
    outputs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link"
    link.symlink_to(outputs_dir)
    before = _snapshot(outputs_dir)
    assert main(["conformance", "--outputs", str(outputs_dir), "--json", str(link / "manifest.json")]) == USAGE
    assert "--json" in capsys.readouterr().err
    assert _snapshot(outputs_dir) == before


def test_the_same_file_for_both_reports_is_refused(
    outputs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = tmp_path / "same.out"
    args = ["conformance", "--outputs", str(outputs_dir), "--json", str(same), "--markdown"]
    assert main([*args, str(tmp_path / "x" / ".." / "same.out")]) == USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"ddcl-incrt conformance: error: --json, --markdown: both name {same}; give each report its own file"
    )
    assert not same.exists()
    assert main([*args, str(tmp_path / "r.md")]) == 0  # distinct files beside the outputs are fine
    assert json.loads(same.read_text(encoding="utf-8"))["exit_code"] == 0


# --------------------------------------------------------------------------------------------------
# --skip / --xfail patterns that match nothing; the API's argument types
# --------------------------------------------------------------------------------------------------


def test_a_skip_pattern_that_matches_nothing_is_one_line_on_stderr(
    outputs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conformance", "--outputs", str(outputs_dir), "--skip", "nope", "--xfail", "nah"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "ddcl-incrt conformance: warning: skip entry 'nope' matches no check",
        "ddcl-incrt conformance: warning: xfail entry 'nah' matches no check",
    ]
    assert "warning: skip entry 'nope' matches no check" in captured.out  # and in the report
    # the Python API still warns, as documented
    with pytest.warns(UserWarning, match="skip entry 'nope' matches no check"):
        run_adapter(REFERENCE, only=[ONE_CHECK], skip=["nope"])


@pytest.mark.parametrize("check", [None, 5, ["squared_distances/*"]])
def test_reproduce_names_a_check_that_is_not_a_str(check: object) -> None:
    with pytest.raises(TypeError, match=r"^reproduce: check: expected a check name \(str"):
        reproduce(check=check, outputs="anywhere")  # type: ignore[arg-type]


@pytest.mark.parametrize("directory", [None, 5, b"/tmp"])
def test_read_vectors_names_a_directory_that_is_not_a_path(directory: object) -> None:
    with pytest.raises(TypeError, match=r"^read_vectors: directory: expected a folder path"):
        read_vectors(directory)  # type: ignore[arg-type]
