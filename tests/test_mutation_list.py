"""The curated mutant list (scripts/mutation/mutants.toml) stays applicable to the code: every mutant's
``find`` text occurs exactly once in its file, so the harness (run on purpose, not in CI) never meets
a stale mutant. A stale one is what a refactor leaves behind silently: the harness refuses it, but
only when someone runs it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _harness() -> ModuleType:
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


@pytest.mark.parametrize(
    "argv",
    [
        ["--only", "d3-descent-halved"],
        ["--file", "reference/optim.py"],
        ["--tests", "tests/test_optim.py"],
        ["--mutants", "other.toml"],
    ],
)
def test_a_partial_run_never_replaces_the_full_runs_record(argv: list[str]) -> None:
    """The documented `--only d3-descent-halved` example overwrote the tracked last_run.json with a
    one-mutant run; a partial run now writes the git-ignored runs/mutation/last_partial_run.json."""
    harness = _harness()
    out = harness.output_path(harness.build_parser().parse_args(argv))
    assert out == ROOT / "runs" / "mutation" / "last_partial_run.json"
    assert out != harness.DEFAULT_OUT


def test_only_a_full_run_writes_last_run_json_and_out_wins() -> None:
    harness = _harness()
    parser = harness.build_parser()
    assert harness.output_path(parser.parse_args([])) == ROOT / "scripts" / "mutation" / "last_run.json"
    assert harness.output_path(parser.parse_args(["--jobs", "2"])) == harness.DEFAULT_OUT
    chosen = Path("/tmp/x.json")
    assert harness.output_path(parser.parse_args(["--only", "a", "--out", str(chosen)])) == chosen
    assert harness.output_path(parser.parse_args(["--out", str(chosen)])) == chosen
