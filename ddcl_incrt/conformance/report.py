"""The conformance report: per check pass/fail, the worst error divided by its tolerance, the near-tie
notes, what the port did not cover and whether it met the minimum coverage, the declared tolerances
with their reasons, a copy-paste reproduction for every failure, and property mode's results; as a
terminal table (rich), JSON and Markdown, all with the same exit code."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ddcl_incrt.conformance.compare import FAILING, CheckResult, PropertyResult, TolerancePolicy
from ddcl_incrt.conformance.operations import groups, operation_names
from ddcl_incrt.exit_codes import FAILED_CHECK, OK

DEFAULT_COVERAGE_RULE = "at least one check compared, and every check of every operation the port declares"


@dataclass
class Report:
    """Everything one run of the kit found.

    ``exit_code`` is :data:`~ddcl_incrt.exit_codes.FAILED_CHECK` when any check failed, errored or
    passed while declared an expected failure, when the run fell short of the minimum coverage
    (:meth:`coverage_problems`), or when a property of property mode failed; else
    :data:`~ddcl_incrt.exit_codes.OK`.

    ``declared_operations`` are what the port says it implements (an adapter's ``capabilities``; for
    written outputs, the operations it wrote a case of); ``empty_reason`` says why there are none
    (e.g. an outputs manifest without cases). ``min_coverage`` is the number of checks that must be
    compared (``None``: the default, at least one); every declared operation must be covered whatever
    it is. ``properties`` are property mode's results, when it ran."""

    port: str
    source: str
    policy: TolerancePolicy
    results: list[CheckResult]
    uncovered_operations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unused_tolerances: list[str] = field(default_factory=list)
    declared_operations: tuple[str, ...] = ()
    empty_reason: str = ""
    min_coverage: int | None = None
    properties: list[PropertyResult] | None = None

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status in FAILING]

    @property
    def property_failures(self) -> list[PropertyResult]:
        return [p for p in self.properties or () if p.status == "fail"]

    @property
    def compared(self) -> int:
        """How many checks ran on the port (:attr:`CheckResult.compared`)."""
        return sum(1 for r in self.results if r.compared)

    @property
    def required(self) -> int:
        """How many checks must be compared: ``min_coverage``, or 1 by default."""
        return 1 if self.min_coverage is None else self.min_coverage

    def _why_nothing(self) -> str:
        declared = set(self.declared_operations)
        mine = [r for r in self.results if r.operation in declared]
        if not declared:
            return self.empty_reason or "the port declares no operations"
        if not mine:
            return f"none of the selected checks is of an operation the port declares ({sorted(declared)})"
        if all(r.status == "skip" for r in mine):
            return "every check of the port's operations was skipped (--skip)"
        if all(r.not_implemented or r.status == "skip" for r in mine):
            return "every operation the port declares raised NotImplementedError: nothing is implemented yet"
        return ""

    def coverage_problems(self) -> list[str]:
        """Why this run does not meet the minimum coverage (empty when it does): fewer checks compared
        than required, a declared operation whose checks the port did not cover (outputs it did not
        write), or one it declares but did not implement (``NotImplementedError``)."""
        out: list[str] = []
        n, need = self.compared, self.required
        if n < need:
            why = self._why_nothing() if n == 0 else ""
            what = f"{n} check(s) compared" if n else "nothing was compared"
            rule = "at least one check must be" if self.min_coverage is None else f"--min-coverage requires {need}"
            out.append(f"{what}{': ' + why if why else ''}; {rule} compared")
        declared = [op for op in operation_names() if op in set(self.declared_operations)]
        not_implemented = [op for op in declared if any(r.not_implemented for r in self._of(op))]
        if not_implemented:
            out.append(
                f"declared but not implemented (raised NotImplementedError): {', '.join(not_implemented)}; "
                "implement them or remove them from capabilities"
            )
        for op in declared:
            missing = [r.check for r in self._of(op) if r.status == "not covered"]
            if missing:
                out.append(f"{op}: declared (the port wrote some of its checks) but not covered: {', '.join(missing)}")
        return out

    def _of(self, operation: str) -> list[CheckResult]:
        return [r for r in self.results if r.operation == operation and r.status != "skip"]

    @property
    def exit_code(self) -> int:
        return FAILED_CHECK if self.failures or self.coverage_problems() or self.property_failures else OK

    def verdict(self) -> str:
        """One line: the exit code and every reason for it."""
        reasons = []
        if self.failures:
            reasons.append(f"{len(self.failures)} check(s) failed")
        if self.coverage_problems():
            reasons.append("below the minimum coverage")
        if self.property_failures:
            n = len(self.property_failures)
            reasons.append(f"{n} propert{'y' if n == 1 else 'ies'} failed")
        return f"exit code {self.exit_code}: " + ("; ".join(reasons) if reasons else "every compared check passed")

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.status for r in self.results))

    def covered_summary(self) -> dict[str, str]:
        """Per group of operations: ``all``, ``none`` or ``partial: missing [...]``."""
        out: dict[str, str] = {}
        for group, ops in groups().items():
            missing = [op for op in ops if op in self.uncovered_operations]
            out[group] = "all" if not missing else "none" if len(missing) == len(ops) else f"partial: missing {missing}"
        return out

    # ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def ratio(r: CheckResult) -> float | str | None:
            w = r.worst
            if w is None:
                return None
            return "inf" if math.isinf(w.ratio) else w.ratio

        return {
            "port": self.port,
            "source": self.source,
            "exit_code": self.exit_code,
            "verdict": self.verdict(),
            "counts": self.counts(),
            "coverage": self.covered_summary(),
            "uncovered_operations": self.uncovered_operations,
            "minimum_coverage": {
                "rule": DEFAULT_COVERAGE_RULE
                if self.min_coverage is None
                else f"at least {self.min_coverage} checks compared, and every check of every declared operation",
                "required": self.required,
                "compared": self.compared,
                "declared_operations": list(self.declared_operations),
                "problems": self.coverage_problems(),
            },
            "properties": None
            if self.properties is None
            else [
                {
                    "claim": p.claim,
                    "property": p.name,
                    "status": p.status,
                    "message": p.message,
                    "falsifying_example": p.falsifying_example,
                    "failures": [
                        {"message": f.message, "falsifying_example": f.falsifying_example} for f in p.failures
                    ],
                    "seed": p.seed,
                    "examples": p.examples,
                    "repro": p.repro,
                    "reference_ops": list(p.reference_ops),
                }
                for p in self.properties
            ],
            "tolerances": self.policy.to_json() | {"source": self.policy.source},
            "unused_tolerances": self.unused_tolerances,
            "warnings": self.warnings,
            "checks": [
                {
                    "check": r.check,
                    "operation": r.operation,
                    "status": r.status,
                    "worst_field": None if r.worst is None else r.worst.field,
                    "worst_error_over_tolerance": ratio(r),
                    "message": r.message,
                    "note": r.note,
                    "case_note": r.case_note,
                    "repro": r.repro,
                }
                for r in self.results
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def to_markdown(self) -> str:
        c = self.counts()
        lines = [
            f"# Conformance report: {self.port}",
            "",
            f"Source: `{self.source}`. Tolerances: {self.policy.dtype} ({self.policy.source}).",
            "",
            "Result: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) + f". {self.verdict().capitalize()}.",
            "",
            "## Coverage",
            "",
            "| group | covered |",
            "|---|---|",
            *[f"| {g} | {s} |" for g, s in self.covered_summary().items()],
            "",
            f"Minimum coverage: {self.compared} check(s) compared, {self.required} required "
            f"({'the default: ' + DEFAULT_COVERAGE_RULE if self.min_coverage is None else '--min-coverage'}).",
            *[f"- **below the minimum**: {p}" for p in self.coverage_problems()],
            "",
        ]
        lines += ["## Tolerances", "", "| check | field | rtol | reason |", "|---|---|---|---|"]
        for kind, t in self.policy.base_rows().items():
            lines.append(f"| (table {self.policy.dtype} {kind}) | * | {t.rtol:g} | {t.reason} |")
        lines += [f"| `{e.check}` | `{e.field}` | {e.rtol:g} | declared: {e.reason} |" for e in self.policy.entries]
        if self.unused_tolerances:
            lines.append(f"\nDeclared tolerances that matched no compared field: {', '.join(self.unused_tolerances)}.")
        lines.append("")
        if self.warnings:
            lines += ["## Warnings", "", *[f"- {w}" for w in self.warnings], ""]
        lines += [
            "## Checks",
            "",
            "| check | status | worst field | error / tolerance | note |",
            "|---|---|---|---|---|",
        ]
        for r in self.results:
            w = r.worst
            ratio = "" if w is None else (w.label if math.isinf(w.ratio) else f"{w.ratio:.3g}")
            lines.append(f"| `{r.check}` | {r.status} | {'' if w is None else w.field} | {ratio} | {r.note} |")
        lines.append("")
        for r in self.failures:
            lines += [f"### {r.check}: {r.status}", "", r.message, ""]
            if r.case_note:
                lines += [f"Case: {_cell(r.case_note)}", ""]
            lines += ["```python", r.repro, "```", ""]
        if self.properties is not None:
            lines += [
                "## Property mode",
                "",
                "| claim | property | status | message |",
                "|---|---|---|---|",
                *[
                    f"| {p.claim} | {_cell(p.name)} | {p.status} | {_cell(_property_note(p))} |"
                    for p in self.properties
                ],
                "",
            ]
            for p in self.property_failures:
                lines += [f"### property {p.claim}: fail", "", _cell(p.message), ""]
                for i, f in enumerate(p.failures or (), 1):
                    head = f"Failure {i} of {len(p.failures)}: " if len(p.failures) > 1 else ""
                    lines += [f"{head}{_cell(f.message)}", "", "Falsifying example:", "", "```", f.falsifying_example]
                    lines += ["```", ""]
                if not p.failures:
                    lines += ["Falsifying example:", "", "```", p.falsifying_example, "```", ""]
                if p.repro:
                    lines += [f"Reproduce (seed {p.seed}, {p.examples} examples):", "", "```python", p.repro, "```", ""]
        return "\n".join(lines)

    def render(self, console: Console) -> None:
        table = Table(title=f"ddcl-incrt conformance: {self.port} ({self.source})")
        for col in ("check", "status", "worst field", "error / tol", "note"):
            table.add_column(col, overflow="fold")
        style = {"pass": "green", "fail": "red", "error": "red", "xpass": "red", "xfail": "yellow"}
        for r in self.results:
            if r.status == "not covered":
                continue
            w = r.worst
            ratio = "" if w is None else (w.label if math.isinf(w.ratio) else f"{w.ratio:.3g}")
            s = style.get(r.status, "dim")
            field_name = "" if w is None else escape(w.field)
            table.add_row(escape(r.check), f"[{s}]{r.status}[/{s}]", field_name, ratio, escape(r.note or r.message))
        console.print(table)
        for g, s in self.covered_summary().items():
            console.print(f"coverage {g}: {s}")
        for kind, t in self.policy.base_rows().items():
            console.print(f"tolerance: table {self.policy.dtype} {kind} rtol {t.rtol:g}: {t.reason}", markup=False)
        for e in self.policy.entries:
            console.print(f"declared tolerance {e.check} [{e.field}] rtol {e.rtol:g}: {e.reason}", markup=False)
        for name in self.unused_tolerances:
            console.print(f"[yellow]declared tolerance {escape(name)} matched no compared field[/yellow]")
        for text in self.warnings:
            console.print(f"[yellow]warning: {escape(text)}[/yellow]")
        for r in self.failures:
            console.print(f"[red]{escape(r.check)}: {r.status}[/red] {escape(r.message)}")
            if r.case_note:
                console.print(f"case: {r.case_note}", markup=False, highlight=False)
            console.print("repro:\n" + r.repro, markup=False, highlight=False)
        console.print(", ".join(f"{k} {v}" for k, v in sorted(self.counts().items())))
        console.print(f"minimum coverage: {self.compared} check(s) compared, {self.required} required", markup=False)
        for problem in self.coverage_problems():
            console.print(f"[red]below the minimum coverage: {escape(problem)}[/red]")
        if self.properties is not None:
            self._render_properties(console)
        colour = "red" if self.exit_code != OK else "green"
        console.print(f"[{colour}]{escape(self.verdict())}[/{colour}]")

    def _render_properties(self, console: Console) -> None:
        table = Table(title=f"property mode: {self.port}")
        for col in ("claim", "property", "status", "message"):
            table.add_column(col, overflow="fold")
        colour = {"pass": "green", "fail": "red"}
        for p in self.properties or ():
            c = colour.get(p.status, "dim")
            table.add_row(escape(p.claim), escape(p.name), f"[{c}]{p.status}[/{c}]", escape(_property_note(p)))
        console.print(table)
        for p in self.property_failures:
            console.print(f"[red]property {escape(p.claim)}: fail[/red] {escape(p.message)}")
            parts = p.failures or ()
            for i, f in enumerate(parts, 1):
                head = f"failure {i} of {len(parts)}: " if len(parts) > 1 else ""
                console.print(f"{head}{f.message}", markup=False, highlight=False)
                console.print("falsifying example:\n" + f.falsifying_example, markup=False, highlight=False)
            if not parts:
                console.print("falsifying example:\n" + p.falsifying_example, markup=False, highlight=False)
            if p.repro:
                console.print(f"reproduce (seed {p.seed}):\n{p.repro}", markup=False, highlight=False)


def _property_note(p: PropertyResult) -> str:
    if p.message:
        return p.message
    return f"reference's {', '.join(p.reference_ops)}" if p.reference_ops else ""


def _cell(text: str) -> str:
    """``text`` in one Markdown table cell (or line): no line breaks, no column separators."""
    return " ".join(text.split()).replace("|", "\\|")


__all__ = ["DEFAULT_COVERAGE_RULE", "Report"]
