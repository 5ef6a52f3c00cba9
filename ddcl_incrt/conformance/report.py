"""The conformance report: per check pass/fail, the worst error divided by its tolerance, the near-tie
notes, what the port did not cover, the declared tolerances with their reasons, and a copy-paste
reproduction for every failure; as a terminal table (rich), JSON and Markdown."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ddcl_incrt.conformance.compare import FAILING, CheckResult, TolerancePolicy
from ddcl_incrt.conformance.operations import groups


@dataclass
class Report:
    """Everything one run of the kit found. ``exit_code`` is 1 when any check failed, errored or
    passed while declared an expected failure."""

    port: str
    source: str
    policy: TolerancePolicy
    results: list[CheckResult]
    uncovered_operations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unused_tolerances: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status in FAILING]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

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
            "counts": self.counts(),
            "coverage": self.covered_summary(),
            "uncovered_operations": self.uncovered_operations,
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
            "Result: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) + ".",
            "",
            "## Coverage",
            "",
            "| group | covered |",
            "|---|---|",
            *[f"| {g} | {s} |" for g, s in self.covered_summary().items()],
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
            ratio = "" if w is None else ("mismatch" if math.isinf(w.ratio) else f"{w.ratio:.3g}")
            lines.append(f"| `{r.check}` | {r.status} | {'' if w is None else w.field} | {ratio} | {r.note} |")
        lines.append("")
        for r in self.failures:
            lines += [f"### {r.check}: {r.status}", "", r.message, "", "```python", r.repro, "```", ""]
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
            ratio = "" if w is None else ("mismatch" if math.isinf(w.ratio) else f"{w.ratio:.3g}")
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
            console.print("repro:\n" + r.repro, markup=False, highlight=False)
        console.print(", ".join(f"{k} {v}" for k, v in sorted(self.counts().items())))


__all__ = ["Report"]
