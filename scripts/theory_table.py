"""Rewrite the code and tests columns of docs/theory.md's claim table from the registry and the suite's
``claim`` markers (tests/test_registry.py fails until they agree). Run on purpose:

    .venv/bin/python scripts/theory_table.py
"""

from __future__ import annotations

import re
from pathlib import Path

from ddcl_incrt.claim_tests import collect_claim_tests
from reference.claims.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"


def main() -> None:
    found = collect_claim_tests(ROOT / "tests")
    lines = []
    for line in THEORY.read_text(encoding="utf-8").split("\n"):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and re.fullmatch(r"[DGR]\d", cells[0]):
            claim = REGISTRY[cells[0]]
            cells[6] = ", ".join(f"`{n}`" for n in claim.implementation)
            names = sorted({n.split("::")[-1].split("[")[0] for ids in found.get(claim.id, {}).values() for n in ids})
            cells[8] = ", ".join(f"`{n}`" for n in names)
            line = "| " + " | ".join(cells) + " |"
        lines.append(line)
    THEORY.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
