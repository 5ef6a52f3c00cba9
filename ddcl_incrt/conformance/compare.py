"""The checks: one port output against the reference's, field by field, with declared tolerances.

* A float field is compared by its scaled error ``max|a − b| / max(max|b|, 1)`` (relative above 1,
  absolute below) against the VALUE row of :mod:`reference.tolerances` for the port's dtype, or a
  declared entry of the port's :class:`TolerancePolicy`; the report gives ``error / tolerance``.
* An integer field (a count, an id, a step, a decision's state) is compared exactly. A decision whose
  statistic is an *input* of the case (``grow_decision`` given ``λ_max``) has no rounding freedom,
  so it is exact even at a tie; where the port computes the statistic itself (``static_growth``,
  ``trajectory``) a disagreement is accepted only at a declared near-tie (the statistic within the
  DECISION row of the port's dtype of its threshold), and a trajectory comparison stops at the first
  near-tie and says so (SPEC §6).
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np

from ddcl_incrt.conformance.cases import Case
from reference.tolerances import CheckKind, Tolerance, tolerance

Status: TypeAlias = Literal["pass", "fail", "error", "skip", "xfail", "xpass", "not covered"]
FAILING: frozenset[str] = frozenset({"fail", "error", "xpass"})

REFERENCE_ONLY_PREFIX = "ref."  # expected fields the port does not write (e.g. the reference's decision statistics)


@dataclass(frozen=True)
class ToleranceEntry:
    """A declared tolerance: checks matching ``check`` (fnmatch pattern), fields matching ``field``."""

    check: str
    rtol: float
    reason: str
    field: str = "*"

    def __post_init__(self) -> None:
        if not isinstance(self.check, str) or not self.check:
            raise ValueError("ToleranceEntry.check: expected a non-empty pattern")
        if not (isinstance(self.rtol, (int, float)) and math.isfinite(self.rtol) and self.rtol > 0.0):
            raise ValueError(f"ToleranceEntry.rtol: expected a finite number > 0, got {self.rtol!r}")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError(f"ToleranceEntry.reason: every declared tolerance needs a reason (check {self.check!r})")

    def matches(self, check: str, field_name: str) -> bool:
        return fnmatch.fnmatchcase(check, self.check) and fnmatch.fnmatchcase(field_name, self.field)


@dataclass(frozen=True)
class TolerancePolicy:
    """A port's tolerances, as data: its ``dtype`` picks the VALUE row and the DECISION band of the
    tolerance table; ``entries`` (first match wins) replace the VALUE row where declared."""

    dtype: str = "float64"
    entries: tuple[ToleranceEntry, ...] = ()
    source: str = "default"

    def __post_init__(self) -> None:
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"TolerancePolicy.dtype: expected 'float64' or 'float32', got {self.dtype!r}")

    def value(self, check: str, field_name: str) -> tuple[float, str]:
        for e in self.entries:
            if e.matches(check, field_name):
                return float(e.rtol), f"declared: {e.reason}"
        row = tolerance(self.dtype, CheckKind.VALUE)
        return row.rtol, f"table {self.dtype} VALUE: {row.reason}"

    @property
    def decision_band(self) -> Tolerance:
        return tolerance(self.dtype, CheckKind.DECISION)

    def base_rows(self) -> dict[str, Tolerance]:
        """The table rows every comparison of this policy starts from (VALUE, and DECISION for near-ties)."""
        return {"VALUE": tolerance(self.dtype, CheckKind.VALUE), "DECISION": self.decision_band}

    def to_json(self) -> dict[str, object]:
        return {
            "dtype": self.dtype,
            "table_rows": {
                k: {"rtol": t.rtol, "atol": t.atol, "reason": t.reason} for k, t in self.base_rows().items()
            },
            "entries": [{"check": e.check, "field": e.field, "rtol": e.rtol, "reason": e.reason} for e in self.entries],
        }

    @staticmethod
    def from_json(path: str | Path) -> TolerancePolicy:
        """Read a declaration file ``{"dtype": ..., "entries": [{"check", "field"?, "rtol", "reason"}]}``."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: not a readable JSON tolerance declaration ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a JSON object with 'dtype' and 'entries'")
        entries = data.get("entries", [])
        if not isinstance(entries, list):
            raise ValueError(f"{p}: field 'entries' must be a list")
        out = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or not {"check", "rtol", "reason"} <= set(e):
                raise ValueError(f"{p}: field 'entries[{i}]' needs 'check', 'rtol' and 'reason'")
            try:
                out.append(
                    ToleranceEntry(check=e["check"], rtol=e["rtol"], reason=e["reason"], field=e.get("field", "*"))
                )
            except ValueError as exc:
                raise ValueError(f"{p}: field 'entries[{i}]': {exc}") from None
        return TolerancePolicy(dtype=str(data.get("dtype", "float64")), entries=tuple(out), source=str(p))


@dataclass(frozen=True)
class FieldResult:
    """One compared field: its error, the tolerance it was held to and ``ratio = error / tolerance``
    (``inf`` for a discrete mismatch, a missing field or a wrong shape)."""

    field: str
    error: float
    tolerance: float
    ratio: float
    detail: str = ""
    tolerance_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. ``note`` says what was not compared and why (a near-tie)."""

    check: str
    operation: str
    status: Status
    fields: tuple[FieldResult, ...] = ()
    message: str = ""
    note: str = ""
    repro: str = ""
    case_note: str = ""

    @property
    def worst(self) -> FieldResult | None:
        return max(self.fields, key=lambda f: f.ratio, default=None)


@dataclass
class _Fields:
    check: str
    policy: TolerancePolicy
    items: list[FieldResult] = field(default_factory=list)

    def value(self, name: str, actual: np.ndarray, expected: np.ndarray) -> None:
        tol, reason = self.policy.value(self.check, name)
        a, b = np.asarray(actual), np.asarray(expected)
        if a.shape != b.shape:
            self.items.append(
                FieldResult(name, math.inf, tol, math.inf, f"shape {a.shape}, reference {b.shape}", reason)
            )
            return
        if not np.all(np.isfinite(a)):
            self.items.append(FieldResult(name, math.inf, tol, math.inf, "non-finite entries", reason))
            return
        err = float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1.0))
        where = ""
        if a.size and err > tol:
            idx = np.unravel_index(int(np.argmax(np.abs(a - b))), a.shape)
            where = f"worst at {tuple(int(i) for i in idx)}: {float(a[idx])!r} vs reference {float(b[idx])!r}"
        self.items.append(FieldResult(name, err, tol, err / tol, where, reason))

    def exact(self, name: str, actual: np.ndarray, expected: np.ndarray) -> None:
        a, b = np.asarray(actual), np.asarray(expected)
        same = a.shape == b.shape and bool(np.array_equal(a, b))
        detail = "" if same else f"{a.tolist()} vs reference {b.tolist()}"
        self.items.append(FieldResult(name, 0.0 if same else math.inf, 0.0, 0.0 if same else math.inf, detail, "exact"))

    def discrete(self, name: str, ok: bool, detail: str) -> None:
        self.items.append(FieldResult(name, 0.0 if ok else math.inf, 0.0, 0.0 if ok else math.inf, detail, "exact"))


def _is_int(a: np.ndarray) -> bool:
    return bool(np.issubdtype(np.asarray(a).dtype, np.integer) or np.asarray(a).dtype == np.bool_)


def _generic(fr: _Fields, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> None:
    wanted = [k for k in expected if not k.startswith(REFERENCE_ONLY_PREFIX)]
    for name in wanted:
        if name not in actual:
            fr.discrete(name, False, "missing from the port's outputs")
        elif _is_int(expected[name]):
            fr.exact(name, actual[name], expected[name])
        else:
            fr.value(name, actual[name], expected[name])
    for name in sorted(set(actual) - set(wanted)):
        fr.discrete(name, False, "unexpected output (the reference has no such field)")


def _static_growth(
    fr: _Fields, case: Case, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]
) -> str:
    A = case.array("A")
    theta = float(case.scalar("theta"))
    band = fr.policy.decision_band
    lam = np.linalg.eigvalsh(A)[::-1]
    clear = int(sum(1 for v in lam if v > theta and not band.allows(float(v), theta)))
    possible = int(sum(1 for v in lam if v > theta or band.allows(float(v), theta)))
    for name in ("Q_cap", "lam_births"):
        if name not in actual:
            fr.discrete(name, False, "missing from the port's outputs")
            return ""
    Q, births = np.asarray(actual["Q_cap"]), np.asarray(actual["lam_births"]).reshape(-1)
    Q_ref, births_ref = expected["Q_cap"], expected["lam_births"]
    m, m_ref = Q.shape[1] if Q.ndim == 2 else -1, Q_ref.shape[1]
    note = ""
    if clear < possible:
        note = (
            f"near-tie: {possible - clear} eigenvalue(s) within the {fr.policy.dtype} DECISION band of θ; the count "
            f"is accepted in [{clear}, {possible}] and births, span and directions are compared for the first {clear}"
        )
        fr.discrete("count", clear <= m <= possible, f"m = {m}, accepted [{clear}, {possible}]")
        k = clear
    else:
        fr.discrete("count", m == m_ref, f"m = {m}, reference m* = {m_ref}")
        k = m_ref
    if Q.ndim != 2 or Q.shape[0] != A.shape[0] or births.shape[0] != max(m, 0) or m < k:
        fr.discrete("shapes", False, f"Q_cap {Q.shape}, lam_births {births.shape}: cannot compare births")
        return note
    fr.value("orthonormality", Q.T @ Q - np.eye(m), np.zeros((m, m)))
    fr.value("lam_births", births[:k], births_ref[:k])
    fr.value("span", Q[:, :k] @ Q[:, :k].T, Q_ref[:, :k] @ Q_ref[:, :k].T)
    if bool(case.scalar("directions_defined")):
        signs = np.sign(np.sum(Q[:, :k] * Q_ref[:, :k], axis=0))
        signs[signs == 0] = 1.0
        fr.value("directions (up to sign)", Q[:, :k] * signs[None, :], Q_ref[:, :k])
    return note


def _trajectory(fr: _Fields, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> str:
    band = fr.policy.decision_band
    pairs = expected["ref.decision_pairs"]
    ties = [int(s) for s, stat, thr, _ in pairs.tolist() if band.allows(stat, thr)]
    stop = min(ties) if ties else None
    note = ""
    for name in ("losses", "events"):
        if name not in actual:
            fr.discrete(name, False, "missing from the port's outputs")
            return note
    ev, ev_ref = np.asarray(actual["events"]).reshape(-1, 4), expected["events"]
    losses, losses_ref = np.asarray(actual["losses"]), expected["losses"]
    if stop is not None:
        row = next(r for r in pairs.tolist() if int(r[0]) == stop and band.allows(r[1], r[2]))
        note = (
            f"stopped at the first near-tie, the check at step {stop} (statistic {row[1]!r} vs threshold "
            f"{row[2]!r}, within the {fr.policy.dtype} DECISION band): events before it, losses up to it; "
            "final parameters not compared"
        )
        fr.exact("events", ev[ev[:, 0] < stop], ev_ref[ev_ref[:, 0] < stop])
        if losses.shape[0] < stop:
            fr.discrete("losses", False, f"{losses.shape[0]} steps reported, {stop} needed")
        else:
            fr.value("losses", losses[:stop], losses_ref[:stop])
        return note
    fr.exact("events", ev, ev_ref)
    fr.value("losses", losses, losses_ref)
    finals = {k: v for k, v in expected.items() if k.startswith("final.")}
    _generic(fr, {k: v for k, v in actual.items() if k.startswith("final.")}, finals)
    return note


def compare_case(
    case: Case,
    actual: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    policy: TolerancePolicy,
) -> CheckResult:
    """The check ``case.check``: the port's ``actual`` outputs against the reference's ``expected``."""
    fr = _Fields(case.check, policy)
    note = ""
    if case.operation == "static_growth":
        note = _static_growth(fr, case, actual, expected)
    elif case.operation == "trajectory":
        note = _trajectory(fr, actual, expected)
    else:
        _generic(fr, actual, expected)
    bad = [f for f in fr.items if not f.ok]
    status: Status = "fail" if bad else "pass"
    message = "; ".join(f"{f.field}: {_ratio(f)} {f.detail}".strip() for f in bad)
    return CheckResult(case.check, case.operation, status, tuple(fr.items), message, note, case_note=case.note)


def _ratio(f: FieldResult) -> str:
    if math.isinf(f.ratio):
        return "mismatch"
    return f"error {f.error:.3g} = {f.ratio:.3g} × tolerance {f.tolerance:.3g}"


__all__ = [
    "FAILING",
    "REFERENCE_ONLY_PREFIX",
    "CheckResult",
    "FieldResult",
    "Status",
    "ToleranceEntry",
    "TolerancePolicy",
    "compare_case",
]
