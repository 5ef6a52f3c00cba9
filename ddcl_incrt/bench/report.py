"""What the bench prints and writes: the header line, one rich table per section, the notes (with the
load and the rows whose spread is wider than their median), and the JSON report, written atomically
with NaN and infinity as null."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ddcl_incrt.bench.configs import MATMUL_N
from training.files import write_atomic


def notes(report: dict[str, Any]) -> list[str]:
    """What a reader of the tables must know: baseline head counts, failed compilations, recompiles while
    timed, stand-ins, the cache and thread settings, and the load average before and after the run."""
    found: list[str] = []
    seen = set()
    for r in report.get("training_step", ()):
        c, heads = r["config"], r["baseline"]["heads"]
        if heads != c["H"] and (c["H"], c["d"]) not in seen:
            seen.add((c["H"], c["d"]))
            found.append(
                f"H={c['H']} does not divide d={c['d']}: nn.TransformerEncoderLayer gets the nearest divisor, "
                f"{heads} heads (* in table 1)"
            )
        for who in ("ours", "baseline"):
            row = r[who]
            if row["fell_back_to_eager"]:
                what = f"{r['label']} {r['dtype']} {who}"
                found.append(f"{what}: compilation FAILED, timed eagerly: {row['compile_error']}")
            if r["mode"] == "compiled" and row["recompiles_while_timed"]:
                found.append(f"{r['label']} {r['dtype']} {who}: {row['recompiles_while_timed']} recompiles while timed")
    if "growth_check" in report:
        found.append(
            "growth check 'without trackers': TrainConfig rejects tracker_steps=0, so the fewest (1 iteration) "
            "stands in"
        )
    settings = report.get("settings", {})
    if settings.get("compile") and "training_step" in report:
        found.append(
            "compile s = first warm-up iteration − median, from a fresh dynamo cache per row; inductor's on-disk "
            "caches are used as found (a rerun compiles faster)"
        )
    if settings and settings.get("numpy_blas_threads") is None:
        found.append("threadpoolctl is not installed: NumPy's BLAS threads (the reference) were not limited")
    for r in report.get("profile", ()):
        if r["fell_back_to_eager"]:
            found.append(f"profile {r['label']} {r['who']}: compilation FAILED, profiled eagerly: {r['compile_error']}")
        if r["recompiles_in_profiled_steps"]:
            found.append(
                f"profile {r['label']} {r['who']}: the profiled steps recompiled ({r['recompiles_in_profiled_steps']} "
                "graphs): its table includes compilation"
            )
    load, cpus = report.get("load", {}), report.get("machine", {}).get("cpus_usable")
    if load.get("before") is not None and load.get("after") is not None:
        found.append(
            f"load average (1, 5, 15 min) {_load(load['before'])} before, {_load(load['after'])} after, on {cpus} "
            "usable CPUs"
            + (": the machine was busy, read every row as measured under load" if _busy(load, cpus) else "")
        )
    competing = competing_threads(report)
    if competing:
        found.append(competing)
    return found


def competing_threads(report: dict[str, Any]) -> str | None:
    """A warning when the bench's CPU threads compete with the load it found: with more than one thread,
    a 1-minute load average before the run of at least 1 (another process was running: an idle machine
    reads 0.3–0.7 here) which, added to ``--threads``, exceeds the usable CPUs. Only the load before the
    run counts: the bench's own threads raise the later ones. torch's intra-op threads wait for one
    another at every operator, so a thread that loses its CPU to another process stalls all of them: on
    this project's 2-vCPU machine, under a load of 2.4–4, a digits step took 488 ms with 2 threads and
    4.4 ms with 1 (docs/performance.md, "Threads"). None otherwise (one thread, a CUDA run, or room for
    the threads). The load average is the kernel's, machine-wide: in a container given fewer CPUs than
    the host it also counts processes that run on the host's other CPUs, so there the warning can fire
    where nothing competes for the container's own."""
    s, m = report.get("settings", {}), report.get("machine", {})
    threads, cpus = s.get("threads"), m.get("cpus_usable")
    if not threads or threads < 2 or not cpus or m.get("device") != "cpu":
        return None
    before = report.get("load", {}).get("before")
    if not before or before[0] < 1.0 or before[0] + threads <= cpus:
        return None
    return (
        f"{threads} threads on {cpus} usable CPUs under a load average of {before[0]:.2f}: the threads compete with "
        "other processes and wait for each other at every operator, so a step can take many times longer than "
        "with --threads 1 (every ratio is then a measure of that contention, not of the code); rerun on an idle "
        "machine, or with --threads 1"
    )


def _load(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _busy(load: dict[str, Any], cpus: int | None) -> bool:
    """Whether the 1-minute load average before or after the run reached the usable CPUs' count."""
    limit = cpus or 1
    return any(load[k][0] >= limit for k in ("before", "after") if load.get(k))


def _finite(obj: object) -> object:
    """``obj`` with every NaN or infinity replaced by ``None`` (JSON has neither); the measured numbers
    are finite, so a replacement shows up in the file as a null where a number belongs."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_json_atomic(path: Path, obj: object) -> None:
    """``obj`` as JSON (NaN/inf as null) to a temporary file beside ``path``, then ``os.replace``: a reader
    never sees half a report."""
    path = Path(path)
    text = json.dumps(_finite(obj), indent=1, allow_nan=False)
    write_atomic(path, (text + "\n").encode("utf-8"))


def _ms(t: dict[str, Any]) -> str:
    def f(s: float) -> str:
        ms = 1e3 * s
        return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"

    return f"{f(t['median_s'])} ({f(t['min_s'])}–{f(t['max_s'])})"


def _paired_cell(p: dict[str, Any]) -> str:
    return f"{p['median']:.2f} ({p['q1']:.2f}–{p['q3']:.2f})"


def _compile_cell(row: dict[str, Any]) -> str:
    if row["fell_back_to_eager"]:
        return "[red]FAILED → eager[/red]"
    if row["compile_s"] is None:
        return "-"
    return f"{row['compile_s']:.1f}"


def header(report: dict[str, Any]) -> str:
    """One line: torch, the device, the CPU (model and vector flags), threads, repeats, compilation, and
    the load average when the run began."""
    s, m = report["settings"], report["machine"]
    cuda = f" ({m['cuda_device']})" if m["cuda_device"] and m["device"] == "cuda" else ""
    cpu = m.get("cpu", {})
    simd = f" [{' '.join(cpu['simd'])}]" if cpu.get("simd") else ""
    load = report.get("load", {}).get("before")
    return (
        f"torch {m['torch']} on {m['device']}{cuda}, CPU {cpu.get('model') or '?'}{simd}, {s['threads']} threads, "
        f"{m['cpu_count']} CPUs, {s['repeats']} repeats after {s['warmup']} warm-up, "
        f"compile {'on' if s['compile'] else 'off'}" + (f", load {_load(load)}" if load else "")
    )


def _training_table(report: dict[str, Any]) -> Table:
    t = Table(
        title="1. Training step (forward + backward + Adam): ours vs nn.TransformerEncoderLayer, "
        "ms median (min–max), timed as pairs A B A B; ratio = ours/baseline medians; paired = median of the "
        "pairs' ratios (q1–q3); compile s = ours / baseline"
    )
    for col in ("config", "B", "T", "d", "K", "H", "baseline heads", "ff", "dtype", "mode", "ours", "baseline"):
        t.add_column(col, overflow="fold")
    for col in ("ratio", "paired", "compile s"):
        t.add_column(col, overflow="fold")
    for r in report["training_step"]:
        c, o, b = r["config"], r["ours"], r["baseline"]
        t.add_row(
            c["name"],
            *(str(c[k]) for k in ("B", "T", "d", "K", "H")),
            str(b["heads"]) + ("*" if b["heads"] != c["H"] else ""),
            str(b["dim_feedforward"]),
            r["dtype"],
            r["mode"],
            _ms(o["timing"]),
            _ms(b["timing"]),
            f"{r['ratio_ours_over_baseline']:.2f}",
            _paired_cell(r["paired_ratio"]),
            f"{_compile_cell(o)} / {_compile_cell(b)}",
        )
    return t


def _growth_table(report: dict[str, Any]) -> Table:
    s = report["settings"]
    t = Table(
        title=f"2. Growth check (accelerated engine, one head, probe of {s['probe_size']}), ms median (min–max), "
        "timed as pairs with the step; check/step: ratio of medians, paired (q1–q3)"
    )
    for col in ("config", "tracker steps", "invariants", "check", "step (f32 eager)", "check/step"):
        t.add_column(col, overflow="fold")
    t.add_column(f"amortised over g={s['check_every']}", overflow="fold")
    t.add_column("events", overflow="fold")
    for r in report["growth_check"]:
        t.add_row(
            r["config"]["name"],
            str(r["tracker_steps"]),
            "on" if r["check_invariants"] else "off",
            _ms(r["check"]),
            _ms(r["step_float32_eager"]),
            f"{r['check_over_step']:.1f}× / {_paired_cell(r['paired_ratio'])}",
            f"{100 * r['amortised_over_g']:.1f}%",
            ", ".join(r["events_per_check"]) or "-",
        )
    return t


def _reference_table(report: dict[str, Any]) -> Table:
    t = Table(title="3. Speed-up over the NumPy reference (reference time / ours)")
    for col in ("config", "reference ms", "ours", "ours ms", "speed-up"):
        t.add_column(col, overflow="fold")
    for r in report["reference_speedup"]:
        for i, (what, o) in enumerate(r["ours"].items()):
            t.add_row(
                r["label"] if i == 0 else "",
                _ms(r["reference"]) if i == 0 else "",
                what + (" [red](compile FAILED → eager)[/red]" if o["fell_back_to_eager"] else ""),
                f"{1e3 * o['ours_median_s']:.2f}",
                f"{o['speedup']:.1f}×",
            )
    return t


def _scaling_table(report: dict[str, Any]) -> Table:
    t = Table(title="4. Scaling of our eager float32 step, one dimension doubled at a time")
    for col in ("variant", "B", "T", "d", "d_k", "K", "H", "ms", "× base", "FLOP × base"):
        t.add_column(col, overflow="fold")
    for r in report["scaling"]:
        c = r["config"]
        t.add_row(
            r["variant"],
            *(str(c[k]) for k in ("B", "T", "d", "d_k", "K", "H")),
            _ms(r["timing"]),
            f"{r['ratio_to_base']:.2f}",
            f"{r['flop_ratio_to_base']:.2f}",
        )
    return t


def _flops_table(report: dict[str, Any]) -> Table:
    fl = report["flops"]
    peaks = ", ".join(f"{dt} {p['flop_per_s'] / 1e9:.1f} GFLOP/s" for dt, p in fl["peak"].items())
    t = Table(title=f"5. Achieved FLOP/s of our step (3 × analytic forward) vs matmul {MATMUL_N}²: {peaks}")
    for col in ("config", "dtype", "mode", "MFLOP/step", "GFLOP/s", "% of peak"):
        t.add_column(col, overflow="fold")
    for r in fl["rows"]:
        t.add_row(
            r["label"],
            r["dtype"],
            r["mode"] + (" [red](compile FAILED → eager)[/red]" if r["fell_back_to_eager"] else ""),
            f"{r['flop_per_step'] / 1e6:.1f}",
            f"{r['flop_per_s'] / 1e9:.2f}",
            f"{100 * r['fraction_of_peak']:.1f}%",
        )
    return t


def _profile_table(report: dict[str, Any]) -> Table:
    t = Table(
        title="Profile: the training step under torch.profiler (float32), per step over the steps profiled; ops = aten "
        "operators dispatched (top-level: called from Python or autograd directly); graphs, breaks and recompiles "
        "from torch._dynamo.utils.counters"
    )
    for col in ("config", "step", "mode", "steps", "ops", "top-level", "distinct", "self CPU ms", "graph breaks"):
        t.add_column(col, overflow="fold")
    for col in ("graphs (1st call)", "recompiles"):
        t.add_column(col, overflow="fold")
    for r in report["profile"]:
        t.add_row(
            r["label"],
            r["who"],
            r["mode"] + (" [red](compile FAILED → eager)[/red]" if r["fell_back_to_eager"] else ""),
            str(r["steps_profiled"]),
            f"{r['ops_dispatched']:g}",
            f"{r['ops_top_level']:g}",
            str(r["distinct_ops"]),
            f"{r['self_cpu_total_ms']:.2f}",
            str(r["graph_breaks"]),
            str(r["graphs_first_call"]),
            str(r["recompiles"]),
        )
    return t


def profile_op_tables(report: dict[str, Any]) -> list[Table]:
    """Per profiled step, its top operators by self CPU time (name, calls, self ms, share, total ms), and
    the graph breaks' reasons when there were any."""
    tables = []
    for r in report.get("profile", ()):
        t = Table(title=f"Profile {r['label']} {r['who']} {r['mode']}: top operators by self CPU time, per step")
        for col in ("operator", "calls", "self CPU ms", "share", "CPU total ms"):
            t.add_column(col, overflow="fold")
        for op in r["top_by_self_cpu"]:
            share = op["self_cpu_share"]
            t.add_row(
                op["name"],
                f"{op['calls']:g}",
                f"{op['self_cpu_ms']:.3f}",
                "-" if share is None else f"{100 * share:.1f}%",
                f"{op['cpu_total_ms']:.3f}",
            )
        tables.append(t)
        if r["graph_break_reasons"]:
            b = Table(title=f"Profile {r['label']} {r['who']}: graph breaks")
            b.add_column("reason", overflow="fold")
            b.add_column("count")
            for reason, n in sorted(r["graph_break_reasons"].items(), key=lambda kv: -kv[1]):
                b.add_row(reason, str(n))
            tables.append(b)
    return tables


TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {  # section key → its table, in the order printed
    "training_step": _training_table,
    "growth_check": _growth_table,
    "reference_speedup": _reference_table,
    "scaling": _scaling_table,
    "flops": _flops_table,
    "profile": _profile_table,
}


def print_section(report: dict[str, Any], key: str, console: Console) -> None:
    """The table of section ``key`` (the profile's summary and its operators' tables)."""
    console.print(TABLES[key](report))
    if key == "profile":
        for table in profile_op_tables(report):
            console.print(table)


def print_tables(report: dict[str, Any], console: Console) -> None:
    """The header line, one rich table per section present in ``report`` (times in ms: median
    (min–max)), the notes and the spread warnings."""
    console.print(header(report), markup=False)
    for key in TABLES:
        if key in report:
            print_section(report, key, console)
    print_notes(report, console)


def print_notes(report: dict[str, Any], console: Console) -> None:
    """``note: …`` per note and ``warning: …`` per row whose spread is wider than its median."""
    for note in report.get("notes", ()):
        console.print(f"note: {note}", markup=False)
    for warning in report.get("spread_warnings", ()):
        console.print(f"warning: {warning}", markup=False)


__all__ = [
    "TABLES",
    "competing_threads",
    "header",
    "notes",
    "print_notes",
    "print_section",
    "print_tables",
    "profile_op_tables",
    "write_json_atomic",
]
