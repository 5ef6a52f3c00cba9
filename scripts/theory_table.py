"""Rewrite the code and tests columns of docs/theory.md's claim table from the registry and the suite's
``claim`` markers (tests/test_registry.py fails until they agree). Run on purpose:

    .venv/bin/python scripts/theory_table.py

Prints a table of the claims whose code or tests cell it changed (claim, column, entries before and
after, what was added and removed), or that docs/theory.md is unchanged; the file is written only when
something changed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ddcl_incrt.claim_tests import collect_claim_tests
from reference.claims.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
COLUMNS = {6: "code", 8: "tests"}  # the table's cells this script owns, by index


@dataclass(frozen=True)
class CellChange:
    """One rewritten cell: the claim, its column and the backquoted entries before and after."""

    claim: str
    column: str
    before: tuple[str, ...]
    after: tuple[str, ...]


def _entries(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]*)`", cell))


def rewrite(text: str, found: Mapping[str, Mapping[str, list[str]]]) -> tuple[str, list[CellChange]]:
    """``text`` (docs/theory.md) with every claim row's code and tests cells rebuilt from the registry
    and ``found`` (claim id -> test module -> test names), and the cells that changed."""
    lines: list[str] = []
    changes: list[CellChange] = []
    for line in text.split("\n"):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and re.fullmatch(r"[DGR]\d", cells[0]):
            claim = REGISTRY[cells[0]]
            old = list(cells)
            cells[6] = ", ".join(f"`{n}`" for n in claim.implementation)
            names = sorted({n.split("::")[-1].split("[")[0] for ids in found.get(claim.id, {}).values() for n in ids})
            cells[8] = ", ".join(f"`{n}`" for n in names)
            for index, column in COLUMNS.items():
                if cells[index] != old[index]:
                    changes.append(CellChange(claim.id, column, _entries(old[index]), _entries(cells[index])))
            line = "| " + " | ".join(cells) + " |"
        lines.append(line)
    return "\n".join(lines), changes


def print_changes(changes: list[CellChange], path: Path, rewritten: bool) -> None:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if not changes:
        # a row whose cells all agree can still be respaced: the file was written, and says so
        print(
            f"{shown}: "
            + ("rewrote the claim rows' spacing only" if rewritten else "unchanged")
            + " (every code and tests cell already agrees)"
        )
        return
    print(f"{'claim':6} {'column':6} {'before':>6} {'after':>6}  added / removed")
    for c in changes:
        added = sorted(set(c.after) - set(c.before))
        removed = sorted(set(c.before) - set(c.after))
        what = ", ".join([f"+{n}" for n in added] + [f"-{n}" for n in removed]) or "reordered or reformatted"
        print(f"{c.claim:6} {c.column:6} {len(c.before):>6} {len(c.after):>6}  {what}")
    print(f"{shown}: rewrote {len(changes)} cell(s) of {len({c.claim for c in changes})} claim(s)")


def main(path: Path | None = None) -> int:
    path = THEORY if path is None else path
    text = path.read_text(encoding="utf-8")
    new, changes = rewrite(text, collect_claim_tests(ROOT / "tests"))
    if new != text:
        path.write_text(new, encoding="utf-8")
    print_changes(changes, path, new != text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
