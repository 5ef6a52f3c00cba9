"""Running the kit: on a Python adapter (:func:`run_adapter`), on the outputs a non-Python port wrote
(:func:`run_outputs`), one check on its own (:func:`reproduce`, what every repro snippet calls), and
the golden vectors (:func:`regenerate`, :func:`golden_differences`)."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ddcl_incrt.conformance.adapter import Adapter
from ddcl_incrt.conformance.cases import Case
from ddcl_incrt.conformance.compare import CheckResult, TolerancePolicy, first_near_tie, scaled_error
from ddcl_incrt.conformance.operations import (
    all_cases,
    call_port,
    check_adapter,
    compare_case,
    load_adapter,
    operation_names,
    reference_outputs,
)
from ddcl_incrt.conformance.report import Report
from ddcl_incrt.conformance.vectors import (
    GOLDEN_DIR,
    VectorEntry,
    check_vector_target,
    read_vectors,
    write_vectors,
)
from reference.tolerances import CheckKind, tolerance

# --------------------------------------------------------------------------------------------------
# Golden vectors
# --------------------------------------------------------------------------------------------------


def regenerate(directory: str | Path = GOLDEN_DIR) -> Path:
    """Write the golden vectors: every case of :func:`ddcl_incrt.conformance.operations.all_cases` with the
    reference's outputs (``ddcl-incrt conformance --regenerate``). ``directory`` is checked first
    (:func:`~ddcl_incrt.conformance.vectors.check_vector_target`), before the reference runs."""
    check_vector_target(directory, "golden")
    entries = [VectorEntry(c, reference_outputs(c)) for c in all_cases()]
    return write_vectors(directory, "golden", entries)


def _chosen(check: str, only: Sequence[str] | None) -> bool:
    return only is None or any(fnmatch.fnmatchcase(check, p) for p in only)


def _decision_pairs_differences(check: str, stored: np.ndarray, live: np.ndarray) -> list[str]:
    """The reference's decision statistics, compared up to the first near-tie of the stored ones: past it
    another machine's reference may take the other branch, and the later checks then differ legitimately."""
    stop = first_near_tie(stored, tolerance("float64", CheckKind.DECISION))

    def upto(rows: np.ndarray) -> np.ndarray:
        # before the near-tie, and the near-tie's own λ_max row (the newborn of one branch adds G_h rows)
        return rows if stop is None else rows[(rows[:, 0] < stop) | ((rows[:, 0] == stop) & (rows[:, 3] == 0))]

    s, v = upto(stored), upto(live)
    if s.shape != v.shape:
        return [f"{check}: output ref.decision_pairs changed: {v.shape[0]} rows, committed {s.shape[0]}"]
    if not np.array_equal(s[:, [0, 3]], v[:, [0, 3]]):
        return [f"{check}: output ref.decision_pairs changed: steps or kinds differ"]
    err = scaled_error(v[:, 1:3], s[:, 1:3])
    if err > tolerance("float64", CheckKind.VALUE).rtol:
        return [f"{check}: output ref.decision_pairs changed: error {err:.3g}"]
    return []


def golden_differences(directory: str | Path = GOLDEN_DIR, *, only: Sequence[str] | None = None) -> list[str]:
    """Where the committed golden vectors disagree with the reference on their own inputs.

    The committed files are the authority for the inputs: they are read, never regenerated, so this
    holds on any machine. The reference's outputs on those inputs are compared with the committed
    outputs exactly as the kit compares a float64 port (:func:`compare_case`: floats within the float64
    VALUE row, integers and decisions exactly, a trajectory up to its first near-tie), and the
    reference's decision statistics up to that near-tie. ``only`` restricts it to checks matching
    these patterns."""
    diffs: list[str] = []
    policy = TolerancePolicy()
    for entry in read_vectors(directory, expect_kind="golden"):
        case = entry.case
        if not _chosen(case.check, only):
            continue
        assert entry.outputs is not None
        out = reference_outputs(case)
        # names are compared by compare_case, as for a port; past a trajectory's near-tie the final
        # parameters (and so their names: a head more or less) may legitimately differ
        result = compare_case(case, out, entry.outputs, policy)
        diffs += [f"{case.check}: output {f.field} changed: {f.detail}".rstrip(": ") for f in result.fields if not f.ok]
        if "ref.decision_pairs" in out:
            diffs += _decision_pairs_differences(
                case.check, entry.outputs["ref.decision_pairs"], out["ref.decision_pairs"]
            )
    return diffs


def regeneration_differences(
    directory: str | Path = GOLDEN_DIR, *, only: Sequence[str] | None = None, cases: Sequence[Case] | None = None
) -> list[str]:
    """Where regenerating the cases (:func:`all_cases`, or ``cases``) would change the committed ones:
    cases added or removed, a changed operation, input names or integer data, and float inputs or
    scalars beyond the float64 VALUE row. Inputs built through BLAS (``qr``, ``eigh``, products, a short
    training run) differ in the last bits between CPUs, so they are never required to be bit-identical:
    the committed files stay the authority, and this only says whether the generators still produce
    the same cases."""
    rtol = tolerance("float64", CheckKind.VALUE).rtol
    stored = {
        e.case.check: e.case for e in read_vectors(directory, expect_kind="golden") if _chosen(e.case.check, only)
    }
    live = {c.check: c for c in (all_cases() if cases is None else cases) if _chosen(c.check, only)}
    diffs = [f"{k}: in the committed vectors, not generated any more" for k in sorted(set(stored) - set(live))]
    diffs += [f"{k}: generated, missing from the committed vectors" for k in sorted(set(live) - set(stored))]
    for check in sorted(set(stored) & set(live)):
        s, c = stored[check], live[check]
        if s.operation != c.operation:
            diffs.append(f"{check}: operation {s.operation!r} -> {c.operation!r}")
        if sorted(s.scalars) != sorted(c.scalars):
            diffs.append(f"{check}: scalar names changed")
        for k in sorted(set(s.scalars) & set(c.scalars)):
            new, old = c.scalars[k], s.scalars[k]
            if isinstance(new, float) and isinstance(old, float):
                same = abs(new - old) <= rtol * max(abs(old), 1.0)
            else:
                same = new == old
            if not same:
                diffs.append(f"{check}: scalar {k} changed: {old!r} -> {new!r}")
        if sorted(s.inputs) != sorted(c.inputs):
            diffs.append(f"{check}: input names changed")
            continue
        for k in sorted(c.inputs):
            a, b = np.asarray(c.inputs[k]), s.inputs[k]
            if a.shape != b.shape:
                diffs.append(f"{check}: input {k} shape {b.shape} -> {a.shape}")
            elif np.issubdtype(b.dtype, np.integer):
                if not np.array_equal(a, b):
                    diffs.append(f"{check}: input {k} changed")
            elif not (err := scaled_error(a, b)) <= rtol:
                diffs.append(f"{check}: input {k} changed: error {err:.3g} > {rtol:g}")
    return diffs


_GOLDEN_CACHE: dict[str, list[VectorEntry]] = {}


def golden(directory: str | Path = GOLDEN_DIR) -> list[VectorEntry]:
    key = str(Path(directory).resolve())
    if key not in _GOLDEN_CACHE:
        _GOLDEN_CACHE[key] = read_vectors(directory, expect_kind="golden")
    return _GOLDEN_CACHE[key]


# --------------------------------------------------------------------------------------------------
# Selection: skip and expected failures
# --------------------------------------------------------------------------------------------------


def _selected(checks: Sequence[str], patterns: Sequence[str], what: str, warn: list[str]) -> set[str]:
    out: set[str] = set()
    for pat in patterns:
        hit = {c for c in checks if fnmatch.fnmatchcase(c, pat)}
        if not hit:
            msg = f"{what} entry {pat!r} matches no check"
            warnings.warn(msg, UserWarning, stacklevel=3)
            warn.append(msg)
        out |= hit
    return out


def _policy_for(adapter: object | None, policy: TolerancePolicy | str | Path | None) -> TolerancePolicy:
    if isinstance(policy, TolerancePolicy):
        return policy
    if policy is not None:
        return TolerancePolicy.from_json(policy)
    declared = getattr(adapter, "tolerances", None)
    return declared if isinstance(declared, TolerancePolicy) else TolerancePolicy()


def repro_snippet(check: str, *, adapter: str | None, outputs: str | None, tolerances: str | None) -> str:
    """The copy-paste reproduction of one check: runs it alone and raises if it still fails."""
    args = [f"check={check!r}"]
    if adapter is not None:
        args.append(f"adapter={adapter!r}")
    if outputs is not None:
        args.append(f"outputs={outputs!r}")
    if tolerances is not None:
        args.append(f"tolerances={tolerances!r}")
    return "from ddcl_incrt.conformance.runner import reproduce\n" + f"reproduce({', '.join(args)})"


def check_min_coverage(min_coverage: object) -> int | None:
    """``min_coverage`` (the number of checks a run must compare) when it is ``None`` or an int >= 1;
    otherwise a ``ValueError`` naming it."""
    if min_coverage is None:
        return None
    if isinstance(min_coverage, bool) or not isinstance(min_coverage, int) or min_coverage < 1:
        raise ValueError(
            f"min_coverage: expected a whole number >= 1 (checks that must be compared), got {min_coverage!r}"
        )
    return min_coverage


def _finish(
    port: str,
    source: str,
    entries: list[VectorEntry],
    outcome: dict[str, CheckResult],
    policy: TolerancePolicy,
    skip: Sequence[str],
    xfail: Sequence[str],
    uncovered: list[str],
    repro: dict[str, str | None],
    *,
    declared: tuple[str, ...],
    empty_reason: str,
    min_coverage: int | None,
) -> Report:
    warn: list[str] = []
    checks = [e.case.check for e in entries]
    skipped = _selected(checks, skip, "skip", warn)
    expected_fail = _selected(checks, xfail, "xfail", warn)
    results: list[CheckResult] = []
    used: set[int] = set()
    for e in entries:
        r = outcome[e.case.check]
        for f in r.fields:
            for i, t in enumerate(policy.entries):
                if t.matches(r.check, f.field):
                    used.add(i)
                    break
        if r.check in skipped:
            r = replace(r, status="skip")
        elif r.check in expected_fail and r.status in ("fail", "error"):
            r = replace(r, status="xfail")
        elif r.check in expected_fail and r.status == "pass":
            r = replace(r, status="xpass", message="declared an expected failure, but passed")
        if r.status in ("fail", "error", "xpass"):
            r = replace(r, repro=repro_snippet(r.check, **repro))
        results.append(r)
    unused = [f"{t.check} [{t.field}]" for i, t in enumerate(policy.entries) if i not in used]
    return Report(
        port,
        source,
        policy,
        results,
        uncovered,
        warn,
        unused,
        declared_operations=declared,
        empty_reason=empty_reason,
        min_coverage=min_coverage,
    )


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


def _select_entries(directory: str | Path, only: Sequence[str] | None) -> list[VectorEntry]:
    entries = golden(directory)
    if only is None:
        return entries
    picked = [e for e in entries if any(fnmatch.fnmatchcase(e.case.check, p) for p in only)]
    if not picked:
        raise ValueError(f"only: {list(only)} match no check")
    return picked


def run_adapter(
    adapter: Adapter | str,
    *,
    policy: TolerancePolicy | str | Path | None = None,
    skip: Sequence[str] = (),
    xfail: Sequence[str] = (),
    only: Sequence[str] | None = None,
    directory: str | Path = GOLDEN_DIR,
    min_coverage: int | None = None,
) -> Report:
    """Every golden case the adapter declares, compared with the reference's outputs.

    ``adapter`` is an adapter or its ``package.module:factory``; with the string, every failure's
    repro snippet reloads it from there. A method that raises fails its check (``error``); one that
    raises ``NotImplementedError`` is also reported as declared but not implemented. The report's exit
    code is non-zero below the minimum coverage (``min_coverage`` checks compared, default 1, and every
    check of every declared operation: :meth:`Report.coverage_problems`)."""
    need = check_min_coverage(min_coverage)
    spec = adapter if isinstance(adapter, str) else None
    port = load_adapter(adapter) if isinstance(adapter, str) else check_adapter(adapter)
    pol = _policy_for(port, policy)
    entries = _select_entries(directory, only)
    outcome: dict[str, CheckResult] = {}
    for e in entries:
        c = e.case
        if c.operation not in port.capabilities:
            outcome[c.check] = CheckResult(c.check, c.operation, "not covered", case_note=c.note)
            continue
        try:
            actual = call_port(port, c)
        except NotImplementedError as exc:  # declared, not implemented (e.g. an unfilled --template method)
            text = f"NotImplementedError: {exc}".rstrip(": ")
            outcome[c.check] = CheckResult(
                c.check,
                c.operation,
                "error",
                message=f"{text} (declared in the adapter's capabilities, but not implemented)",
                case_note=c.note,
                not_implemented=True,
            )
            continue
        except Exception as exc:  # a port that raises fails the check, with what it raised
            outcome[c.check] = CheckResult(
                c.check, c.operation, "error", message=f"{type(exc).__name__}: {exc}", case_note=c.note
            )
            continue
        assert e.outputs is not None
        outcome[c.check] = compare_case(c, actual, e.outputs, pol)
    uncovered = [op for op in operation_names() if op not in port.capabilities]
    tol_arg = None if policy is None or isinstance(policy, TolerancePolicy) else str(Path(policy).resolve())
    repro = {"adapter": spec or "<package.module:factory of your adapter>", "outputs": None, "tolerances": tol_arg}
    source = spec or type(port).__name__
    declared = tuple(op for op in operation_names() if op in port.capabilities)
    return _finish(
        port.name,
        source,
        entries,
        outcome,
        pol,
        skip,
        xfail,
        uncovered,
        repro,
        declared=declared,
        empty_reason=f"the adapter {port.name!r} declares no operations (its capabilities are empty)",
        min_coverage=need,
    )


def write_inputs(directory: str | Path, *, vectors: str | Path = GOLDEN_DIR) -> Path:
    """Every golden case's inputs, for a port that is not Python (``--write-inputs DIR``); ``directory``
    is checked (:func:`~ddcl_incrt.conformance.vectors.check_vector_target`) before the vectors are read."""
    check_vector_target(directory, "inputs")
    return write_vectors(directory, "inputs", [VectorEntry(e.case, None) for e in golden(vectors)])


def run_outputs(
    outputs: str | Path,
    *,
    policy: TolerancePolicy | str | Path | None = None,
    skip: Sequence[str] = (),
    xfail: Sequence[str] = (),
    only: Sequence[str] | None = None,
    directory: str | Path = GOLDEN_DIR,
    min_coverage: int | None = None,
) -> Report:
    """The outputs a port wrote (an ``outputs`` vector directory) against the golden vectors; a case
    the port did not write is not covered, and an operation none of whose cases it wrote is listed.

    The operations the port wrote a case of are the ones it declares: below the minimum coverage
    (``min_coverage`` checks compared, default 1, and every selected check of every declared
    operation written) the report's exit code is non-zero, so an outputs manifest with no cases
    fails."""
    need = check_min_coverage(min_coverage)
    pol = _policy_for(None, policy)
    written = {e.case.check: e for e in read_vectors(outputs, expect_kind="outputs")}
    entries = _select_entries(directory, only)
    known = {e.case.check for e in golden(directory)}
    unknown = sorted(set(written) - known)
    outcome: dict[str, CheckResult] = {}
    for e in entries:
        c = e.case
        w = written.get(c.check)
        if w is None:
            outcome[c.check] = CheckResult(c.check, c.operation, "not covered", case_note=c.note)
            continue
        assert e.outputs is not None
        assert w.outputs is not None
        outcome[c.check] = compare_case(c, w.outputs, e.outputs, pol)
    covered_ops = {e.case.operation for e in entries if e.case.check in written}
    uncovered = [op for op in operation_names() if op not in covered_ops]
    out_path = str(Path(outputs).resolve())
    tol_arg = None if policy is None or isinstance(policy, TolerancePolicy) else str(Path(policy).resolve())
    wrote = {w.case.operation for w in written.values()}
    report = _finish(
        f"outputs in {out_path}",
        out_path,
        entries,
        outcome,
        pol,
        skip,
        xfail,
        uncovered,
        {"adapter": None, "outputs": out_path, "tolerances": tol_arg},
        declared=tuple(op for op in operation_names() if op in wrote),
        empty_reason=f"the outputs manifest {Path(out_path) / 'manifest.json'} has no cases",
        min_coverage=need,
    )
    for k in unknown:
        msg = f"the outputs name a check the kit does not have: {k!r}"
        warnings.warn(msg, UserWarning, stacklevel=2)
        report.warnings.append(msg)
    return report


def reproduce(
    *,
    check: str,
    adapter: str | None = None,
    outputs: str | None = None,
    tolerances: str | None = None,
) -> CheckResult:
    """Run one check on its own; raise ``AssertionError`` with the report's message if it does not pass."""
    if not isinstance(check, str):
        raise TypeError(
            f"reproduce: check: expected a check name (str, e.g. 'grow_decision/at_threshold_tie'), got {check!r:.80}"
        )
    if (adapter is None) == (outputs is None):
        raise ValueError("reproduce: give exactly one of adapter= (package.module:factory) and outputs= (a directory)")
    if adapter is not None:
        report = run_adapter(adapter, policy=tolerances, only=[check])
    else:
        assert outputs is not None
        report = run_outputs(outputs, policy=tolerances, only=[check])
    (result,) = [r for r in report.results if r.check == check]
    if result.status != "pass":
        case = f" (case: {result.case_note})" if result.case_note else ""
        raise AssertionError(
            f"conformance check {check}: {result.status}: {result.message} {result.note}".strip() + case
        )
    return result


__all__ = [
    "check_min_coverage",
    "golden",
    "golden_differences",
    "reference_outputs",
    "regenerate",
    "regeneration_differences",
    "repro_snippet",
    "reproduce",
    "run_adapter",
    "run_outputs",
    "write_inputs",
]
