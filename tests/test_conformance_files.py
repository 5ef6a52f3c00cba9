"""The conformance kit's files and comparator under hostile input.

* The vector reader: links out of the folder, FIFOs, Python's JSON limits and every exception numpy's
  ``.npy`` reader can raise become :class:`VectorFileError` naming the file and the field, the
  original chained.
* The tolerance declaration: ``rtol: true``, non-string patterns, misspelt keys, the same JSON limits.
* The directory writer: never displaces a file or a foreign folder, never loses the previous directory.
* The comparator: a malformed output is one failed field naming the shape and dtype (never an
  exception that stops the comparison); non-finite values fail everywhere, also past a near-tie; a
  missing field fails in every operation group; a float field is held to exactly its tolerance.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import threading
import tokenize
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from ddcl_incrt.conformance.compare import CheckResult, ToleranceEntry, TolerancePolicy
from ddcl_incrt.conformance.operations import compare_case, operation_names
from ddcl_incrt.conformance.runner import run_outputs
from ddcl_incrt.conformance.vectors import GOLDEN_DIR, VectorEntry, VectorFileError, read_vectors, write_vectors
from reference.tolerances import CheckKind, tolerance

VALUE_RTOL = tolerance("float64", CheckKind.VALUE).rtol


@pytest.fixture(scope="module")
def golden() -> dict[str, VectorEntry]:
    return {e.case.check: e for e in read_vectors(GOLDEN_DIR, expect_kind="golden")}


def _port_outputs(entry: VectorEntry) -> dict[str, np.ndarray]:
    """What a correct port writes for ``entry``: the reference's outputs without the reference-only ones."""
    assert entry.outputs is not None
    return {k: np.array(v) for k, v in entry.outputs.items() if not k.startswith("ref.")}


def _compare(entry: VectorEntry, actual: Mapping[str, object], policy: TolerancePolicy | None = None) -> CheckResult:
    assert entry.outputs is not None
    return compare_case(entry.case, actual, entry.outputs, policy or TolerancePolicy())  # type: ignore[arg-type]


def _failed(result: CheckResult) -> dict[str, str]:
    return {f.field: f.detail for f in result.fields if not f.ok}


# ==================================================================================================
# The reader
# ==================================================================================================


def _small_copy(tmp_path: Path, golden: dict[str, VectorEntry], check: str = "squared_distances/basic") -> Path:
    """A vector directory of one case (the kit's own writer), to be damaged by a test."""
    return write_vectors(tmp_path / "vectors", "golden", [golden[check]])


def _manifest(directory: Path) -> dict[str, object]:
    data = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _input_file(directory: Path, name: str = "Y") -> Path:
    cases = _manifest(directory)["cases"]
    assert isinstance(cases, list)
    return directory / str(cases[0]["inputs"][name]["file"])


def test_a_manifest_file_linking_outside_the_folder_is_refused_naming_the_field(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    copy = _small_copy(tmp_path, golden)
    outside = tmp_path / "elsewhere.npy"
    target = _input_file(copy)
    shutil.copyfile(target, outside)  # a valid array: only where it lies is wrong
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(VectorFileError, match=r"field cases\[0\]\.inputs\.Y\.file: .*outside the vector directory"):
        read_vectors(copy)
    # a folder on the way that links out is the same
    target.unlink()
    shutil.copyfile(outside, target)
    case_dir = target.parent
    moved = tmp_path / "moved_case"
    case_dir.rename(moved)
    case_dir.symlink_to(moved, target_is_directory=True)
    with pytest.raises(VectorFileError, match=r"inputs\.Y\.file: .*outside"):
        read_vectors(copy)


def test_a_link_inside_the_folder_is_read(tmp_path: Path, golden: dict[str, VectorEntry]) -> None:
    copy = _small_copy(tmp_path, golden)
    target = _input_file(copy)
    inside = copy / "kept.npy"
    target.rename(inside)
    target.symlink_to(inside)
    (entry,) = read_vectors(copy)
    np.testing.assert_array_equal(entry.case.inputs["Y"], golden["squared_distances/basic"].case.inputs["Y"])


def _returns_within(seconds: float, fn: Callable[[], object]) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test if it has not returned after ``seconds`` (a hang)."""
    outcome: list[BaseException | None] = []

    def body() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    return outcome[0]


def _unblock(path: Path) -> None:
    """Open a FIFO for writing once, so that a reader blocked on it (a failing test) can end; with no
    reader blocked the open fails (ENXIO), which is the passing case."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("which", ["manifest", "array"])
def test_a_fifo_is_refused_at_once_not_read_forever(tmp_path: Path, golden: dict[str, VectorEntry], which: str) -> None:
    copy = _small_copy(tmp_path, golden)
    fifo = copy / "manifest.json" if which == "manifest" else _input_file(copy)
    fifo.unlink()
    os.mkfifo(fifo)
    try:
        exc = _returns_within(10.0, lambda: read_vectors(copy))
    finally:
        _unblock(fifo)
    assert isinstance(exc, VectorFileError), exc
    assert str(fifo) in str(exc)
    assert "not a regular file" in str(exc)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (b'{"format": ' + b"1" * 5000 + b"}", ValueError),  # Python's limit on the digits of an int
        (b"[" * 100_000 + b"]" * 100_000, RecursionError),
        (b'{"format": "\xff\xfe"}', UnicodeDecodeError),
        (b'{"format": NaN}', ValueError),  # not JSON, though Python's json reads it
        (b'{"format": ', json.JSONDecodeError),
    ],
    ids=["5000-digit int", "deep nesting", "not UTF-8", "NaN", "truncated"],
)
def test_python_json_limits_in_a_manifest_name_the_file(tmp_path: Path, text: bytes, cause: type) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(text)
    with pytest.raises(VectorFileError, match=r"manifest\.json: field \(file\): not valid JSON") as info:
        read_vectors(folder)
    assert isinstance(info.value.__cause__, cause)


def test_an_infinite_scalar_is_refused_naming_it(tmp_path: Path, golden: dict[str, VectorEntry]) -> None:
    copy = _small_copy(tmp_path, golden, "soft_assignments/basic")
    path = copy / "manifest.json"
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    data["cases"][0]["scalars"]["T_P"] = "__inf__"
    path.write_text(json.dumps(data).replace('"__inf__"', "1e999"), encoding="utf-8")  # reads as inf
    with pytest.raises(VectorFileError, match=r"field cases\[0\]\.scalars\.T_P: expected a finite number"):
        read_vectors(copy)


_NPY_ERRORS: list[BaseException] = [
    ValueError("bad header"),
    EOFError("short read"),
    OSError("device error"),
    tokenize.TokenError("EOF in multi-line statement", (1, 0)),
    SyntaxError("invalid syntax"),
    MemoryError(),
    OverflowError("too large"),
    struct.error("unpack requires a buffer"),
    RecursionError("maximum recursion depth exceeded"),
    TypeError("unhashable"),
    KeyError("descr"),
    UnicodeDecodeError("latin-1", b"\xff", 0, 1, "bad"),
]


@pytest.mark.parametrize("stage", ["header", "data"])
@pytest.mark.parametrize("error", _NPY_ERRORS, ids=lambda e: type(e).__name__)
def test_every_exception_of_numpys_reader_names_the_file_and_is_chained(
    tmp_path: Path, golden: dict[str, VectorEntry], monkeypatch: pytest.MonkeyPatch, stage: str, error: BaseException
) -> None:
    copy = _small_copy(tmp_path, golden)

    def raise_it(*args: object, **kwargs: object) -> object:
        raise error

    if stage == "header":
        monkeypatch.setattr(np.lib.format, "read_array_header_1_0", raise_it)
    else:
        monkeypatch.setattr(np, "load", raise_it)
    with pytest.raises(VectorFileError) as info:
        read_vectors(copy)
    assert info.value.field.startswith("cases[0].inputs.")
    assert info.value.path.endswith(".npy")
    assert info.value.__cause__ is error  # chained, not hidden
    assert type(error).__name__ in str(info.value)


def _npy_with_header(header: str) -> bytes:
    body = header.encode("latin1")
    body += b" " * (-(len(body) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 4), }", "shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (", "not a readable .npy"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "(" * 5000, "not a readable .npy"),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (7, 3), }", "pickles"),
    ],
    ids=["huge shape", "cut header", "deep header", "object array"],
)
def test_a_hostile_npy_header_is_refused_before_its_data_is_read(
    tmp_path: Path, golden: dict[str, VectorEntry], header: str, problem: str
) -> None:
    copy = _small_copy(tmp_path, golden)
    path = _input_file(copy)
    path.write_bytes(_npy_with_header(header))
    with pytest.raises(VectorFileError, match=problem) as info:
        read_vectors(copy)
    assert str(path) in str(info.value)


def test_a_header_whose_shape_needs_more_bytes_than_the_file_has_allocates_nothing(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    """The manifest agrees with a header declaring 10**11 × 4 floats: refused by size, not by a MemoryError."""
    copy = _small_copy(tmp_path, golden)
    path = _input_file(copy)
    path.write_bytes(_npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 4), }"))
    data = _manifest(copy)
    data["cases"][0]["inputs"]["Y"]["shape"] = [100000000000, 4]  # type: ignore[index]
    (copy / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(VectorFileError, match=r"0 bytes of array data, the header's shape .* needs 3200000000000"):
        read_vectors(copy)


# ==================================================================================================
# The tolerance declaration
# ==================================================================================================


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"check": "x/*", "rtol": True, "reason": "r"}, "rtol: expected a finite number > 0, got True"),
        ({"check": "x/*", "rtol": 10**400, "reason": "r"}, "rtol: expected a finite number > 0"),
        ({"check": 5, "rtol": 1e-3, "reason": "r"}, "check: expected a non-empty pattern"),
        ({"check": "x/*", "field": ["D"], "rtol": 1e-3, "reason": "r"}, "field: expected a non-empty pattern"),
        ({"check": "x/*", "feild": "D", "rtol": 1e-3, "reason": "r"}, r"unknown key\(s\) \['feild'\]"),
    ],
    ids=["rtol true", "rtol beyond float", "check not a string", "field not a string", "misspelt field"],
)
def test_a_bad_tolerance_entry_is_refused_naming_the_file(tmp_path: Path, entry: object, problem: str) -> None:
    path = tmp_path / "tol.json"
    path.write_text(json.dumps({"dtype": "float64", "entries": [entry]}), encoding="utf-8")
    with pytest.raises(ValueError, match=problem) as info:
        TolerancePolicy.from_json(path)
    assert str(path) in str(info.value)
    assert "entries[0]" in str(info.value)


@pytest.mark.parametrize(
    ("text", "problem", "cause"),
    [
        (b'{"entries": [], "dtype": ' + b"1" * 5000 + b"}", "not a readable JSON", ValueError),
        (b"[" * 100_000 + b"]" * 100_000, "not a readable JSON", RecursionError),
        (b'{"dtype": "\xff"}', "not a readable JSON", UnicodeDecodeError),
        (b'{"dtype": "float16", "entries": []}', "field 'dtype': expected 'float64' or 'float32'", None),
        (b'{"dtpye": "float32", "entries": []}', r"unknown field\(s\) \['dtpye'\]", None),
    ],
    ids=["5000-digit int", "deep nesting", "not UTF-8", "unknown dtype", "misspelt dtype"],
)
def test_a_bad_tolerance_declaration_names_the_file(
    tmp_path: Path, text: bytes, problem: str, cause: type | None
) -> None:
    path = tmp_path / "tol.json"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=problem) as info:
        TolerancePolicy.from_json(path)
    assert str(path) in str(info.value)
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)


def test_a_tolerance_declaration_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "tol.json"
    os.mkfifo(fifo)
    try:
        exc = _returns_within(10.0, lambda: TolerancePolicy.from_json(fifo))
    finally:
        _unblock(fifo)
    assert isinstance(exc, ValueError), exc
    assert str(fifo) in str(exc)
    assert "not a regular file" in str(exc)


def test_a_tolerance_entry_refuses_a_bool_and_a_non_string_pattern() -> None:
    with pytest.raises(ValueError, match="rtol"):
        ToleranceEntry(check="*", rtol=True, reason="r")
    with pytest.raises(ValueError, match="field"):
        ToleranceEntry(check="*", rtol=1e-3, reason="r", field=3)  # type: ignore[arg-type]


# ==================================================================================================
# The directory writer
# ==================================================================================================


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_writer_refuses_an_existing_file_and_touches_nothing(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("the user's file", encoding="utf-8")
    with pytest.raises(VectorFileError, match="exists and is not a directory") as info:
        write_vectors(target, "inputs", [golden["squared_distances/basic"]])
    assert str(target) in str(info.value)
    assert target.read_text(encoding="utf-8") == "the user's file"
    assert _listing(tmp_path) == ["notes.txt"]  # no hidden copy, no temporary folder


def test_the_writer_refuses_a_folder_that_is_not_a_vector_directory(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    target = tmp_path / "work"
    target.mkdir()
    (target / "thesis.tex").write_text("months of work", encoding="utf-8")
    with pytest.raises(VectorFileError, match="not a vector directory") as info:
        write_vectors(target, "inputs", [golden["squared_distances/basic"]])
    assert str(target) in str(info.value)
    assert _listing(target) == ["thesis.tex"]
    assert _listing(tmp_path) == ["work"]
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    with pytest.raises(VectorFileError, match="symbolic link"):
        write_vectors(link, "inputs", [golden["squared_distances/basic"]])


def test_the_writer_replaces_a_vector_directory_and_fills_an_empty_one(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    target = tmp_path / "inputs"
    write_vectors(target, "inputs", [golden["squared_distances/basic"]])
    write_vectors(target, "inputs", [golden["soft_assignments/basic"]])
    assert [e.case.check for e in read_vectors(target)] == ["soft_assignments/basic"]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_vectors(empty, "inputs", [golden["squared_distances/basic"]])
    assert [e.case.check for e in read_vectors(empty)] == ["squared_distances/basic"]
    assert _listing(tmp_path) == ["empty", "inputs"]


def test_a_failed_rename_leaves_the_previous_directory_in_place(
    tmp_path: Path, golden: dict[str, VectorEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "inputs"
    write_vectors(target, "inputs", [golden["squared_distances/basic"]])
    before = (target / "manifest.json").read_bytes()
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src).name.startswith(".inputs.tmp-"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        write_vectors(target, "inputs", [golden["soft_assignments/basic"]])
    monkeypatch.undo()
    assert (target / "manifest.json").read_bytes() == before
    assert [e.case.check for e in read_vectors(target)] == ["squared_distances/basic"]
    assert _listing(tmp_path) == ["inputs"]  # neither the new copy nor the moved-aside one is left


# ==================================================================================================
# The comparator: malformed outputs are one failed field
# ==================================================================================================


def test_a_correct_port_passes_every_operation_group(golden: dict[str, VectorEntry]) -> None:
    """The baseline of the planted failures below: the reference's own outputs pass."""
    for check in ("squared_distances/basic", "grow_decision/at_threshold_tie", "static_growth/near_tie"):
        assert _compare(golden[check], _port_outputs(golden[check])).status == "pass", check
    for check in ("trajectory/short_run", "trajectory/near_tie"):
        result = _compare(golden[check], _port_outputs(golden[check]))
        assert result.status == "pass", result.message


@pytest.mark.parametrize(
    ("check", "field", "bad", "label", "detail"),
    [
        ("mean_entropy/basic", "value", np.array([0.5]), "shape mismatch", "port shape (1,), reference shape ()"),
        (
            "squared_distances/basic",
            "D",
            np.zeros((2, 2)),
            "shape mismatch",
            "port shape (2, 2), reference shape (7, 4)",
        ),
        ("squared_distances/basic", "D", np.array("text"), "shape mismatch", "port dtype <U4, reference dtype float64"),
        (
            "grow_decision/at_threshold_tie",
            "state.last_growth_step",
            np.array(0.0),
            "dtype mismatch",
            "port dtype float64, reference dtype int64 (shape ())",
        ),
        (
            "grow_decision/at_threshold_tie",
            "state.heads",
            np.zeros((7, 3), dtype=np.int64),
            "shape mismatch",
            "port shape (7, 3), reference shape (2, 3)",
        ),
        ("squared_distances/basic", "D", np.full((7, 4), np.nan), "non-finite", "non-finite"),
        ("squared_distances/basic", "D", [[1.0], [2.0, 3.0]], "not an array", "not an array"),
    ],
    ids=["(1,) for ()", "wrong shape", "strings", "float for int", "int rows", "NaN", "ragged"],
)
def test_a_malformed_field_is_a_failed_field_naming_shape_and_dtype(
    golden: dict[str, VectorEntry], check: str, field: str, bad: object, label: str, detail: str
) -> None:
    entry = golden[check]
    actual: dict[str, object] = dict(_port_outputs(entry))
    assert field in actual
    actual[field] = bad
    result = _compare(entry, actual)
    assert result.status == "fail"
    failed = _failed(result)
    assert set(failed) == {field}, failed
    assert detail in failed[field]
    assert result.message.startswith(f"{field}: {label}: "), result.message


TRAJECTORY_DAMAGE: dict[str, tuple[str, Callable[[dict[str, np.ndarray]], None], str]] = {
    "flat events": ("events", lambda o: o.update(events=o["events"].reshape(-1)), "expected E×4 integer rows"),
    "3 columns": ("events", lambda o: o.update(events=o["events"][:, :3]), "expected E×4 integer rows"),
    "float events": ("events", lambda o: o.update(events=o["events"].astype(float)), "dtype float64"),
    "too few loss rows": ("losses", lambda o: o.update(losses=o["losses"][:10]), "shape (10, 3)"),
    "losses 1-D": ("losses", lambda o: o.update(losses=o["losses"].reshape(-1)), "shape (120,)"),
    "inf loss late": ("losses", lambda o: o["losses"].__setitem__((35, 0), np.inf), "non-finite"),
    "nan in final params": ("final.P", lambda o: o["final.P"].__setitem__((0, 0), np.nan), "non-finite"),
}


@pytest.mark.parametrize("check", ["trajectory/short_run", "trajectory/near_tie"])
@pytest.mark.parametrize("damage", sorted(TRAJECTORY_DAMAGE))
def test_a_malformed_trajectory_is_one_failed_field_also_past_a_near_tie(
    golden: dict[str, VectorEntry], check: str, damage: str
) -> None:
    """Step 35 and the final parameters lie past the near-tie's stop (step 20): not compared there,
    but still refused when they are not finite or not well-formed."""
    field, damage_fn, detail = TRAJECTORY_DAMAGE[damage]
    outputs = _port_outputs(golden[check])
    damage_fn(outputs)
    result = _compare(golden[check], outputs)
    assert result.status == "fail", result.note
    failed = _failed(result)
    assert set(failed) == {field}, failed
    assert detail in failed[field]


def test_extra_event_rows_past_the_near_tie_are_not_compared_but_must_be_rows(golden: dict[str, VectorEntry]) -> None:
    entry = golden["trajectory/near_tie"]
    outputs = _port_outputs(entry)
    extra = np.array([[30, 1, 7, -1], [40, 3, -1, 5]], dtype=np.int64)
    outputs["events"] = np.concatenate([outputs["events"], extra])
    result = _compare(entry, outputs)
    assert result.status == "pass", result.message  # another branch after the tie: by design
    assert result.note.startswith("stopped at the first near-tie, the check at step 20")
    outputs["events"] = np.concatenate([outputs["events"], np.array([[50, 1, 2]], dtype=np.int64)], axis=None)
    assert _compare(entry, outputs).status == "fail"


def test_a_static_growth_basis_is_checked_whole_even_where_a_near_tie_stops_the_values(
    golden: dict[str, VectorEntry],
) -> None:
    entry = golden["static_growth/near_tie"]
    outputs = _port_outputs(entry)
    outputs["lam_births"][-1] = np.nan  # the birth at the near-tie itself, whose value is not compared
    assert _failed(_compare(entry, outputs)) == {"lam_births": "1 non-finite entries (first at (2,): nan)"}
    outputs = _port_outputs(entry)
    outputs["Q_cap"] = outputs["Q_cap"].reshape(-1)
    failed = _failed(_compare(entry, outputs))
    assert set(failed) == {"Q_cap"}
    assert "shape (15,) dtype float64, expected d×m with d = 5" in failed["Q_cap"]
    outputs = _port_outputs(entry)
    outputs["lam_births"] = outputs["lam_births"][:, None]
    assert "expected one axis of m" in _failed(_compare(entry, outputs))["lam_births"]


def test_a_port_whose_outputs_cannot_be_compared_fails_that_check_only(golden: dict[str, VectorEntry]) -> None:
    class Hostile(Mapping[str, np.ndarray]):
        def __getitem__(self, key: str) -> np.ndarray:
            raise RuntimeError("a reader that breaks")

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("a reader that breaks")

        def __len__(self) -> int:
            return 1

    for check in ("squared_distances/basic", "static_growth/clear_gaps", "trajectory/short_run"):
        result = _compare(golden[check], Hostile())
        assert result.status == "fail"
        assert "RuntimeError: a reader that breaks" in result.message


def test_a_malformed_trajectory_on_disk_fails_one_check_and_the_rest_are_compared(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    """The whole comparison through the language-neutral reader: the trajectory's events written
    flat used to stop it with numpy's `cannot reshape`."""
    broken = _port_outputs(golden["trajectory/short_run"])
    broken["events"] = np.arange(7, dtype=np.int64)
    entries = [
        VectorEntry(golden["trajectory/short_run"].case, broken),
        VectorEntry(golden["squared_distances/basic"].case, _port_outputs(golden["squared_distances/basic"])),
    ]
    folder = write_vectors(tmp_path / "out", "outputs", entries)
    report = run_outputs(folder, only=["trajectory/short_run", "squared_distances/basic"])
    status = {r.check: r for r in report.results}
    assert status["squared_distances/basic"].status == "pass"
    bad = status["trajectory/short_run"]
    assert bad.status == "fail"
    assert bad.message.startswith("events: shape mismatch: port shape (7,) dtype int64, expected E×4 integer rows")


# ==================================================================================================
# The comparator: a missing field, and exactly the declared tolerance
# ==================================================================================================


def _one_case_per_operation(golden: dict[str, VectorEntry]) -> list[VectorEntry]:
    first: dict[str, VectorEntry] = {}
    for e in golden.values():
        first.setdefault(e.case.operation, e)
    assert sorted(first) == sorted(operation_names())
    return list(first.values())


def test_every_missing_field_fails_in_every_operation_group(golden: dict[str, VectorEntry]) -> None:
    entries = [*_one_case_per_operation(golden), golden["trajectory/near_tie"], golden["static_growth/near_tie"]]
    tried = 0
    for entry in entries:
        full = _port_outputs(entry)
        near_tie = entry.case.check == "trajectory/near_tie"
        for name in full:
            if near_tie and name.startswith("final."):
                continue  # past the near-tie the final parameters are not compared (docs/porting.md)
            actual = {k: v for k, v in full.items() if k != name}
            result = _compare(entry, actual)
            assert result.status == "fail", f"{entry.case.check} without {name} passed"
            assert _failed(result).get(name) == "missing from the port's outputs", (entry.case.check, name)
            tried += 1
    assert tried > 100


def _planted(b: np.ndarray, factor: float, rtol: float) -> np.ndarray:
    """``b`` with one entry moved so that the kit's scaled error is ``factor × rtol``."""
    a = np.array(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1.0)
    a.flat[0] += factor * rtol * scale
    return a


@pytest.mark.parametrize(
    ("check", "field"),
    [
        ("squared_distances/basic", "D"),
        ("layer_forward/one_head", "logits"),
        ("growth_statistics/three_heads_m2", "A_res"),
        ("trajectory/short_run", "losses"),
        ("trajectory/short_run", "final.P"),
        ("trajectory/near_tie", "losses"),
        ("static_growth/clear_gaps", "lam_births"),
    ],
)
def test_a_float_field_is_held_to_exactly_the_table_tolerance(
    golden: dict[str, VectorEntry], check: str, field: str
) -> None:
    """1.5 × the VALUE row fails, 0.5 × passes: a comparison 10× looser (or one that skipped the
    field) passes the first and fails this test; one 10× tighter fails the second."""
    assert VALUE_RTOL == 1e-12  # docs/tolerances.md: the float64 VALUE row
    entry = golden[check]
    for factor, status in ((1.5, "fail"), (0.5, "pass")):
        outputs = _port_outputs(entry)
        outputs[field] = _planted(outputs[field], factor, VALUE_RTOL)
        result = _compare(entry, outputs)
        assert result.status == status, (factor, result.message)
        (got,) = [f for f in result.fields if f.field == field]
        assert got.tolerance == VALUE_RTOL
        assert got.ratio == pytest.approx(factor, rel=1e-3)


def test_a_declared_tolerance_is_held_exactly_and_only_where_it_matches(golden: dict[str, VectorEntry]) -> None:
    entry = golden["grad_free_energy/basic"]
    declared = 1e-6
    policy = TolerancePolicy(entries=(ToleranceEntry("grad_free_energy/*", declared, "a measured bound", "grad_P"),))
    for factor, status in ((1.5, "fail"), (0.5, "pass")):
        outputs = _port_outputs(entry)
        outputs["grad_P"] = _planted(outputs["grad_P"], factor, declared)
        result = _compare(entry, outputs, policy)
        assert result.status == status, (factor, result.message)
        (got,) = [f for f in result.fields if f.field == "grad_P"]
        assert (got.tolerance, got.tolerance_reason) == (declared, "declared: a measured bound")
        assert got.ratio == pytest.approx(factor, rel=1e-3)
    # the other field keeps the table row: an error the declaration would allow fails there
    outputs = _port_outputs(entry)
    outputs["grad_Y"] = _planted(outputs["grad_Y"], 0.5, declared)
    assert set(_failed(_compare(entry, outputs, policy))) == {"grad_Y"}


def test_an_integer_field_is_exact(golden: dict[str, VectorEntry]) -> None:
    """Every entry of every integer field, one off by one: each is a failure of that field alone."""
    entry = golden["prune_decision/patience_counts"]
    planted = 0
    for name, value in _port_outputs(entry).items():
        if value.dtype.kind != "i":
            continue
        for i in range(value.size):
            outputs = _port_outputs(entry)
            outputs[name].flat[i] += 1
            assert set(_failed(_compare(entry, outputs))) == {name}, (name, i)
            planted += 1
    assert planted >= 5
