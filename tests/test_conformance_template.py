"""``ddcl-incrt conformance --template DIR``: the adapter skeleton is the registry (one method per operation
with its reference's signature and docstring), the unfilled skeleton fails the kit saying nothing is
implemented, the skeleton filled with the reference's functions passes it, a partly filled one fails
until the rest is removed from its capabilities, and the outputs example is a passing file port."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ddcl_incrt.cli import main
from ddcl_incrt.conformance.operations import REGISTRY, all_cases, operation_names
from ddcl_incrt.conformance.template import ADAPTER_FILE, OUTPUTS_EXAMPLE, README_FILE, adapter_source
from ddcl_incrt.exit_codes import FAILED_CHECK, OK, USAGE

RAISE = re.compile(r'^( +)raise NotImplementedError\("(\w+): not implemented yet"\)$', re.MULTILINE)


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work in ``tmp_path``; the adapter modules imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    names = ("port_adapter", "filled_port_adapter")
    for name in names:
        sys.modules.pop(name, None)
    yield tmp_path
    for name in names:
        sys.modules.pop(name, None)


def _template(folder: Path) -> Path:
    assert main(["conformance", "--template", str(folder)]) == OK
    return folder / ADAPTER_FILE


def _filled(source: str, leave: frozenset[str] = frozenset()) -> str:
    """The skeleton with every method but those in ``leave`` delegating to the reference implementation
    of its record in ``operations.REGISTRY`` (what ``adapters/reference.py`` does)."""

    def fill(m: re.Match[str]) -> str:
        indent, name = m.group(1), m.group(2)
        if name in leave:
            return m.group(0)
        params = list(inspect.signature(next(op for op in REGISTRY if op.name == name).reference).parameters)
        return f"{indent}return _reference({name!r}).reference({', '.join(params)})"

    filled, n = RAISE.subn(fill, source)
    assert n == len(REGISTRY)
    head = "from __future__ import annotations\n"
    return filled.replace(head, head + "\nfrom ddcl_incrt.conformance.operations import operation as _reference\n", 1)


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(path: Path) -> dict[str, typing.Any]:
    data: dict[str, typing.Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_the_template_writes_its_files_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "new" / "port"
    adapter = _template(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([ADAPTER_FILE, OUTPUTS_EXAMPLE, README_FILE])
    assert adapter.read_text(encoding="utf-8") == adapter_source()
    assert "--adapter port_adapter:factory" in (folder / README_FILE).read_text(encoding="utf-8")
    assert str(adapter) in capsys.readouterr().out

    adapter.write_text("# the port author's work\n", encoding="utf-8")
    assert main(["conformance", "--template", str(folder)]) == USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{adapter}" in captured.err
    assert "never overwrites" in captured.err
    assert adapter.read_text(encoding="utf-8") == "# the port author's work\n"

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x", encoding="utf-8")
    assert main(["conformance", "--template", str(not_a_folder)]) == USAGE
    assert "exists and is not a folder" in capsys.readouterr().err


def test_the_skeleton_is_the_registry(tmp_path: Path) -> None:
    module = _load(_template(tmp_path), "skeleton_under_test")
    cls = module.PortAdapter
    port = module.factory()
    assert port.capabilities == frozenset(operation_names())
    for op in REGISTRY:
        method = getattr(cls, op.name)
        ref = inspect.signature(op.reference)
        assert list(inspect.signature(method).parameters) == ["self", *ref.parameters], op.name
        doc, ref_doc = inspect.getdoc(method), inspect.getdoc(op.reference)
        assert doc is not None
        assert ref_doc is not None
        assert doc.startswith(ref_doc), op.name
        assert op.outputs in doc
        hints = typing.get_type_hints(method)  # every annotation's name is imported by the skeleton
        assert set(hints) == {*ref.parameters, "return"}, op.name
        args = [None] * len(ref.parameters)
        with pytest.raises(NotImplementedError, match=f"{op.name}: not implemented yet"):
            getattr(port, op.name)(*args)


def test_the_unfilled_skeleton_fails_saying_nothing_is_implemented(
    in_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _template(in_folder)
    out = in_folder / "r.json"
    assert main(["conformance", "--adapter", "port_adapter:factory", "--json", str(out)]) == FAILED_CHECK
    data = _json(out)
    assert data["exit_code"] == FAILED_CHECK
    assert data["counts"] == {"error": len(data["checks"])}
    assert data["minimum_coverage"]["compared"] == 0
    problems = data["minimum_coverage"]["problems"]
    assert "nothing is implemented yet" in problems[0]
    assert problems[1].startswith("declared but not implemented (raised NotImplementedError): squared_distances, ")
    assert "not implemented" in data["checks"][0]["message"]
    assert "nothing is implemented yet" in " ".join(capsys.readouterr().out.split())


def test_the_skeleton_filled_with_the_reference_passes_the_kit(in_folder: Path) -> None:
    skeleton = _template(in_folder / "template")
    filled = in_folder / "filled_port_adapter.py"
    filled.write_text(_filled(skeleton.read_text(encoding="utf-8")), encoding="utf-8")
    out = in_folder / "r.json"
    assert main(["conformance", "--adapter", "filled_port_adapter:factory", "--json", str(out)]) == OK
    data = _json(out)
    assert data["exit_code"] == OK
    assert data["counts"] == {"pass": len(data["checks"])}
    assert data["minimum_coverage"]["compared"] == len(data["checks"]) == len(all_cases())
    assert data["uncovered_operations"] == []


def test_a_partly_filled_skeleton_fails_until_the_rest_leaves_its_capabilities(in_folder: Path) -> None:
    skeleton = _template(in_folder / "template")
    source = _filled(skeleton.read_text(encoding="utf-8"), leave=frozenset({"trajectory"}))
    filled = in_folder / "filled_port_adapter.py"
    filled.write_text(source, encoding="utf-8")
    out = in_folder / "r.json"
    assert main(["conformance", "--adapter", "filled_port_adapter:factory", "--json", str(out)]) == FAILED_CHECK
    data = _json(out)
    assert data["minimum_coverage"]["problems"] == [
        "declared but not implemented (raised NotImplementedError): trajectory; "
        "implement them or remove them from capabilities"
    ]
    assert {c["check"] for c in data["checks"] if c["status"] == "error"} == {
        "trajectory/short_run",
        "trajectory/near_tie",
    }

    filled.write_text(source.replace('            "trajectory",\n', ""), encoding="utf-8")
    sys.modules.pop("filled_port_adapter", None)
    assert main(["conformance", "--adapter", "filled_port_adapter:factory", "--json", str(out)]) == OK
    data = _json(out)
    assert data["uncovered_operations"] == ["trajectory"]
    assert data["coverage"]["training"] == "partial: missing ['trajectory']"


def test_the_outputs_example_is_a_passing_file_port(tmp_path: Path) -> None:
    _template(tmp_path)
    example = tmp_path / OUTPUTS_EXAMPLE
    manifest = _json(example / "manifest.json")
    assert manifest["kind"] == "outputs"
    assert {c["operation"] for c in manifest["cases"]} == {"squared_distances"}
    out = tmp_path / "r.json"
    assert main(["conformance", "--outputs", str(example), "--json", str(out)]) == OK
    assert _json(out)["minimum_coverage"]["compared"] == 4

    first = manifest["cases"][0]
    path = example / first["outputs"]["D"]["file"]
    np.save(path, np.load(path) + 1e-6)  # a planted difference
    assert main(["conformance", "--outputs", str(example), "--json", str(out)]) == FAILED_CHECK
    assert [c["check"] for c in _json(out)["checks"] if c["status"] == "fail"] == [first["check"]]
