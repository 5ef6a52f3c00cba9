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
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np

from ddcl_incrt.conformance.cases import TRAJECTORY_CHECK_FIELDS, Case
from reference.tolerances import CheckKind, Tolerance, tolerance
from training.files import parse_json, read_regular_file

Status: TypeAlias = Literal["pass", "fail", "error", "skip", "xfail", "xpass", "not covered"]
FAILING: frozenset[str] = frozenset({"fail", "error", "xpass"})

REFERENCE_ONLY_PREFIX = "ref."  # expected fields the port does not write (e.g. the reference's decision statistics)


def scaled_error(a: np.ndarray, b: np.ndarray) -> float:
    """The kit's float comparison of ``a`` against the reference ``b``: ``max|a − b| / max(max|b|, 1)``
    (relative above 1, absolute below)."""
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1.0))


def constant_factor(a: np.ndarray, b: np.ndarray, rtol: float) -> float | None:
    """The factor ``c`` when the port's ``a`` is ``c·b`` on every entry, each ratio within ``rtol``
    (the field's VALUE tolerance: the rounding a correct port may carry) of ``c`` and ``a = 0`` wherever
    ``b = 0``; None otherwise (the error is not one factor: a report then shows only the worst entry).
    A normalisation or a temperature factor shows itself this way (``V/K``, ``F/T_P``, ``n/(n − 1)``)."""
    zero = b == 0
    if bool(np.all(zero)) or bool(np.any(a[zero] != 0)):
        return None
    with np.errstate(all="ignore"):
        r = a[~zero] / b[~zero]
    if not bool(np.all(np.isfinite(r))):
        return None
    c = float(np.median(r))
    if c == 0.0 or not float(np.max(np.abs(r - c))) <= rtol * abs(c):
        return None
    return c


def first_near_tie(pairs: np.ndarray, band: Tolerance) -> int | None:
    """The step of the first check whose decision statistic lies within ``band`` of its threshold, in a
    trajectory's ``ref.decision_pairs`` rows (step, statistic, threshold, kind); None if there is none.
    Past it another machine (or a faithful port) may take the other branch."""
    ties = [int(r[0]) for r in pairs.tolist() if band.allows(r[1], r[2])]
    return min(ties) if ties else None


def _positive_finite(value: object) -> bool:
    """A real number (``True`` is not one, whatever Python says) that is finite and positive."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return False
    return math.isfinite(number) and number > 0.0


@dataclass(frozen=True)
class ToleranceEntry:
    """A declared tolerance: checks matching ``check`` (fnmatch pattern), fields matching ``field``."""

    check: str
    rtol: float
    reason: str
    field: str = "*"

    def __post_init__(self) -> None:
        if not isinstance(self.check, str) or not self.check:
            raise ValueError(f"ToleranceEntry.check: expected a non-empty pattern (a string), got {self.check!r}")
        if not isinstance(self.field, str) or not self.field:
            raise ValueError(f"ToleranceEntry.field: expected a non-empty pattern (a string), got {self.field!r}")
        if not _positive_finite(self.rtol):
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
        """Read a declaration file ``{"dtype": ..., "entries": [{"check", "field"?, "rtol", "reason"}]}``;
        every problem is a ``ValueError`` naming the file and the field."""
        if not isinstance(path, str | os.PathLike):
            raise ValueError(f"tolerances: expected the path of a JSON declaration, got {type(path).__name__}")
        p = Path(path)
        try:
            data = parse_json(read_regular_file(p))
        except (OSError, ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8 and Python's limits
            raise ValueError(f"{p}: not a readable JSON tolerance declaration ({type(exc).__name__}: {exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a JSON object with 'dtype' and 'entries'")
        unknown = sorted(set(data) - {"dtype", "entries"})
        if unknown:  # a misspelt "dtype" would otherwise silently mean float64
            raise ValueError(f"{p}: unknown field(s) {unknown}; a declaration has 'dtype' and 'entries'")
        dtype = data.get("dtype", "float64")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"{p}: field 'dtype': expected 'float64' or 'float32', got {dtype!r}")
        entries = data.get("entries", [])
        if not isinstance(entries, list):
            raise ValueError(f"{p}: field 'entries' must be a list")
        out = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or not {"check", "rtol", "reason"} <= set(e):
                raise ValueError(f"{p}: field 'entries[{i}]' needs 'check', 'rtol' and 'reason'")
            extra = sorted(set(e) - {"check", "field", "rtol", "reason"})
            if extra:  # a misspelt "field" would otherwise silently apply to every field
                raise ValueError(
                    f"{p}: field 'entries[{i}]': unknown key(s) {extra}; an entry has check, field, rtol, reason"
                )
            try:
                out.append(
                    ToleranceEntry(check=e["check"], rtol=e["rtol"], reason=e["reason"], field=e.get("field", "*"))
                )
            except ValueError as exc:
                raise ValueError(f"{p}: field 'entries[{i}]': {exc}") from exc
        return TolerancePolicy(dtype=dtype, entries=tuple(out), source=str(p))


@dataclass(frozen=True)
class FieldResult:
    """One compared field: its error, the tolerance it was held to and ``ratio = error / tolerance``
    (``inf`` for a discrete mismatch, a missing field or a wrong shape). ``label`` names what kind of
    failure an infinite ratio is (``mismatch``, ``shape mismatch``, ``dtype mismatch``, ``non-finite``,
    ``not an array``, ``missing``, ``unexpected``); the report shows it instead of a ratio."""

    field: str
    error: float
    tolerance: float
    ratio: float
    detail: str = ""
    tolerance_reason: str = ""
    label: str = "mismatch"

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
    not_implemented: bool = False  # the port's method raised NotImplementedError (an "error")

    @property
    def worst(self) -> FieldResult | None:
        return max(self.fields, key=lambda f: f.ratio, default=None)

    @property
    def compared(self) -> bool:
        """Whether this check ran on the port: its outputs were compared, or its method raised something
        other than ``NotImplementedError`` (not covered, skipped and not implemented, even when declared
        an expected failure, are not runs)."""
        return not self.not_implemented and self.status in ("pass", "fail", "error", "xfail", "xpass")


PropertyStatus: TypeAlias = Literal["pass", "fail", "not covered"]


@dataclass(frozen=True)
class PropertyFailure:
    """One distinct failure of a property (hypothesis reports each it found): the exception's text and
    hypothesis's falsifying example for it."""

    message: str
    falsifying_example: str


@dataclass(frozen=True)
class PropertyResult:
    """One property of property mode: the claim (or derivation) it tests, pass/fail/not covered, why
    (``message``), and for a failure hypothesis's falsifying example(s) as text
    (``falsifying_example``, one block per distinct failure), each distinct failure on its own
    (``failures``), the run's ``seed`` and number of ``examples``, and ``repro``: a copy-paste snippet
    (and the command line) that runs this property alone with that seed and raises if it still fails."""

    claim: str
    name: str
    status: PropertyStatus
    message: str = ""
    reference_ops: tuple[str, ...] = ()  # operations taken from the reference (none of the kit's)
    falsifying_example: str = ""
    failures: tuple[PropertyFailure, ...] = ()
    seed: int | None = None
    examples: int = 0
    repro: str = ""


_INTEGER_KINDS = "iub"  # int, uint, bool: an integer field's values
_FLOAT_KINDS = "f"


def _describe(a: np.ndarray) -> str:
    return f"shape {a.shape} dtype {a.dtype}"


def _versus(a: np.ndarray, b: np.ndarray) -> tuple[str, str]:
    """``(label, detail)`` for a port array ``a`` whose shape or dtype is not the reference ``b``'s: both
    shapes where they differ, both dtypes where they differ (and the other property where it agrees)."""
    shape = f"port shape {a.shape}, reference shape {b.shape}"
    dtype = f"port dtype {a.dtype}, reference dtype {b.dtype}"
    if a.shape != b.shape:
        tail = f"; {dtype}" if a.dtype != b.dtype else f" (dtype {b.dtype})"
        return "shape mismatch", shape + tail
    return "dtype mismatch", f"{dtype} (shape {b.shape})"


def _non_finite(a: np.ndarray) -> str:
    bad = ~np.isfinite(a)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{int(bad.sum())} non-finite entries (first at {first}: {float(a[first])!r})"


@dataclass
class _Fields:
    check: str
    policy: TolerancePolicy
    items: list[FieldResult] = field(default_factory=list)

    def fail(self, name: str, detail: str, tol: float = 0.0, reason: str = "exact", label: str = "mismatch") -> None:
        self.items.append(FieldResult(name, math.inf, tol, math.inf, detail, reason, label))

    def array(
        self, name: str, actual: object, kinds: str, what: str, expected: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The port's field as an array when its dtype is of ``kinds`` (``what`` says which) and every
        float in it is finite; otherwise a failed field saying why, and ``None``. With the reference's
        ``expected`` array, a wrong dtype names both dtypes (and both shapes where they differ too)."""
        try:
            a = np.asarray(actual)
        except Exception as exc:  # a ragged list, an object that refuses conversion: the port's output is bad
            self.fail(name, f"not an array ({type(exc).__name__}: {exc})", label="not an array")
            return None
        if a.dtype.kind not in kinds:
            if expected is None:
                self.fail(name, f"{_describe(a)}, expected {what}", label="dtype mismatch")
            else:
                label, detail = _versus(a, expected)
                self.fail(name, f"{detail}; expected {what}", label=label)
            return None
        if a.dtype.kind in _FLOAT_KINDS and not np.all(np.isfinite(a)):
            self.fail(name, _non_finite(a), label="non-finite")
            return None
        return a

    def like(self, name: str, actual: object, expected: np.ndarray, tol: float, reason: str) -> np.ndarray | None:
        """The port's field when its shape is the reference's, its dtype of the same kind (integer for
        an integer field, float for a float one) and it is finite; otherwise a failed field naming both."""
        b = np.asarray(expected)
        want_int = b.dtype.kind in _INTEGER_KINDS
        a = self.array(name, actual, _INTEGER_KINDS if want_int else _FLOAT_KINDS, _kind_name(b), b)
        if a is None:
            return None
        if a.shape != b.shape:
            label, detail = _versus(a, b)
            self.fail(name, detail, tol, reason, label)
            return None
        return a

    def value(self, name: str, actual: object, expected: np.ndarray) -> None:
        tol, reason = self.policy.value(self.check, name)
        a = self.like(name, actual, expected, tol, reason)
        if a is None:
            return
        b = np.asarray(expected)
        err = scaled_error(a, b)
        where = ""
        if a.size and not err <= tol:
            idx = np.unravel_index(int(np.argmax(np.abs(a - b))), a.shape)
            where = f"worst at {tuple(int(i) for i in idx)}: {float(a[idx])!r} vs reference {float(b[idx])!r}"
            factor = constant_factor(a, b, tol)
            if factor is not None:
                on = f" on all {a.size} entries (a constant factor)" if a.size > 1 else ""
                where += f"; port/reference = {factor:.6g}{on}"
        self.items.append(FieldResult(name, err, tol, err / tol, where, reason))

    def exact(self, name: str, actual: object, expected: np.ndarray) -> None:
        b = np.asarray(expected)
        a = self.array(name, actual, _INTEGER_KINDS if _is_int(b) else _FLOAT_KINDS, _kind_name(b), b)
        if a is None:
            return
        same = a.shape == b.shape and bool(np.array_equal(a, b))
        detail = "" if same else f"{a.tolist()} vs reference {b.tolist()}"
        label = "mismatch"
        if a.shape != b.shape:  # e.g. another number of events: the rows themselves say most
            label, versus = _versus(a, b)
            detail = f"{versus}; values {detail}"
        ratio = 0.0 if same else math.inf
        self.items.append(FieldResult(name, ratio, 0.0, ratio, detail, "exact", label))

    def discrete(self, name: str, ok: bool, detail: str, label: str = "mismatch") -> None:
        ratio = 0.0 if ok else math.inf
        self.items.append(FieldResult(name, ratio, 0.0, ratio, detail, "exact", label))

    def missing(self, names: Sequence[str], actual: Mapping[str, object]) -> bool:
        """Each of ``names`` absent from ``actual`` is a failed field; whether any was."""
        absent = [n for n in names if n not in actual]
        for n in absent:
            self.discrete(n, False, "missing from the port's outputs", label="missing")
        return bool(absent)


def _is_int(a: np.ndarray) -> bool:
    return np.asarray(a).dtype.kind in _INTEGER_KINDS


def _kind_name(b: np.ndarray) -> str:
    return "an integer array" if _is_int(b) else "a float array"


def _generic(fr: _Fields, case: Case, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> str:
    wanted = [k for k in expected if not k.startswith(REFERENCE_ONLY_PREFIX)]
    for name in wanted:
        if name not in actual:
            fr.discrete(name, False, "missing from the port's outputs", label="missing")
        elif _is_int(expected[name]):
            fr.exact(name, actual[name], expected[name])
        else:
            fr.value(name, actual[name], expected[name])
    for name in sorted(set(actual) - set(wanted)):
        fr.discrete(name, False, "unexpected output (the reference has no such field)", label="unexpected")
    return ""


def _static_growth(
    fr: _Fields, case: Case, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]
) -> str:
    A = case.array("A")
    theta = float(case.scalar("theta"))
    band = fr.policy.decision_band
    lam = np.linalg.eigvalsh(A)[::-1]
    clear = int(sum(1 for v in lam if v > theta and not band.allows(float(v), theta)))
    possible = int(sum(1 for v in lam if v > theta or band.allows(float(v), theta)))
    note = ""
    if clear < possible:
        note = (
            f"near-tie: {possible - clear} eigenvalue(s) within the {fr.policy.dtype} DECISION band of θ; the count "
            f"is accepted in [{clear}, {possible}] and births, span and directions are compared for the first {clear}"
        )
    if fr.missing(("Q_cap", "lam_births"), actual):
        return note
    for name in sorted(set(actual) - {"Q_cap", "lam_births"}):
        fr.discrete(name, False, "unexpected output (the reference has no such field)", label="unexpected")
    Q_ref, births_ref = expected["Q_cap"], expected["lam_births"]
    n = A.shape[0]
    Q = fr.array("Q_cap", actual["Q_cap"], _FLOAT_KINDS, f"float d×m with d = {n} (reference {_describe(Q_ref)})")
    births = fr.array("lam_births", actual["lam_births"], _FLOAT_KINDS, f"float, m (reference {_describe(births_ref)})")
    if Q is not None and (Q.ndim != 2 or Q.shape[0] != n):
        fr.fail(
            "Q_cap", f"{_describe(Q)}, expected d×m with d = {n} (reference {_describe(Q_ref)})", label="shape mismatch"
        )
        Q = None
    if births is not None and births.ndim != 1:
        fr.fail(
            "lam_births",
            f"{_describe(births)}, expected one axis of m (reference {_describe(births_ref)})",
            label="shape mismatch",
        )
        births = None
    if Q is None or births is None:
        return note
    m, m_ref = Q.shape[1], Q_ref.shape[1]
    if clear < possible:
        fr.discrete("count", clear <= m <= possible, f"m = {m}, accepted [{clear}, {possible}]")
        k = clear
    else:
        fr.discrete("count", m == m_ref, f"m = {m}, reference m* = {m_ref}")
        k = m_ref
    if births.shape[0] != m or m < k:
        fr.discrete(
            "shapes", False, f"Q_cap {Q.shape}, lam_births {births.shape}: cannot compare births", "shape mismatch"
        )
        return note
    fr.value("orthonormality", Q.T @ Q - np.eye(m), np.zeros((m, m)))
    fr.value("lam_births", births[:k], births_ref[:k])
    fr.value("span", Q[:, :k] @ Q[:, :k].T, Q_ref[:, :k] @ Q_ref[:, :k].T)
    if bool(case.scalar("directions_defined")):
        signs = np.sign(np.sum(Q[:, :k] * Q_ref[:, :k], axis=0))
        signs[signs == 0] = 1.0
        fr.value("directions (up to sign)", Q[:, :k] * signs[None, :], Q_ref[:, :k])
    return note


_EVENT_ROWS = "E×4 integer rows (step, kind, head_id, prototype_id)"
_CHECK_FIELDS = TRAJECTORY_CHECK_FIELDS


def _check_statistics(
    fr: _Fields, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], stop: int | None
) -> None:
    """A trajectory's per-check statistics: the checks' steps and the heads measured at each (exactly),
    ``λ_max`` and every ``G_h`` (measured at a check's start, before its decisions) and the captured
    projector ``Q_cap Q_capᵀ`` after each check, within the VALUE row. With a near-tie at step ``stop``,
    the statistics of the checks up to and including it (measured before its decision) and the projectors
    of the checks before it; past it every array must still be finite."""
    present = [n for n in _CHECK_FIELDS if n in expected]
    if not present:  # vectors written before the kit compared statistics: nothing to hold the port to
        return
    if fr.missing(present, actual):
        return
    got: dict[str, np.ndarray] = {}
    for name in present:
        want = np.asarray(expected[name])
        kinds = _INTEGER_KINDS if _is_int(want) else _FLOAT_KINDS
        a = fr.array(name, actual[name], kinds, f"{_kind_name(want)} (reference {_describe(want)})", want)
        if a is None:
            return
        if a.ndim != want.ndim or a.shape[1:] != want.shape[1:]:
            label, detail = _versus(a, want)
            fr.fail(name, detail, label=label)
            return
        got[name] = a
    if (
        got["checks.step"].shape[0] != got["checks.lam_max"].shape[0]
        or got["checks.heads"].shape[0] != (got["checks.G_h"].shape[0])
    ):
        fr.fail("checks", "checks.step and checks.lam_max, or checks.heads and checks.G_h, differ in length")
        return
    ref = {n: np.asarray(expected[n]) for n in present}
    limit = np.iinfo(np.int64).max if stop is None else stop
    steps_a, steps_b = got["checks.step"], ref["checks.step"]
    heads_a, heads_b = got["checks.heads"], ref["checks.heads"]
    up_to_a, up_to_b = steps_a <= limit, steps_b <= limit
    hrows_a, hrows_b = heads_a[:, 0] <= limit, heads_b[:, 0] <= limit
    fr.exact("checks.step", steps_a[up_to_a], steps_b[up_to_b])
    fr.exact("checks.heads", heads_a[hrows_a], heads_b[hrows_b])
    if np.array_equal(steps_a[up_to_a], steps_b[up_to_b]):
        fr.value("checks.lam_max", got["checks.lam_max"][up_to_a], ref["checks.lam_max"][up_to_b])
        before_a = steps_a < limit if stop is not None else up_to_a
        before_b = steps_b < limit if stop is not None else up_to_b
        fr.value("checks.projector", got["checks.projector"][before_a], ref["checks.projector"][before_b])
    if np.array_equal(heads_a[hrows_a], heads_b[hrows_b]):
        fr.value("checks.G_h", got["checks.G_h"][hrows_a], ref["checks.G_h"][hrows_b])


def _trajectory(fr: _Fields, case: Case, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> str:
    band = fr.policy.decision_band
    pairs = expected["ref.decision_pairs"]
    stop = first_near_tie(pairs, band)
    note = ""
    ev_ref, losses_ref = expected["events"], expected["losses"]
    for name in sorted(set(actual) - {"losses", "events"}):
        if not name.startswith(("final.", REFERENCE_ONLY_PREFIX)) and name not in _CHECK_FIELDS:
            fr.discrete(name, False, "unexpected output (the reference has no such field)", label="unexpected")
    # Well-formed everywhere, also past a near-tie where values are not compared: E×4 integer event
    # rows, S×3 finite losses (the port trains every step whichever way it decided).
    ev = losses = None
    if "events" in actual:
        ev = fr.array("events", actual["events"], "iu", f"{_EVENT_ROWS} (reference {_describe(ev_ref)})")
        if ev is not None and (ev.ndim != 2 or ev.shape[1] != 4):
            fr.fail(
                "events",
                f"port {_describe(ev)}, expected {_EVENT_ROWS} (reference {_describe(ev_ref)})",
                label="shape mismatch",
            )
            ev = None
    if "losses" in actual:
        tol, reason = fr.policy.value(fr.check, "losses")
        losses = fr.like("losses", actual["losses"], losses_ref, tol, reason)
    fr.missing(("losses", "events"), actual)
    if stop is not None:
        row = next(r for r in pairs.tolist() if int(r[0]) == stop and band.allows(r[1], r[2]))
        note = (
            f"stopped at the first near-tie, the check at step {stop} (statistic {row[1]!r} vs threshold "
            f"{row[2]!r}, within the {fr.policy.dtype} DECISION band): events before it, losses up to it; "
            "final parameters not compared"
        )
        if ev is not None:
            fr.exact("events", ev[ev[:, 0] < stop], ev_ref[ev_ref[:, 0] < stop])
        if losses is not None:
            fr.value("losses", losses[:stop], losses_ref[:stop])
        _check_statistics(fr, actual, expected, stop)
        for name in sorted(k for k in actual if k.startswith("final.")):  # not compared, but numbers
            fr.array(name, actual[name], _INTEGER_KINDS + _FLOAT_KINDS, "a finite numeric array")
        return note
    if ev is not None:
        fr.exact("events", ev, ev_ref)
    if losses is not None:
        fr.value("losses", losses, losses_ref)
    _check_statistics(fr, actual, expected, None)
    finals = {k: v for k, v in expected.items() if k.startswith("final.")}
    _generic(fr, case, {k: v for k, v in actual.items() if k.startswith("final.")}, finals)
    return note


@dataclass(frozen=True)
class Comparator:
    """How an operation's outputs are checked: ``holds`` says what a port is held to (for the docs and
    the report), ``check`` records one :class:`FieldResult` per compared field and returns a note on
    what was not compared and why."""

    holds: str
    check: Callable[[_Fields, Case, Mapping[str, np.ndarray], Mapping[str, np.ndarray]], str]


FIELD_BY_FIELD = Comparator("floats within the VALUE row, integers exactly", _generic)
STATIC_CAPTURE = Comparator(
    "count, births, span and directions; at a near-tie (DECISION band) the count within its range", _static_growth
)
TRAJECTORY = Comparator(
    "events exactly; losses, per-check `λ_max`, `G_h` and `Q_cap Q_capᵀ`, final parameters within the VALUE row; "
    "up to the first near-tie",
    _trajectory,
)


def compare_outputs(
    case: Case,
    actual: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    policy: TolerancePolicy,
    comparator: Comparator,
) -> CheckResult:
    """The check ``case.check``: the port's ``actual`` outputs against the reference's ``expected`` by the
    case's operation's ``comparator``.

    A malformed output (a wrong shape or dtype, a non-finite value, a missing field) is a failed field
    naming what was expected and what came; it never stops the comparison of the other checks."""
    fr = _Fields(case.check, policy)
    note = ""
    try:
        note = comparator.check(fr, case, actual, expected)
    except Exception as exc:  # a malformed output the checks above did not foresee: this check fails, no other
        fr.fail("(comparison)", f"the port's outputs could not be compared: {type(exc).__name__}: {exc}", label="error")
    bad = [f for f in fr.items if not f.ok]
    status: Status = "fail" if bad else "pass"
    message = "; ".join(_failure(f) for f in bad)
    return CheckResult(case.check, case.operation, status, tuple(fr.items), message, note, case_note=case.note)


def _failure(f: FieldResult) -> str:
    """A failed field in the check's message: ``field: what: detail`` (``what`` the failure's label, or the
    error over its tolerance)."""
    if not math.isfinite(f.ratio):
        return f"{f.field}: {f.label}: {f.detail}" if f.detail else f"{f.field}: {f.label}"
    ratio = f"error {f.error:.3g} = {f.ratio:.3g} × tolerance {f.tolerance:.3g}"
    return f"{f.field}: {ratio} {f.detail}".strip()


__all__ = [
    "FAILING",
    "FIELD_BY_FIELD",
    "REFERENCE_ONLY_PREFIX",
    "STATIC_CAPTURE",
    "TRAJECTORY",
    "CheckResult",
    "Comparator",
    "FieldResult",
    "PropertyFailure",
    "PropertyResult",
    "PropertyStatus",
    "Status",
    "ToleranceEntry",
    "TolerancePolicy",
    "compare_outputs",
    "constant_factor",
    "first_near_tie",
    "scaled_error",
]
