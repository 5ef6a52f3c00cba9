"""scripts/run_planted.py's growth-statistic table shows ``—`` with the reason where a statistic has
nothing to measure: its smoke run (``--steps 200 --seeds 1``, documented in its docstring) showed
``nan`` under "max λmax/θ after 1st birth" (the only birth is at the last check, step 200), and
summary.json held a bare ``NaN`` (not JSON)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from _snippets import load_script

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    return load_script("run_planted")


def test_the_smoke_run_shows_why_there_is_no_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["--steps", "200", "--seeds", "1", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"), parse_constant=pytest.fail)
    seed = summary["seeds"][0]
    assert seed["births"] >= 1
    table = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "nan" not in table.lower()
    row = next(line for line in table.splitlines() if line.startswith("| 0 | ") and "→" in line)
    assert seed["trajectory"]["max_after_first_birth"] is None  # null, not NaN
    assert "— (no check after the birth at step 200)" in row  # the one birth is at the last check


def _record(checks: list[SimpleNamespace], births: tuple[SimpleNamespace, ...]) -> SimpleNamespace:
    return SimpleNamespace(
        meta={"seed": 3}, growth_config=SimpleNamespace(theta=0.5), checks=checks, births=lambda: births
    )


def _check(step: int, lam: float) -> SimpleNamespace:
    return SimpleNamespace(step=step, lam_max=lam, theta=0.5, spectrum=(lam,), head_strength={0: 1.0})


def test_no_birth_no_check_and_a_value() -> None:
    script = _script()
    stats = script.trajectory_stats
    no_birth = _record([_check(50, 0.25)], ())
    assert script.trajectory_row(no_birth, stats(no_birth))[4] == "— (no birth)"
    no_check = _record([], ())
    row = script.trajectory_row(no_check, stats(no_check))
    assert not any("nan" in str(c) for c in row)
    assert row[2] == "—"
    born = _record([_check(50, 2.0), _check(100, 1.5), _check(150, 0.75)], (SimpleNamespace(step=50),))
    assert script.trajectory_row(born, stats(born))[4] == "3.00"
    assert math.isnan(stats(no_birth)["max_after_first_birth"])
