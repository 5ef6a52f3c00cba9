"""``ddcl-incrt bench``: the ``--quick`` smoke run writes a complete JSON report whose every timing is a
positive finite number; the baseline's sizing rules; the message when torch is missing."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddcl_incrt.cli import main as cli_main

SECTIONS = ("machine", "settings", "training_step", "growth_check", "reference_speedup", "scaling", "flops", "notes")


def timings(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(path, value)`` under a key ending in ``_s`` (list items one by one), anywhere in ``obj``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.endswith("_s") and isinstance(v, list):
                yield from ((f"{path}.{k}[{i}]", x) for i, x in enumerate(v))
            elif k.endswith("_s"):
                yield f"{path}.{k}", v
            else:
                yield from timings(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from timings(v, f"{path}[{i}]")


def test_quick_bench_writes_every_section_with_positive_finite_timings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from ddcl_incrt import bench

    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["schema"] == bench.SCHEMA
    assert set(SECTIONS) <= set(report)
    assert report["settings"]["quick"] is True
    assert report["settings"]["compile"] is False
    assert report["machine"]["torch_threads"] == 2
    assert {(r["dtype"], r["mode"]) for r in report["training_step"]} == {("float32", "eager"), ("float64", "eager")}
    assert all(not r["ours"]["fell_back_to_eager"] for r in report["training_step"])
    assert {(r["tracker_steps"], r["check_invariants"]) for r in report["growth_check"]} == {
        (20, False),
        (20, True),
        (1, False),
        (1, True),
    }
    assert [r["variant"] for r in report["scaling"]] == ["base", "T×2", "K×2", "H×2", "d×2"]
    assert [r["label"] for r in report["reference_speedup"]] == ["digits H=11"]
    assert report["reference_speedup"][0]["ours"]
    assert set(report["flops"]["peak"]) == {"float32", "float64"}
    found = dict(timings(report))
    assert len(found) > 50
    bad = {
        p: v for p, v in found.items() if v is not None and not (isinstance(v, float) and math.isfinite(v) and v > 0)
    }
    assert not bad, f"timings that are not positive finite numbers: {bad}"
    # None only where nothing was measured: no compile time in a --quick (eager) run
    assert all(p.endswith("compile_s") for p, v in found.items() if v is None)
    ratios = [r["fraction_of_peak"] for r in report["flops"]["rows"]] + [
        r["check_over_step"] for r in report["growth_check"]
    ]
    assert all(math.isfinite(x) and x > 0 for x in ratios)
    assert not list(tmp_path.glob("*.tmp")), "the temporary file of the atomic write was left behind"
    printed = capsys.readouterr().out
    for title in ("1. Training step", "2. Growth check", "3. Speed-up", "4. Scaling", "5. Achieved FLOP/s"):
        assert title in printed


def test_the_baselines_sizes() -> None:
    pytest.importorskip("torch")
    from ddcl_incrt.bench import baseline_heads, feedforward_width

    for d in (16, 64, 256):
        for K in (16, 32, 64):
            ff = feedforward_width(d, K)
            best = min(abs(2 * d * f + f + d - d * K) for f in range(1, 4 * K))
            assert abs(2 * d * ff + ff + d - d * K) == best
    assert (feedforward_width(16, 16), feedforward_width(64, 32)) == (7, 15)
    assert [baseline_heads(h, 16) for h in (1, 4, 11)] == [1, 4, 8]
    assert baseline_heads(8, 64) == 8


def test_bench_without_torch_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch made unimportable (``None`` in ``sys.modules``): exit code 2 and the pip command."""
    import ddcl_incrt

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "ddcl_incrt.bench", raising=False)
    monkeypatch.delattr(ddcl_incrt, "bench", raising=False)
    assert cli_main(["bench", "--quick"]) == 2
    assert "pip install torch==2.13.0" in capsys.readouterr().err
