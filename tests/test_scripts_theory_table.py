"""scripts/theory_table.py says what it changed in docs/theory.md (it printed nothing, though the README
says each of the scripts run on purpose prints a table), and rewrites only the code and tests cells.
Run on a copy of docs/theory.md with the claim markers given (no pytest collection)."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from _snippets import load_script

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    return load_script("theory_table")


def _markers_as_documented(text: str) -> dict[str, dict[str, list[str]]]:
    """The claim -> module -> tests map that the table's tests cells already state."""
    found: dict[str, dict[str, list[str]]] = {}
    for line in text.split("\n"):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and re.fullmatch(r"[DGR]\d", cells[0]):
            found[cells[0]] = {"tests/test_x.py": [f"tests/test_x.py::{n}" for n in re.findall(r"`([^`]*)`", cells[8])]}
    return found


def test_prints_the_changed_cells_then_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    copy = tmp_path / "theory.md"
    text = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    copy.write_text(text, encoding="utf-8")
    found = _markers_as_documented(text)
    assert found["D1"]["tests/test_x.py"], "D1 has documented tests (the premise)"
    dropped = found["D1"]["tests/test_x.py"].pop(0).split("::")[-1]
    found["D1"]["tests/test_x.py"].append("tests/test_x.py::test_new_for_d1[case]")
    monkeypatch.setattr(script, "THEORY", copy)
    monkeypatch.setattr(script, "collect_claim_tests", lambda tests_dir: found)

    script.main()
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("D1 ")]
    assert len(rows) == 1
    assert rows[0][:2] == ["D1", "tests"]
    assert "+test_new_for_d1" in out
    assert f"-{dropped}" in out
    assert "rewrote 1 cell(s) of 1 claim(s)" in out
    new = copy.read_text(encoding="utf-8")
    assert "`test_new_for_d1`" in new
    assert f"`{dropped}`" not in new.split("\n| D1 |")[1].split("\n")[0]

    script.main()
    assert "theory.md: unchanged" in capsys.readouterr().out
    assert copy.read_text(encoding="utf-8") == new


def test_a_rewrite_of_spacing_only_is_said_not_called_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every cell agrees but a claim row is spaced differently: the script rewrites the row and said
    "unchanged" (a reviewer's finding); it now says it rewrote the spacing, and a second run is unchanged."""
    script = _script()
    copy = tmp_path / "theory.md"
    text = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    assert "\n| D1 | " in text
    copy.write_text(text.replace("\n| D1 | ", "\n|  D1 |  ", 1), encoding="utf-8")
    monkeypatch.setattr(script, "THEORY", copy)
    monkeypatch.setattr(script, "collect_claim_tests", lambda tests_dir: _markers_as_documented(text))

    script.main()
    assert "theory.md: rewrote the claim rows' spacing only" in capsys.readouterr().out
    assert copy.read_text(encoding="utf-8") == text
    script.main()
    assert "theory.md: unchanged" in capsys.readouterr().out
