"""``ddcl-incrt bench``: the ``--quick`` smoke run writes a complete JSON report whose every timing is a
positive finite number, with its evidence (CPU, load, paired ratios, spread warnings); the baseline's
sizing rules; pairing (``A B A B``, drift cancels); the spread warning's threshold; the CPU evidence
read from ``/proc/cpuinfo``; ``--profile``; the bench never imports the CLI; the message when torch is
missing."""

from __future__ import annotations

import ast
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddcl_incrt.cli import main as cli_main

SECTIONS = (
    "machine",
    "settings",
    "load",
    "training_step",
    "growth_check",
    "reference_speedup",
    "scaling",
    "flops",
    "notes",
    "spread_warnings",
)
ROOT = Path(__file__).resolve().parents[1]


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
    # the evidence: the CPU, the load around the run and each section, paired ratios, the spread check
    cpu = report["machine"]["cpu"]
    assert set(cpu) >= {"source", "model", "flags", "simd", "torch_cpu_capability"}
    if Path("/proc/cpuinfo").exists():
        assert cpu["source"] == "/proc/cpuinfo"
        assert cpu["model"]
        assert cpu["flags"]
    load = report["load"]
    assert set(load["sections"]) == {"training_step", "growth_check", "reference_speedup", "scaling", "flops"}
    if hasattr(__import__("os"), "getloadavg"):
        assert len(load["before"]) == 3
        assert len(load["after"]) == 3
        assert any(n.startswith("load average") for n in report["notes"])
    for r in report["training_step"] + report["growth_check"]:
        p = r["paired_ratio"]
        assert p["pairs"] == report["settings"]["repeats"]
        assert p["order"].startswith("ABAB")
        assert p["q1"] <= p["median"] <= p["q3"]
    assert isinstance(report["spread_warnings"], list)
    assert "profile" not in report


def test_an_interrupted_bench_names_the_report_of_the_sections_it_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the second section: the report holds the first ("complete": false) and the one line says
    so and where, instead of "nothing was saved"; Ctrl-C in the first: nothing was saved, and no file."""
    pytest.importorskip("torch")
    from ddcl_incrt import bench
    from ddcl_incrt.bench import command

    def interrupted() -> Any:
        raise KeyboardInterrupt

    for first_done, expected in (
        (True, "the sections measured before it (scaling) are in"),
        (False, "nothing was saved"),
    ):
        sections = [("scaling", lambda: [])] if first_done else []
        monkeypatch.setattr(command, "_sections", lambda opts, report, status, s=sections: [*s, ("flops", interrupted)])
        monkeypatch.setattr(command, "print_section", lambda report, key, console: None)
        out = tmp_path / f"bench-{first_done}.json"
        assert bench.main(["--quick", "--out", str(out), "--device", "cpu"]) == 130
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert expected in line
        if first_done:
            assert str(out) in line
            report = json.loads(out.read_text(encoding="utf-8"))
            assert report["complete"] is False
            assert report["scaling"] == []
            assert "flops" not in report
        else:
            assert not out.exists()
    # after the last section: the report file is complete, and the line says so
    monkeypatch.setattr(command, "_sections", lambda opts, report, status: [("scaling", lambda: [])])
    monkeypatch.setattr(command, "print_notes", lambda report, console: interrupted())
    out = tmp_path / "bench-complete.json"
    assert bench.main(["--quick", "--out", str(out), "--device", "cpu"]) == 130
    assert f"the complete report is in {out}" in capsys.readouterr().err
    assert json.loads(out.read_text(encoding="utf-8"))["complete"] is True


def test_measure_paired_alternates_a_and_b_and_its_ratios_cancel_drift() -> None:
    """Warm-up A, warm-up B, then A B A B …; the machine slows down 3× between pairs (a planted drift):
    each timing spreads wide, each pair's ratio is exactly A's cost over B's."""
    pytest.importorskip("torch")
    from ddcl_incrt.bench import measure_paired, spread_warnings

    now, speed, calls = [0.0], [1.0], []

    def work(name: str, cost: float) -> None:
        calls.append(name)
        now[0] += cost * speed[0]

    def drift(name: str) -> None:
        if name == "B":  # after each pair
            speed[0] *= 3.0

    paired = measure_paired(
        lambda: work("a", 2.0),
        lambda: work("b", 1.0),
        warmup=2,
        repeats=4,
        device="cpu",
        after_each=drift,
        clock=lambda: now[0],
    )
    assert calls == ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b", "a", "b"]
    assert paired.order == ("A", "B") * 4
    assert paired.a.samples_s == (2.0, 6.0, 18.0, 54.0)
    assert paired.ratios == (2.0, 2.0, 2.0, 2.0)
    assert paired.ratio_json()["median"] == 2.0
    assert paired.ratio_json()["order"] == "ABABABAB"
    report = {"training_step": [{"label": "planted", "dtype": "float32", "mode": "eager", "a": paired.a.to_json()}]}
    assert len(spread_warnings(report)) == 1


def test_the_spread_warning_fires_above_the_median_and_not_just_below() -> None:
    pytest.importorskip("torch")
    from ddcl_incrt.bench import Timing, spread_warnings, wide_spread

    wide = Timing(samples_s=(0.5, 1.0, 1.5 + 1e-9))  # median 1, spread 1 + 1e-9
    narrow = Timing(samples_s=(0.5, 1.0, 1.5 - 1e-9))  # median 1, spread 1 - 1e-9
    assert wide_spread(wide.to_json())
    assert not wide_spread(narrow.to_json())
    assert wide.to_json()["spread_over_median"] > 1.0 > narrow.to_json()["spread_over_median"]
    report = {
        "training_step": [
            {"label": "digits H=1", "dtype": "float32", "mode": "eager", "ours": {"timing": wide.to_json()}},
            {"label": "digits H=4", "dtype": "float32", "mode": "eager", "ours": {"timing": narrow.to_json()}},
        ],
        "growth_check": [
            {"label": "digits H=1", "tracker_steps": 20, "check_invariants": True, "check": narrow.to_json()}
        ],
    }
    warnings = spread_warnings(report)
    assert len(warnings) == 1
    assert warnings[0].startswith("training_step[digits H=1 float32 eager].ours.timing: spread")


def test_cpu_evidence_is_read_from_cpuinfo_and_falls_back_to_platform(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ddcl_incrt.bench import cpu_info

    planted = tmp_path / "cpuinfo"
    planted.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Planted Xeon 9999\ncpu MHz\t\t: 2100.000\n"
        "flags\t\t: fpu sse4_2 avx2 fma avx512f\n\nprocessor\t: 1\nmodel name\t: Another One\n",
        encoding="utf-8",
    )
    cpu = cpu_info(planted)
    assert (cpu["source"], cpu["model"], cpu["vendor"], cpu["mhz"]) == (
        str(planted),
        "Planted Xeon 9999",
        "GenuineIntel",
        2100.0,
    )
    assert cpu["flags"] == ["avx2", "avx512f", "fma", "fpu", "sse4_2"]
    assert cpu["simd"] == ["sse4_2", "avx2", "fma", "avx512f"]
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\n", encoding="utf-8")
    assert cpu_info(arm)["simd"] == ["asimd", "sve"]
    missing = cpu_info(tmp_path / "absent")
    assert (missing["source"], missing["flags"], missing["simd"]) == ("platform", None, [])


def test_profile_prints_and_records_the_top_operators_of_ours_and_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Eager (compilation costs tens of seconds on a small machine): the operators and their counts;
    graph breaks and recompiles are zero without dynamo."""
    pytest.importorskip("torch")
    from ddcl_incrt import bench

    out = tmp_path / "profile.json"
    assert bench.main(["--quick", "--profile", "--no-compile", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["complete"] is True
    assert report["settings"]["profile"] is True
    assert "training_step" not in report
    assert "growth_check" not in report
    rows = report["profile"]
    assert [(r["label"], r["who"], r["mode"]) for r in rows] == [
        ("digits H=4", "ours", "eager"),
        ("digits H=4", "baseline", "eager"),
    ]
    for r in rows:
        assert r["ops_dispatched"] >= r["ops_top_level"] > 0
        assert r["distinct_ops"] > 0
        assert 0 < len(r["top_by_self_cpu"]) <= bench.PROFILE_TOP
        selfs = [op["self_cpu_ms"] for op in r["top_by_self_cpu"]]
        assert selfs == sorted(selfs, reverse=True)
        assert (r["graph_breaks"], r["recompiles"], r["graphs_first_call"]) == (0, 0, 0)
    # ours dispatches more operators than the baseline's fused modules (the per-head stacks, the prototypes)
    assert any(op["name"].startswith("aten::") for op in rows[0]["top_by_self_cpu"])
    printed = capsys.readouterr().out
    assert "Profile: the training step under torch.profiler" in printed
    assert "Profile digits H=4 ours eager: top operators by self CPU time, per step" in printed
    assert "Profile digits H=4 baseline eager: top operators by self CPU time, per step" in printed


def test_dynamo_counters_see_a_graph_break() -> None:
    """The counters the profile reads: a planted ``graph_break`` in a compiled function (dynamo's eager
    backend: no inductor compilation) is counted, with its reason."""
    torch = pytest.importorskip("torch")
    from ddcl_incrt.bench.profile import counter_delta, dynamo_counters

    def f(x: Any) -> Any:
        y = x + 1
        torch._dynamo.graph_break()
        return y * 2

    torch._dynamo.reset()
    before = dynamo_counters()
    torch.compile(f, backend="eager")(torch.ones(3))
    after = dynamo_counters()
    breaks = counter_delta(after, before, "graph_break")
    assert sum(breaks.values()) >= 1, after
    assert counter_delta(after, before, "stats").get("unique_graphs", 0) >= 2
    assert counter_delta(before, after, "graph_break") == {}


def test_the_bench_never_imports_the_cli() -> None:
    """The CLI imports the bench, never the reverse (the options live in ddcl_incrt.arguments)."""
    for path in (ROOT / "ddcl_incrt" / "bench").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "ddcl_incrt.cli" or n.startswith("ddcl_incrt.cli.") for n in names), path
            if isinstance(node, ast.ImportFrom) and node.module == "ddcl_incrt":
                assert "cli" not in {a.name for a in node.names}, path


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
    for name in [m for m in sys.modules if m == "ddcl_incrt.bench" or m.startswith("ddcl_incrt.bench.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(ddcl_incrt, "bench", raising=False)
    assert cli_main(["bench", "--quick"]) == 2
    assert "pip install torch==2.13.0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("threads", "cpus", "load", "device", "warns"),
    [
        pytest.param(2, 2, 1.0, "cpu", True, id="2-threads-2-cpus-load-1"),
        pytest.param(2, 2, 0.99, "cpu", False, id="load-just-below-one-process"),
        pytest.param(1, 2, 3.0, "cpu", False, id="one-thread-waits-for-nobody"),
        pytest.param(2, 4, 2.0, "cpu", False, id="room-for-the-threads"),
        pytest.param(2, 4, 2.01, "cpu", True, id="just-no-room"),
        pytest.param(2, 2, 3.0, "cuda", False, id="cuda"),
        pytest.param(2, 2, None, "cpu", False, id="no-load-average"),
    ],
)
def test_the_bench_warns_when_its_threads_compete_with_the_load_before_it(
    threads: int, cpus: int, load: float | None, device: str, warns: bool
) -> None:
    """Under a load of 2.4–4 on 2 vCPUs a 2-thread digits step took 488 ms against 4.4 ms with one thread:
    the warning names the cause and the remedy; the load after the run (raised by the bench itself) is
    not counted."""
    pytest.importorskip("torch")
    from ddcl_incrt.bench.report import competing_threads, notes

    report: dict[str, Any] = {
        "settings": {"threads": threads},
        "machine": {"cpus_usable": cpus, "device": device},
        "load": {"before": None if load is None else [load, load, load], "after": [9.0, 9.0, 9.0]},
    }
    warning = competing_threads(report)
    assert (warning is not None) is warns
    if warning:
        assert warning.startswith(f"{threads} threads on {cpus} usable CPUs under a load average of {load:.2f}")
        assert "--threads 1" in warning
        assert warning in notes(report)
