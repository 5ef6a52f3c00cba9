"""Shared reporting helpers of the run scripts: rich progress, per-run statistics, markdown tables."""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from reference.incrt.controller import EventKind
from training.record import RunRecord
from training.trainer import ProgressInfo

CLAIMS = ("D1", "D5", "G1", "G5", "G6")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Any]:
    """A rich progress bar; yields a callback for :func:`training.trainer.train`'s ``progress``."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(p: ProgressInfo) -> None:
            if p.step % 10 == 0 or p.step == p.steps:
                lam = "—" if p.lam_max is None else f"{p.lam_max / p.theta:.2f}"
                info = f"L={p.L:.3f} heads={p.n_heads} K={p.n_prototypes} λmax/θ={lam}"
                bar.update(task, completed=p.step, info=info)

        yield update


def birth_summary(rec: RunRecord) -> str:
    """``step:λ_birth(margin)`` for every birth."""
    parts = []
    for e in rec.births():
        parts.append(f"{e.step}: {e.lam_birth:.3g} (+{e.margin:.2g})")
    return "; ".join(parts) if parts else "none"


def static_count(rec: RunRecord, index: int) -> int:
    """``#{λ_i(A_res) > θ}`` at check ``index`` (the static count ``m*`` of claim G3 for that operator)."""
    c = rec.checks[index]
    return sum(1 for lam in c.spectrum if lam > c.theta)


def ratio_trajectory(rec: RunRecord, every: int) -> str:
    """``λ_max(A_res)/θ`` at every ``every`` steps (checks at those steps), compact."""
    pts = [f"{c.step}:{c.lam_max / c.theta:.2f}" for c in rec.checks if c.step % every == 0]
    return " ".join(pts)


def trajectory_stats(rec: RunRecord) -> dict[str, Any]:
    """Statistics of ``λ_max(A_res)/θ`` over the checks, for the report."""
    r = np.array([c.lam_max / c.theta for c in rec.checks])
    first_birth = next((e.step for e in rec.births()), None)
    after = np.array([c.lam_max / c.theta for c in rec.checks if first_birth is not None and c.step > first_birth])
    g0 = [c.head_strength.get(0, math.nan) for c in rec.checks]
    return {
        "first": float(r[0]) if r.size else math.nan,
        "max": float(r.max()) if r.size else math.nan,
        "final": float(r[-1]) if r.size else math.nan,
        "checks_above": int(np.sum(r > 1.0)),
        "checks": int(r.size),
        "max_after_first_birth": float(after.max()) if after.size else math.nan,
        "static_m_first": static_count(rec, 0) if rec.checks else 0,
        "static_m_final": static_count(rec, -1) if rec.checks else 0,
        "G0_first": float(g0[0]) if g0 else math.nan,
        "G0_final": float(g0[-1]) if g0 else math.nan,
    }


def invariant_cells(rec: RunRecord) -> tuple[int, int, dict[str, str]]:
    """Total checks, violations, and per claim ``count/violations/tightest fraction of a bound used``."""
    summary = rec.summary()
    total = sum(s.count for s in summary.values())
    bad = sum(s.violations for s in summary.values())
    cells = {}
    for claim in CLAIMS:
        s = summary.get(claim)
        cells[claim] = (
            "—"
            if s is None
            else f"{s.count}/{s.violations}/"
            + ("—" if s.tightest is None else f"{s.tightest:.1%}")
            + (f" ({s.uncertified} uncertified)" if s.uncertified else "")
        )
    return total, bad, cells


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def environment() -> dict[str, str]:
    return {"python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform()}


def config_dict(rec: RunRecord) -> dict[str, Any]:
    return {
        "layer": asdict(rec.layer_config),
        "train": asdict(rec.train_config),
        "growth": asdict(rec.growth_config),
    }


def events_count(rec: RunRecord, kind: EventKind) -> int:
    return sum(1 for e in rec.events if e.kind is kind)
