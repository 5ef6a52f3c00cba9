"""The run record's file: an atomic save that a failed write cannot damage, and a load that checks
every field, alone and against the others (the logged schedule, the architecture against the events,
the thresholds against the calibration), naming the file and the field.

The property test takes the record's path from a fixture, never the record, so that a failing
example's report stays short and shows its cause."""

from __future__ import annotations

import copy
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _small_run import small_run
from hypothesis import given, settings
from hypothesis import strategies as st

from training import files as files
from training.record import RecordFormatError, RunRecord


@pytest.fixture(scope="module")
def record() -> RunRecord:
    return small_run()


@pytest.fixture(scope="module")
def data(record: RunRecord) -> dict[str, Any]:
    return json.loads(record.to_json())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def record_file(record: RunRecord, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record.save(tmp_path_factory.mktemp("record") / "record.json")


def test_the_round_trip_is_exact(record: RunRecord, tmp_path: Path) -> None:
    path = record.save(tmp_path / "record.json")
    assert RunRecord.load(path).to_json() == record.to_json()
    assert path.stat().st_mode & 0o044 == 0o044 & ~_umask()  # readable by others (mkstemp gave 0600)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_write_leaves_the_previous_record_and_no_temporary_file(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 1: a full disk mid-write (ENOSPC from the flush to disk) must not destroy the record."""
    path = record.save(tmp_path / "record.json")
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        record.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_write_atomic_refuses_text(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="data"):
        files.write_atomic(tmp_path / "x", "text")  # type: ignore[arg-type]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is _DELETE:
            node.pop(int(last) if isinstance(node, list) else last)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


_DELETE = object()


def _reverse(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d[path].reverse()

    return edit


# Finding 2, case by case: (what, edit, the field the error must name).
CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("NaN in Q_cap", _set("Q_cap.0.0", float("nan")), "Q_cap"),
    ("negative shape", _set("Q_cap_shape.0", -1), "Q_cap_shape"),
    ("string for a float", _set("growth_config.theta", "abc"), "growth_config.theta"),
    ("float head count", _set("architecture.n_heads", 1.0), "architecture.n_heads"),
    ("float step", _set("checks.0.step", 10.0), "checks[0].step"),
    ("float prototype id", _set("final_params.prototype_ids.0", 0.0), "prototype_ids[0]"),
    ("accuracy above 1", _set("evaluations.0.test_accuracy", 1.5), "evaluations[0]"),
    ("layer d vs weights", _set("layer_config.d", 6), "final_params"),
    ("unknown key", _set("surprise", 1), "surprise"),
    ("unknown nested key", _set("train_config.surprise", 1), "train_config"),
    ("missing key", _set("checks", _DELETE), "checks"),
    ("missing nested key", _set("growth_config.theta", _DELETE), "growth_config"),
    ("bool for an int", _set("train_config.steps", True), "train_config.steps"),
    ("null for a float", _set("checks.1.lam_max", None), "checks[1].lam_max"),
    ("unknown event kind", _set("events.0.kind", "explosion"), "events[0].kind"),
    ("ragged weights", _set("final_params.arrays.P.0", [1.0]), "final_params.arrays.P"),
    ("string in weights", _set("final_params.arrays.W_c.0.0", "x"), "final_params.arrays.W_c"),
    ("architecture vs weights", _set("architecture.n_prototypes", 99), "architecture.n_prototypes"),
    ("a loss too few", _set("losses.L.0", _DELETE), "losses.L"),
    ("edited summary", _set("summary.D1.count", 0), "summary"),
    ("event step past the run", _set("events.0.step", 10**6), "events[0].step"),
    ("negative wall time", _set("wall_time_s", -1.0), "wall_time_s"),
    ("negative norm", _set("calibration_norms", [-1.0]), "calibration_norms[0]"),
    ("invariant value a string", _set("invariants.0.value", "0"), "invariants[0].value"),
    ("failed hypotheses a string", _set("invariants.0.failed_hypotheses", "T_P"), "invariants[0].failed_hypotheses"),
    ("a hypothesis excused after the fact", _set("invariants.0.failed_hypotheses", ["q_row_stochastic"]), "summary"),
    ("optimizer unknown", _set("train_config.optimizer", "rmsprop"), "train_config.optimizer"),
    # fields against each other (the small run: checks every 10 steps, evaluations at 30, 60, 90, 100)
    ("no evaluation", _set("evaluations", []), "evaluations"),
    ("no final evaluation", _set("evaluations.3", _DELETE), "evaluations"),
    ("an evaluation off the schedule", _set("evaluations.0.step", 31), "evaluations"),
    ("a check missing", _set("checks.4", _DELETE), "checks"),
    ("events out of order", _reverse("events"), "events[1].step"),
    ("births miscounted", _set("architecture.births", 5), "architecture.births"),
    ("head prunes miscounted", _set("architecture.head_prunes", 0), "architecture.head_prunes"),
    ("captured rank vs births", _set("architecture.captured_rank", 0), "architecture.captured_rank"),
    ("θ edited", _set("growth_config.theta", 0.07), "growth_config.theta"),
    ("φ_g edited", _set("growth_config.phi_g", 1.0), "growth_config.phi_g"),
    ("norms although θ is given", _set("calibration_norms", [1.0]), "calibration_norms"),
    ("NaN norm", _set("calibration_norms", [float("nan")]), "calibration_norms[0]"),
    ("a later version", _set("version", 4), "version"),
    ("version as a string", _set("version", "1"), "version"),
    ("another format", _set("format", "ddcl-incrt-checkpoint"), "format"),
]


def test_a_record_says_its_format_and_version_and_one_written_before_versions_still_loads(
    record: RunRecord, data: dict[str, Any], tmp_path: Path
) -> None:
    assert (data["format"], data["version"]) == ("ddcl-incrt-run-record", 3)
    unversioned = {k: v for k, v in data.items() if k not in ("format", "version")}
    path = tmp_path / "before-versions.json"
    path.write_text(json.dumps(unversioned), encoding="utf-8")
    assert RunRecord.load(path).to_dict() == record.to_dict()
    # version 1: no vacuous_at on the invariants, and a summary of another layout (derived, not compared)
    v1 = {**data, "version": 1, "summary": {"G1": {"count": 1, "violations": 0, "min_margin": 0.5}}}
    v1["invariants"] = [
        {k: v for k, v in r.items() if k not in ("vacuous_at", "failed_hypotheses")} for r in data["invariants"]
    ]
    path.write_text(json.dumps(v1), encoding="utf-8")
    loaded = RunRecord.load(path)
    assert len(loaded.invariants) == len(record.invariants)
    assert all(r.result.vacuous_at == float("inf") for r in loaded.invariants)
    # versions 1 and 2: hypotheses not evaluated, so no check is promised or excused
    assert all(r.failed_hypotheses is None and r.promised is None for r in loaded.invariants)
    v2 = {k: v for k, v in data.items() if k != "summary"}
    v2["version"] = 2
    v2["invariants"] = [{k: v for k, v in r.items() if k != "failed_hypotheses"} for r in data["invariants"]]
    path.write_text(json.dumps(v2), encoding="utf-8")
    loaded = RunRecord.load(path)
    assert [r.result for r in loaded.invariants] == [r.result for r in record.invariants]
    assert {s.unwatched for s in loaded.summary().values()} == {s.count for s in loaded.summary().values()}


def test_the_small_run_has_the_events_and_evaluations_the_table_edits(data: dict[str, Any]) -> None:
    assert [e["step"] for e in data["evaluations"]] == [30, 60, 90, 100]
    assert len({e["step"] for e in data["events"]}) > 1  # reversing the events puts them out of order
    assert data["architecture"]["head_prunes"] > 0


@pytest.mark.parametrize(("what", "edit", "field"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_an_ill_typed_or_inconsistent_record_is_refused_naming_the_field(
    data: dict[str, Any], tmp_path: Path, what: str, edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    bad = copy.deepcopy(data)
    edit(bad)
    path = tmp_path / "record.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(RecordFormatError) as excinfo:
        RunRecord.load(path)
    message = str(excinfo.value)
    assert str(path) in message, what
    assert field in message, f"{what}: {message}"


def test_truncated_and_non_json_files_are_refused_naming_the_file(record: RunRecord, tmp_path: Path) -> None:
    text = record.to_json()
    for n in (0, 1, len(text) // 2, len(text) - 1):
        path = tmp_path / f"cut{n}.json"
        path.write_text(text[:n], encoding="utf-8")
        with pytest.raises(RecordFormatError, match=f"cut{n}"):
            RunRecord.load(path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RecordFormatError, match="binary"):
        RunRecord.load(binary)
    not_object = tmp_path / "list.json"
    not_object.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RecordFormatError, match="expected an object"):
        RunRecord.load(not_object)


@pytest.mark.parametrize("key", ["dataset", "theta"])
def test_a_key_given_twice_is_refused_not_read_as_its_last_value(record: RunRecord, tmp_path: Path, key: str) -> None:
    """json keeps the last of two equal keys silently: an edited record could hide a value (an outside
    tester's finding). At the top level and inside a nested object."""
    text = record.to_json()
    first = text.index(f'"{key}": ')
    twice = tmp_path / "twice.json"
    twice.write_text(text[:first] + f'"{key}": 1, ' + text[first:], encoding="utf-8")
    with pytest.raises(RecordFormatError, match=rf"twice\.json: the key '{key}' appears twice in one JSON object"):
        RunRecord.load(twice)
    once = tmp_path / "once.json"
    once.write_text(text, encoding="utf-8")
    assert RunRecord.load(once).to_json() == text


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(node, list) and node:
        return [p for i, v in enumerate(node[:3]) for p in _leaves(v, (*path, i))]
    return [path]


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(pick=st.integers(0, 10**6), value=JSON_VALUES)
def test_fuzzed_fields_load_or_are_refused_naming_the_file(record_file: Path, pick: int, value: Any) -> None:
    """Any one field of a record replaced by any JSON value: the record loads (the value was valid
    there) or is refused with a RecordFormatError naming the file — never another exception, which
    would propagate and be reported with its traceback."""
    doc = json.loads(record_file.read_text(encoding="utf-8"))
    leaves = _leaves(doc)
    path = leaves[pick % len(leaves)]
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    if path:
        node[path[-1]] = value
    message = ""
    try:
        RunRecord.from_dict(doc, source="fuzzed.json")
    except RecordFormatError as exc:
        message = str(exc)
    assert not message or "fuzzed.json" in message, message
