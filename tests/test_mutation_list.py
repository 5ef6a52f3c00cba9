"""The curated mutant list (scripts/mutation/mutants.toml) stays applicable to the code: every mutant's
``find`` text occurs exactly once in its file, so the harness (run on purpose, not in CI) never meets
a stale mutant. A stale one is what a refactor leaves behind silently: the harness refuses it, but
only when someone runs it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _harness():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("run_mutants", ROOT / "scripts" / "mutation" / "run_mutants.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_applies_to_the_current_code() -> None:
    harness = _harness()
    mutants = harness.load_mutants(ROOT / "scripts" / "mutation" / "mutants.toml", ROOT)
    assert len(mutants) >= 100


def test_a_stale_mutant_is_refused_naming_it(tmp_path: Path) -> None:
    harness = _harness()
    (tmp_path / "m.py").write_text("x = 1\n")
    (tmp_path / "list.toml").write_text(
        '[[mutant]]\nid = "stale"\nfile = "m.py"\nkind = "boundary"\nwhy = "planted"\n'
        'find = "x = 2"\nreplace = "x = 3"\n'
    )
    with pytest.raises(harness.MutantListError, match=r"mutant stale: `find` occurs 0 times in m\.py"):
        harness.load_mutants(tmp_path / "list.toml", tmp_path)
