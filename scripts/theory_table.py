"""Rewrite the code and tests columns of docs/theory.md's claim table from the registry and the suite's
``claim`` markers (tests/test_registry.py fails until they agree). Run on purpose:

    .venv/bin/python scripts/theory_table.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from reference.claims.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"


def marked_tests() -> dict[str, dict[str, list[str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "claims.json"
        env = {**os.environ, "DDCL_CLAIM_TESTS_OUT": str(out)}
        cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"]
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
        found: dict[str, dict[str, list[str]]] = json.loads(out.read_text(encoding="utf-8"))
    return found


def main() -> None:
    found = marked_tests()
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
