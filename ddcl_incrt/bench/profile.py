"""``ddcl-incrt bench --profile``: where the time of a training step goes, ours and the baseline's,
before any timing is read. Per configuration (digits and mid-size, float32; the digits size alone with
``--quick``), each step is built as the timed sections build it (:mod:`ddcl_incrt.bench.steps`),
compiled unless ``--no-compile``, warmed up, and ``repeats`` steps (3 with ``--quick``, 20 by default)
are run under :mod:`torch.profiler`; every figure is per step (the totals over the steps divided by
their number, so that a step preempted by another process weighs little):

* the top operators by self CPU time (``key_averages``), with their call counts;
* the number of operators dispatched (profiler events named ``aten::``, nested calls included) and of
  those dispatched from Python or autograd directly (no ``aten::`` caller), the top-level count;
* dynamo's counters (``torch._dynamo.utils.counters``) over the warm-up and the profiled step: graph
  breaks (with their reasons), graphs compiled by the first call, and graphs compiled after it
  (recompiles), the profiled step's own included (a recompile there means the table shows compilation).

A profiled step runs slower than an unprofiled one (every operator is recorded), so its times are for
the shares, not for comparison with the timed sections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.profiler_util import FunctionEvent

from ddcl_incrt.bench.configs import PROFILE_TOP, WARMUP, BenchConfig, BenchOptions
from ddcl_incrt.bench.steps import BaselineStep, OursStep, dtype_name
from ddcl_incrt.bench.timing import sync

Counters = dict[str, dict[str, int]]


def dynamo_counters() -> Counters:
    """A copy of ``torch._dynamo.utils.counters`` (section → name → count)."""
    from torch._dynamo.utils import counters

    return {k: {str(n): int(c) for n, c in v.items()} for k, v in counters.items()}


def counter_delta(after: Counters, before: Counters, section: str) -> dict[str, int]:
    """The counts of ``section`` that grew from ``before`` to ``after``, by how much."""
    old = before.get(section, {})
    grown = {n: c - old.get(n, 0) for n, c in after.get(section, {}).items()}
    return {n: d for n, d in grown.items() if d > 0}


def _nested(event: FunctionEvent) -> bool:
    """Whether an ``aten::`` operator is called from inside another (a composite's decomposition)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False


def profile_once(step: Callable[[], object], device: str, steps: int = 1, top: int = PROFILE_TOP) -> dict[str, Any]:
    """``steps`` calls of ``step`` under :func:`torch.profiler.profile` (CPU, and CUDA on a GPU), every
    figure per step (the totals divided by ``steps``, so that one preempted call weighs ``1/steps``): the
    operators dispatched, the top-level ones, and the ``top`` entries of ``key_averages`` by self CPU
    time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    sync(device)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        sync(device)
    events = list(prof.events())
    aten = [e for e in events if e.name.startswith("aten::")]
    averages = prof.key_averages()
    total_us = sum(a.self_cpu_time_total for a in averages)
    ranked = sorted(averages, key=lambda a: a.self_cpu_time_total, reverse=True)[:top]
    return {
        "steps_profiled": steps,
        "ops_dispatched": len(aten) / steps,
        "ops_top_level": sum(1 for e in aten if not _nested(e)) / steps,
        "distinct_ops": len({e.name for e in aten}),
        "events": len(events) / steps,
        "self_cpu_total_ms": total_us / 1e3 / steps,
        "top_by_self_cpu": [
            {
                "name": a.key,
                "calls": a.count / steps,
                "self_cpu_ms": a.self_cpu_time_total / 1e3 / steps,
                "self_cpu_share": a.self_cpu_time_total / total_us if total_us > 0 else None,
                "cpu_total_ms": a.cpu_time_total / 1e3 / steps,
            }
            for a in ranked
        ],
    }


def profile_row(cfg: BenchConfig, who: str, opts: BenchOptions, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """``who`` (``"ours"`` or ``"baseline"``) at ``cfg``: built from a fresh dynamo cache, its first call
    (the compilation, when compiled) and the rest of the warm-up, then :func:`profile_once` over
    ``opts.n_repeats`` steps; dynamo's counters are read before, after the first call, before and after
    the profiled steps."""
    compiled = opts.profile_mode == "compiled"
    torch._dynamo.reset()
    step: OursStep | BaselineStep
    if who == "ours":
        step = OursStep(cfg, dtype, opts.device_name, compiled)
    else:
        step = BaselineStep(cfg, dtype, opts.device_name, compiled)
    c0 = dynamo_counters()
    step()
    c1 = dynamo_counters()
    for _ in range(WARMUP - 1):
        step()
    c2 = dynamo_counters()
    profiled = profile_once(step, opts.device_name, steps=opts.n_repeats)
    c3 = dynamo_counters()
    exc = step.compile_error()
    breaks = counter_delta(c3, c0, "graph_break")
    return {
        "config": cfg.to_json(),
        "label": cfg.label,
        "who": who,
        "dtype": dtype_name(dtype),
        "mode": opts.profile_mode,
        "fell_back_to_eager": exc is not None,
        "compile_error": None if exc is None else f"{type(exc).__name__}: {exc}",
        "graph_breaks": sum(breaks.values()),
        "graph_break_reasons": breaks,
        "graphs_first_call": counter_delta(c1, c0, "stats").get("unique_graphs", 0),
        "recompiles": counter_delta(c3, c1, "stats").get("unique_graphs", 0),
        "recompiles_in_profiled_steps": counter_delta(c3, c2, "stats").get("unique_graphs", 0),
        "frames_compiled": counter_delta(c3, c0, "frames").get("total", 0),
        "dynamo_recompile_counters": counter_delta(c3, c0, "recompiles"),
        **profiled,
    }


def profile_section(opts: BenchOptions, status: Callable[[str], None]) -> list[dict[str, Any]]:
    """Ours and the baseline at each of :meth:`BenchOptions.profile_configs`, one :func:`profile_row` each."""
    rows = []
    for cfg in opts.profile_configs():
        for who in ("ours", "baseline"):
            status(f"profile: {cfg.label} {who} ({opts.profile_mode})")
            rows.append(profile_row(cfg, who, opts))
    return rows


__all__ = ["Counters", "counter_delta", "dynamo_counters", "profile_once", "profile_row", "profile_section"]
