"""The run record's values the product never writes, refused by the loader naming the field: a growth
check's ``λ_max``, spectrum, norms or thresholds that are NaN or infinite, a negative norm, a count
below its minimum, a map with the wrong number of ids, an impossible mass; an event whose fields do
not fit its kind (a birth naming a prototype, a prototype prune naming none).

And the other side: what the product does write still loads — the records of real runs, a head prune
without ``lam_max`` (the author's rule has no hysteresis), near-ties naming a head, a prototype or
neither. Non-finite losses are not refused: the accelerated engine records a step's losses without
checking them (a float32 loss can overflow with finite parameters, docs/tolerances.md)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from _small_run import RUN, small_run

from training.record import RecordFormatError, RunRecord

NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return json.loads(small_run().to_json())  # type: ignore[no-any-return]


def _load(d: dict[str, Any]) -> RunRecord:
    return RunRecord.from_json(json.dumps(d), source="rec.json")


def _first(d: dict[str, Any], kind: str) -> int:
    return next(i for i, e in enumerate(d["events"]) if e["kind"] == kind)


def _event(kind: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["events"][_first(d, kind)].update(fields)

    return edit


def _check(i: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["checks"][i].update(fields)

    return edit


def _check_item(i: int, key: str, j: int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["checks"][i][key][j] = value

    return edit


def _first_map_value(i: int, key: str, value: float) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["checks"][i][key][0][1] = value

    return edit


# (what, edit, the text the error must start with after the source)
REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("NaN lam_max", _check(0, lam_max=NAN), "checks[0].lam_max"),
    ("infinite lam_max", _check(0, lam_max=INF), "checks[0].lam_max"),
    ("-inf lam_min", _check(1, lam_min=-INF), "checks[1].lam_min"),
    ("NaN fro", _check(0, fro=NAN), "checks[0].fro"),
    ("negative fro", _check(0, fro=-1.0), "checks[0].fro"),
    ("NaN in the spectrum", _check_item(0, "spectrum", 2, NAN), "checks[0].spectrum[2]"),
    ("inf in the spectrum", _check_item(0, "spectrum", 0, INF), "checks[0].spectrum[0]"),
    ("infinite theta", _check(0, theta=INF), "checks[0].theta"),
    ("negative phi_g", _check(0, phi_g=-1.0), "checks[0].phi_g"),
    ("zero theta", _check(0, theta=0.0), "checks[0].theta"),
    ("negative head strength", _first_map_value(0, "head_strength", -1.0), "checks[0].head_strength (id"),
    ("NaN head strength", _first_map_value(0, "head_strength", NAN), "checks[0].head_strength (id"),
    ("zero temperature", _first_map_value(0, "tau", 0.0), "checks[0].tau (id"),
    ("mass above 1", _first_map_value(0, "mass", 1.5), "checks[0].mass (id"),
    ("negative mass", _first_map_value(0, "mass", -0.5), "checks[0].mass (id"),
    ("NaN mass", _first_map_value(0, "mass", NAN), "checks[0].mass (id"),
    ("no masses", _check(1, mass=[]), "checks[1].mass"),
    ("negative prototype count", _check(1, n_prototypes=-1), "checks[1].n_prototypes"),
    ("no prototype", _check(1, n_prototypes=0), "checks[1].n_prototypes"),
    ("negative head count", _check(1, n_heads=-1), "checks[1].n_heads"),
    ("negative rank", _check(1, rank=-1), "checks[1].rank"),
    ("negative births", _check(1, births=-1), "checks[1].births"),
    ("a birth naming a prototype", _event("birth", prototype_id=7), "events[0].prototype_id"),
    ("a birth naming no head", _event("birth", head_id=None), "events[0].head_id"),
    ("a birth without u_plus", _event("birth", u_plus=None), "events[0].u_plus"),
    ("a birth without lam_birth", _event("birth", lam_birth=None), "events[0].lam_birth"),
    ("a birth with NaN statistic", _event("birth", statistic=NAN), "events[0].statistic"),
    ("a birth with inf margin", _event("birth", margin=INF), "events[0].margin"),
    ("a birth decided by a prune", _event("birth", decision="head_prune"), "events[0].decision"),
    ("a head prune naming a prototype", _event("head_prune", prototype_id=0), ".prototype_id"),
    ("a head prune with lam_birth", _event("head_prune", lam_birth=0.5), ".lam_birth"),
    ("a head prune with NaN lam_max", _event("head_prune", lam_max=NAN), ".lam_max"),
    ("a prototype prune naming none", _event("prototype_prune", prototype_id=None), ".prototype_id"),
    ("a prototype prune naming a head", _event("prototype_prune", head_id=0), ".head_id"),
    ("a prototype prune with u_plus", _event("prototype_prune", u_plus=[1.0, 0.0, 0.0, 0.0, 0.0]), ".u_plus"),
    ("a negative prototype id", _event("prototype_prune", prototype_id=-1), ".prototype_id"),
]


@pytest.mark.parametrize(("what", "edit", "field"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_value_the_product_never_writes_is_refused_naming_the_field(
    data: dict[str, Any], what: str, edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    bad = copy.deepcopy(data)
    edit(bad)
    with pytest.raises(RecordFormatError) as excinfo:
        _load(bad)
    message = str(excinfo.value)
    assert message.startswith("rec.json: "), what
    assert field in message, f"{what}: {message}"
    assert "\n" not in message


def test_the_small_run_has_every_kind_of_event_the_table_edits(data: dict[str, Any]) -> None:
    kinds = {e["kind"] for e in data["events"]}
    assert {"birth", "head_prune", "prototype_prune"} <= kinds
    assert data["events"][0]["kind"] == "birth"


def test_what_the_product_writes_still_loads(data: dict[str, Any]) -> None:
    """A head prune without lam_max (the author's rule), near-ties naming a head, a prototype or
    neither, and non-finite losses (not checked by the accelerated engine) all load."""
    d = copy.deepcopy(data)
    d["events"][_first(d, "head_prune")]["lam_max"] = None
    birth = d["events"][0]
    theta = birth["threshold"]
    ties = [
        {"kind": "near_tie", "decision": "grow", "head_id": None, "prototype_id": None},
        {"kind": "near_tie", "decision": "head_prune", "head_id": 0, "prototype_id": None},
        {"kind": "near_tie", "decision": "prototype_prune", "head_id": None, "prototype_id": 1},
        {"kind": "near_tie", "decision": "grow_lambda_min", "head_id": None, "prototype_id": None},
    ]
    common = {"step": birth["step"], "statistic": theta, "threshold": theta, "margin": 0.0}
    d["events"][:0] = [{**common, **tie, "u_plus": None, "lam_birth": None, "lam_max": None} for tie in ties]
    d["losses"]["L"][0] = INF
    d["losses"]["F"][1] = NAN
    record = _load(d)
    assert sum(1 for e in record.events if e.kind.value == "near_tie") == len(ties)


def test_a_run_with_phi_g_zero_loads() -> None:
    """φ_g = 0 (no head ever pruned) is a valid setting: its record, which carries φ_g in every check,
    loads again."""
    record = small_run(replace(RUN, phi_g=0.0, steps=20))
    assert record.checks, "the run made no check"
    assert all(c.phi_g == 0.0 for c in record.checks)
    assert json.loads(RunRecord.from_json(record.to_json()).to_json()) == json.loads(record.to_json())


def test_the_round_trip_is_unchanged(data: dict[str, Any]) -> None:
    assert json.loads(_load(copy.deepcopy(data)).to_json()) == data
