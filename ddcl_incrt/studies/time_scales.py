"""Claim R3's study: the stability of joint training against the learning-rate ratio ``r = η_enc/η_P``.

The protocol (configuration, grid, arms, seeds, the stability criteria and the boundary) is fixed in
``docs/studies/time-scales.md``; this module carries it out. One run is one (arm, ratio, seed): the
audit's digits configuration trained by the accelerated engine in float32 with the arm's rates, then
judged by :func:`reference.coupling_statistics.stability_criteria` (every criterion's value is kept).
Results are ``measured``.

    python -m ddcl_incrt.studies.time_scales --out runs/time_scales [--quick] [--workers 2]

writes ``time_scales.json`` (every run), ``time_scales.md`` (tables) and ``time_scales.png`` (figure),
each atomically; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ddcl_incrt.arguments import path_argument, worker_count
from reference.coupling_statistics import (
    STABILITY_BOUNDS,
    STABILITY_CRITERIA,
    StabilityCriterion,
    stability_criteria,
    windowed_means,
)
from reference.optim import LearningRates
from reference.train_config import DEFAULT_LR
from training.configs import LAYERS, TRAIN
from training.data import named_dataset
from training.files import write_atomic
from training.record import RunRecord

SCHEMA = "ddcl-incrt time-scales study v1"
PROTOCOL = "docs/studies/time-scales.md"

# The protocol's grid: 11 log-spaced ratios 10^(k/2), k = -6..4 (0.001 to 100, half a decade apart).
RATIOS: tuple[float, ...] = tuple(10.0 ** (k / 2) for k in range(-6, 5))
# Arm A holds the audit's prototype rate; arm B holds the geometric mean of the audit's encoder and
# prototype rates, so both ends of the grid have one large rate.
ETA_P_FIXED = DEFAULT_LR.prototypes
GEOMETRIC_MEAN = math.sqrt(DEFAULT_LR.rest * DEFAULT_LR.prototypes)
ARM_P_FIXED = "P-fixed"
ARM_MEAN_FIXED = "mean-fixed"
ARMS: tuple[str, ...] = (ARM_P_FIXED, ARM_MEAN_FIXED)
STEPS = TRAIN.steps
LEARNED_FRACTION = 0.8  # "learned": test accuracy >= this fraction of the arm's best median
QUICK_RATIOS: tuple[float, ...] = (0.1, 10.0)
QUICK_STEPS = 100


def rates_for(arm: str, ratio: float) -> LearningRates:
    """The arm's rates at ``ratio = η_enc/η_P``; the log-temperatures follow the encoder (``η_τ = η_enc``)."""
    r = check_ratio("ratio", ratio)
    if arm == ARM_P_FIXED:
        eta_P = ETA_P_FIXED
    elif arm == ARM_MEAN_FIXED:
        eta_P = GEOMETRIC_MEAN / math.sqrt(r)
    else:
        raise ValueError(f"arm: expected one of {ARMS}, got {arm!r}")
    return LearningRates(rest=r * eta_P, prototypes=eta_P, temperatures=r * eta_P)


def check_ratio(name: str, value: object) -> float:
    """A learning-rate ratio: a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name}: a learning-rate ratio must be finite and > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ArmSpec:
    """One arm of the sweep: its name (:data:`ARMS`) and its seeds."""

    name: str
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.name not in ARMS:
            raise ValueError(f"ArmSpec.name: expected one of {ARMS}, got {self.name!r}")
        if not self.seeds:
            raise ValueError("ArmSpec.seeds: needs at least one seed")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"ArmSpec.seeds: seeds must be ints >= 0, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"ArmSpec.seeds: repeated seeds in {self.seeds!r}")


@dataclass(frozen=True)
class SweepConfig:
    """The grid of ratios, the arms with their seeds, the training steps and the worker processes."""

    ratios: tuple[float, ...] = RATIOS
    arms: tuple[ArmSpec, ...] = (ArmSpec(ARM_P_FIXED, tuple(range(10))), ArmSpec(ARM_MEAN_FIXED, tuple(range(5))))
    steps: int = STEPS
    workers: int = 2

    def __post_init__(self) -> None:
        if not self.ratios:
            raise ValueError("SweepConfig.ratios: the grid is empty; give at least one ratio")
        for i, r in enumerate(self.ratios):
            check_ratio(f"SweepConfig.ratios[{i}]", r)
        if list(self.ratios) != sorted(set(self.ratios)):
            raise ValueError(f"SweepConfig.ratios: must be strictly increasing, got {self.ratios!r}")
        if not self.arms:
            raise ValueError("SweepConfig.arms: needs at least one arm")
        if len({a.name for a in self.arms}) != len(self.arms):
            raise ValueError("SweepConfig.arms: an arm appears twice")
        # STABILITY_BOUNDS.windows windows of at least one step each
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < STABILITY_BOUNDS.windows:
            raise ValueError(f"SweepConfig.steps: must be an int >= {STABILITY_BOUNDS.windows}, got {self.steps!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"SweepConfig.workers: must be an int >= 1, got {self.workers!r}")

    @classmethod
    def quick(cls) -> SweepConfig:
        """The smoke test: 2 ratios × 1 seed per arm × 100 steps, in this process."""
        arms = (ArmSpec(ARM_P_FIXED, (0,)), ArmSpec(ARM_MEAN_FIXED, (0,)))
        return cls(ratios=QUICK_RATIOS, arms=arms, steps=QUICK_STEPS, workers=1)


@dataclass(frozen=True)
class RunResult:
    """One (arm, ratio, seed): the rates, every criterion, the outcome of training and its wall time.
    ``error`` is set (and ``criteria`` empty) when training raised: such a run is unstable."""

    arm: str
    ratio: float
    seed: int
    eta_enc: float
    eta_P: float
    criteria: tuple[StabilityCriterion, ...]
    test_accuracy: float
    n_heads: int
    n_prototypes: int
    births: int
    wall_time_s: float
    error: str | None = None

    @property
    def stable(self) -> bool:
        return self.error is None and all(c.holds for c in self.criteria)

    def criterion(self, name: str) -> StabilityCriterion | None:
        return next((c for c in self.criteria if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "ratio": self.ratio,
            "seed": self.seed,
            "eta_enc": self.eta_enc,
            "eta_P": self.eta_P,
            "stable": self.stable,
            "criteria": {
                c.name: {"value": c.value, "bound": c.bound, "upper": c.upper, "holds": c.holds} for c in self.criteria
            },
            "test_accuracy": self.test_accuracy,
            "n_heads": self.n_heads,
            "n_prototypes": self.n_prototypes,
            "births": self.births,
            "wall_time_s": self.wall_time_s,
            "error": self.error,
        }


def record_name(arm: str, ratio: float, seed: int) -> str:
    """The file name of one run's record under the study's ``records/`` folder."""
    return f"{arm}_r{ratio:.4g}_seed{seed}.json"


def run_one(arm: str, ratio: float, seed: int, steps: int, records_dir: Path | None = None) -> RunResult:
    """Train the audit's digits configuration with the arm's rates at ``ratio`` and judge the run; with
    ``records_dir``, the run's full record is saved there too (so the criteria can be recomputed)."""
    import torch

    from accelerated import trainer as acc_trainer

    torch.set_num_threads(1)
    lr = rates_for(arm, ratio)
    cfg = replace(TRAIN, steps=steps, seed=seed, lr=lr, check_invariants=False, eval_every=0)
    data = named_dataset("digits", seed)
    t0 = time.perf_counter()
    try:
        record = acc_trainer.train(
            data, LAYERS["digits"], cfg, rng=np.random.default_rng([seed, 1]), dtype=torch.float32
        )
    except Exception as exc:  # a run that raises is an unstable run; its error is reported
        wall = time.perf_counter() - t0
        return RunResult(arm, ratio, seed, lr.rest, lr.prototypes, (), math.nan, 0, 0, 0, wall, _error_text(exc))
    wall = time.perf_counter() - t0
    if records_dir is not None:
        record.save(records_dir / record_name(arm, ratio, seed))
    return replace(judge_record(arm, ratio, seed, record), wall_time_s=wall)


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------------------------------
# The grid's summaries: cells, "learned", boundaries
# --------------------------------------------------------------------------------------------------


def unstable_majority(stable_flags: Sequence[bool]) -> bool:
    """A ratio is unstable iff at least half its seeds are unstable."""
    if not stable_flags:
        raise ValueError("stable_flags: a cell needs at least one run")
    return 2 * sum(not s for s in stable_flags) >= len(stable_flags)


def boundaries(ratios: Sequence[float], unstable: Sequence[bool]) -> tuple[float | None, float | None]:
    """``(lower, upper)``: ``upper`` the smallest ratio such that it and every larger one are unstable,
    ``lower`` the largest ratio such that it and every smaller one are unstable (``None``: none)."""
    if len(ratios) != len(unstable):
        raise ValueError(f"unstable: length {len(unstable)} differs from ratios' {len(ratios)}")
    if not ratios:
        raise ValueError("ratios: the grid is empty")
    upper = None
    for r, u in zip(reversed(ratios), reversed(unstable), strict=True):
        if not u:
            break
        upper = r
    lower = None
    for r, u in zip(ratios, unstable, strict=True):
        if not u:
            break
        lower = r
    return lower, upper


@dataclass(frozen=True)
class Cell:
    """One (arm, ratio) over its seeds."""

    arm: str
    ratio: float
    runs: tuple[RunResult, ...]

    @property
    def unstable(self) -> bool:
        return unstable_majority([r.stable for r in self.runs])

    def passes(self, name: str) -> int:
        return sum(1 for r in self.runs if (c := r.criterion(name)) is not None and c.holds)

    def median_value(self, name: str) -> float:
        vals = [c.value for r in self.runs if (c := r.criterion(name)) is not None]
        return float(np.median(vals)) if vals else math.nan

    def median_test_accuracy(self) -> float:
        vals = [r.test_accuracy for r in self.runs if r.error is None]
        return float(np.median(vals)) if vals else math.nan


@dataclass(frozen=True)
class StudyResult:
    """Every run of the sweep, with the grid-level summaries the protocol defines."""

    config: SweepConfig
    runs: tuple[RunResult, ...]
    wall_time_s: float
    engine: str = "accelerated (PyTorch, float32, eager, CPU, 1 thread per run)"
    meta: dict[str, Any] = field(default_factory=dict)

    def cells(self, arm: str) -> tuple[Cell, ...]:
        out = []
        for r in self.config.ratios:
            runs = tuple(x for x in self.runs if x.arm == arm and x.ratio == r)
            if runs:
                out.append(Cell(arm, r, runs))
        return tuple(out)

    def arms(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.config.arms)

    def best_median_accuracy(self, arm: str) -> float:
        vals = [m for c in self.cells(arm) if math.isfinite(m := c.median_test_accuracy())]
        return max(vals) if vals else math.nan

    def learned(self, run: RunResult) -> bool:
        best = self.best_median_accuracy(run.arm)
        return run.error is None and math.isfinite(best) and run.test_accuracy >= LEARNED_FRACTION * best

    def boundaries(self, arm: str) -> tuple[float | None, float | None]:
        cells = self.cells(arm)
        return boundaries([c.ratio for c in cells], [c.unstable for c in cells])

    def to_dict(self) -> dict[str, Any]:
        arms: dict[str, Any] = {}
        for arm in self.arms():
            lower, upper = self.boundaries(arm)
            arms[arm] = {
                "lower_boundary": lower,
                "upper_boundary": upper,
                "unstable_ratios": [c.ratio for c in self.cells(arm) if c.unstable],
                "best_median_test_accuracy": self.best_median_accuracy(arm),
                "cells": [
                    {
                        "ratio": c.ratio,
                        "runs": len(c.runs),
                        "stable": sum(r.stable for r in c.runs),
                        "learned": sum(self.learned(r) for r in c.runs),
                        "unstable": c.unstable,
                        "passes": {name: c.passes(name) for name in STABILITY_CRITERIA},
                        "median_test_accuracy": c.median_test_accuracy(),
                        "median_wall_time_s": float(np.median([r.wall_time_s for r in c.runs])),
                    }
                    for c in self.cells(arm)
                ],
            }
        return {
            "schema": SCHEMA,
            "protocol": PROTOCOL,
            "label": "measured",
            "engine": self.engine,
            "config": {
                "ratios": list(self.config.ratios),
                "arms": {a.name: list(a.seeds) for a in self.config.arms},
                "steps": self.config.steps,
                "workers": self.config.workers,
                "eta_P_fixed": ETA_P_FIXED,
                "geometric_mean": GEOMETRIC_MEAN,
                "learned_fraction": LEARNED_FRACTION,
            },
            "bounds": asdict(STABILITY_BOUNDS),
            "arms": arms,
            "runs": [{**r.to_dict(), "learned": self.learned(r)} for r in self.runs],
            "wall_time_s": self.wall_time_s,
            "meta": self.meta,
        }


# --------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------


def sweep(
    config: SweepConfig, progress: Callable[[str], None] | None = None, records_dir: Path | None = None
) -> StudyResult:
    """Every (arm, ratio, seed) of ``config``, in ``config.workers`` processes; results in grid order.
    With ``records_dir``, every run's record is saved there (:func:`record_name`)."""
    tasks = [(a.name, r, s, config.steps, records_dir) for a in config.arms for r in config.ratios for s in a.seeds]
    say = progress or (lambda _msg: None)
    results: dict[tuple[str, float, int], RunResult] = {}
    t0 = time.perf_counter()

    def done(res: RunResult) -> None:
        results[(res.arm, res.ratio, res.seed)] = res
        verdict = "stable" if res.stable else ("error: " + res.error if res.error else "UNSTABLE: " + _failed(res))
        say(
            f"[{len(results)}/{len(tasks)}] {res.arm} r={res.ratio:.4g} seed={res.seed}: {verdict} "
            f"(test acc {res.test_accuracy:.3f}, {res.wall_time_s:.1f} s)"
        )

    if config.workers == 1:
        for task in tasks:
            done(run_one(*task))
    else:
        # spawn: fresh interpreters (no forked torch state); run_one by its importable module, so that
        # it pickles the same when this file runs as ``python -m`` (``__main__``).
        from ddcl_incrt.studies import time_scales as importable

        with ProcessPoolExecutor(max_workers=config.workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(importable.run_one, *task) for task in tasks]
            for fut in as_completed(futures):
                done(fut.result())
    ordered = tuple(results[(a, r, s)] for a, r, s, _, _ in tasks)
    return StudyResult(config, ordered, time.perf_counter() - t0)


def judge_record(arm: str, ratio: float, seed: int, record: RunRecord) -> RunResult:
    """:class:`RunResult` of a saved run's record (the criteria recomputed; the trainer's wall time)."""
    lr = rates_for(arm, ratio)
    arch = record.architecture
    return RunResult(
        arm,
        ratio,
        seed,
        lr.rest,
        lr.prototypes,
        stability_criteria(record),
        record.test_accuracy,
        arch.n_heads,
        arch.n_prototypes,
        arch.births,
        record.wall_time_s,
    )


_ERROR_LINE = re.compile(r"^\[\d+/\d+\] (\S+) r=(\S+) seed=(\d+): error: (.*) \(test acc")


def from_records(config: SweepConfig, out: Path) -> tuple[StudyResult, list[str]]:
    """Re-judge a sweep from ``out/records/`` (e.g. after an interrupted run): each grid point with a
    record is judged from it, one whose error ``out/progress.log`` reports is an errored run, and the
    rest are returned as not run (``arm r=… seed=…``)."""
    errors: dict[tuple[str, str, int], str] = {}
    log = out / "progress.log"
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            if m := _ERROR_LINE.match(line):
                errors[(m[1], m[2], int(m[3]))] = m[4]
    runs, missing = [], []
    for arm in config.arms:
        for r in config.ratios:
            for s in arm.seeds:
                path = out / "records" / record_name(arm.name, r, s)
                if path.exists():
                    runs.append(judge_record(arm.name, r, s, RunRecord.load(path)))
                elif (err := errors.get((arm.name, f"{r:.4g}", s))) is not None:
                    lr = rates_for(arm.name, r)
                    runs.append(RunResult(arm.name, r, s, lr.rest, lr.prototypes, (), math.nan, 0, 0, 0, math.nan, err))
                else:
                    missing.append(f"{arm.name} r={r:.4g} seed={s}")
    wall = sum(x.wall_time_s for x in runs if math.isfinite(x.wall_time_s))
    return StudyResult(config, tuple(runs), wall, meta={"from_records": True, "not_run": missing}), missing


def feature_scale_table(config: SweepConfig, out: Path) -> str:
    """Post hoc (added after the results were seen; not part of the protocol): per arm and ratio, the
    medians over the saved records of ``F``'s last window mean over its minimum window mean, and of the
    feature scale ``T_c = 2λ_max(Cov Y)`` (D4's critical temperature, on the probe) at the last check over
    the first. It asks whether a rising ``F`` goes with spreading features (the encoder's doing) rather
    than prototypes left behind."""
    lines = [
        "| arm | r | runs | median F last/min window | median T_c last/first check |",
        "|---|---|---|---|---|",
    ]
    for arm in config.arms:
        for r in config.ratios:
            f_ratio, tc_ratio = [], []
            for s in arm.seeds:
                path = out / "records" / record_name(arm.name, r, s)
                if not path.exists():
                    continue
                rec = RunRecord.load(path)
                m = windowed_means(rec.losses.F, STABILITY_BOUNDS.windows)
                f_ratio.append(m[-1] / min(m))
                tc_ratio.append(rec.checks[-1].collapse_T_c / rec.checks[0].collapse_T_c)
            if f_ratio:
                lines.append(
                    f"| {arm.name} | {_fmt(r)} | {len(f_ratio)} | {_fmt(float(np.median(f_ratio)))} | "
                    f"{_fmt(float(np.median(tc_ratio)))} |"
                )
    return "\n".join(lines) + "\n"


def _failed(run: RunResult) -> str:
    return ", ".join(c.name for c in run.criteria if not c.holds)


# --------------------------------------------------------------------------------------------------
# Markdown, figure, files
# --------------------------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "∞"
    return f"{x:.3g}"


def _boundary_text(lower: float | None, upper: float | None, ratios: Sequence[float]) -> str:
    def below(r: float) -> str:
        i = list(ratios).index(r)
        return f"between {_fmt(ratios[i - 1])} and {_fmt(r)}" if i > 0 else f"at or below {_fmt(r)}"

    up = (
        f"stability breaks {below(upper)} (every ratio ≥ {_fmt(upper)} unstable)"
        if upper is not None
        else (f"none in the grid (the largest ratio, {_fmt(ratios[-1])}, is stable)")
    )
    if lower is None:
        low = f"none in the grid (the smallest ratio, {_fmt(ratios[0])}, is stable)"
    else:
        i = list(ratios).index(lower)
        nxt = f" and {_fmt(ratios[i + 1])}" if i + 1 < len(ratios) else ""
        low = f"stability breaks between {_fmt(lower)}{nxt} (every ratio ≤ {_fmt(lower)} unstable)"
    return f"upper boundary: {up}; lower boundary: {low}"


def markdown(result: StudyResult) -> str:
    """Per arm: the cells' pass fractions, stable and learned counts, medians; the boundaries; every run."""
    lines = [
        "# Two time scales (R3): stability against η_enc/η_P (measured)",
        "",
        f"Protocol: `{PROTOCOL}`. Engine: {result.engine}. Steps per run: {result.config.steps}. "
        f"Total wall time: {result.wall_time_s:.0f} s.",
        "",
    ]
    for arm in result.arms():
        cells = result.cells(arm)
        lower, upper = result.boundaries(arm)
        ratios = [c.ratio for c in cells]
        unstable = ", ".join(_fmt(c.ratio) for c in cells if c.unstable)
        lines += [
            f"## Arm `{arm}`",
            "",
            _boundary_text(lower, upper, ratios) + ".",
            f"Unstable ratios (≥ half the seeds unstable): {unstable or 'none'}.",
            f"Best median test accuracy: {_fmt(result.best_median_accuracy(arm))} "
            f"(learned: ≥ {LEARNED_FRACTION} of it).",
            "",
            "| r = η_enc/η_P | η_enc | η_P | stable | learned | "
            + " | ".join(STABILITY_CRITERIA)
            + " | median rise_F/drop_F | median test acc | median wall s | errors |",
            "|" + "---|" * (9 + len(STABILITY_CRITERIA)),
        ]
        for c in cells:
            n = len(c.runs)
            r0 = c.runs[0]
            lines.append(
                f"| {_fmt(c.ratio)} | {_fmt(r0.eta_enc)} | {_fmt(r0.eta_P)} | {sum(r.stable for r in c.runs)}/{n} | "
                f"{sum(result.learned(r) for r in c.runs)}/{n} | "
                + " | ".join(f"{c.passes(name)}/{n}" for name in STABILITY_CRITERIA)
                + f" | {_fmt(c.median_value('free_energy_descent'))} | {_fmt(c.median_test_accuracy())} | "
                f"{float(np.median([r.wall_time_s for r in c.runs])):.1f} | "
                f"{sum(r.error is not None for r in c.runs)} |"
            )
        lines.append("")
    lines += [
        "## Every run",
        "",
        "| arm | r | seed | stable | failed criteria | rise_F/drop_F | max S/S_1 | S_min/S_1 | N_eff | "
        "L_task last/first | test acc | heads | K | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result.runs:

        def v(name: str, run: RunResult = run) -> str:
            c = run.criterion(name)
            return "—" if c is None else _fmt(c.value)

        failed = run.error if run.error else (_failed(run) or "—")
        lines.append(
            f"| {run.arm} | {_fmt(run.ratio)} | {run.seed} | {'yes' if run.stable else 'no'} | {failed} | "
            f"{v('free_energy_descent')} | {v('separation_bounded')} | {v('prototypes_distinct')} | "
            f"{v('mass_spread')} | "
            f"{v('task_loss_bounded')} | {_fmt(run.test_accuracy)} | {run.n_heads} | {run.n_prototypes} | "
            f"{run.wall_time_s:.1f} |"
        )
    return "\n".join(lines) + "\n"


def figure_png(result: StudyResult) -> bytes:
    """Stable fraction, ``rise_F/drop_F`` and test accuracy against ``r`` (log x), boundaries marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {ARM_P_FIXED: "tab:blue", ARM_MEAN_FIXED: "tab:orange"}
    for arm in result.arms():
        cells = result.cells(arm)
        rs = np.array([c.ratio for c in cells])
        col = colours.get(arm, "tab:gray")
        frac = [sum(r.stable for r in c.runs) / len(c.runs) for c in cells]
        axes[0].plot(rs, frac, "o-", color=col, label=f"{arm} ({len(cells[0].runs)} seeds)")
        _, upper = result.boundaries(arm)
        lower, _ = result.boundaries(arm)
        for b, style in ((upper, "--"), (lower, ":")):
            if b is not None:
                for ax in axes:
                    ax.axvline(b, color=col, linestyle=style, alpha=0.7)
        for c in cells:
            vals = [x.value for r in c.runs if (x := r.criterion("free_energy_descent")) is not None]
            shown = np.clip(np.nan_to_num(np.asarray(vals), nan=1e3, posinf=1e3), 1e-3, 1e3)
            axes[1].scatter([c.ratio] * len(shown), shown, color=col, s=10, alpha=0.5)
            acc = [r.test_accuracy for r in c.runs if r.error is None]
            axes[2].scatter([c.ratio] * len(acc), acc, color=col, s=10, alpha=0.5)
        med = np.clip(
            np.nan_to_num([c.median_value("free_energy_descent") for c in cells], nan=1e3, posinf=1e3), 1e-3, 1e3
        )
        axes[1].plot(rs, med, "-", color=col, label=f"{arm} median")
        axes[2].plot(rs, [c.median_test_accuracy() for c in cells], "-", color=col, label=f"{arm} median")
    axes[1].axhline(STABILITY_BOUNDS.max_free_energy_rise, color="k", linewidth=0.8, label="bound 0.25")
    titles = (
        "stable fraction (all six criteria)",
        "rise_F / drop_F (D3 descent of F; clipped to [1e-3, 1e3])",
        "final test accuracy",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.axvline(1.0, color="k", linewidth=0.5, alpha=0.5)
        ax.set_xlabel("r = η_enc / η_P")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    axes[0].set_ylim(-0.05, 1.05)
    axes[1].set_yscale("log")
    fig.suptitle("Claim R3 (measured): dashed = upper boundary, dotted = lower boundary, thin = r = 1", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(result: StudyResult, out: Path) -> dict[str, Path]:
    """``time_scales.json``, ``time_scales.md`` and ``time_scales.png`` under ``out``, each atomically."""
    return {
        "json": write_atomic(out / "time_scales.json", json.dumps(result.to_dict(), indent=1).encode("utf-8")),
        "md": write_atomic(out / "time_scales.md", markdown(result).encode("utf-8")),
        "png": write_atomic(out / "time_scales.png", figure_png(result)),
    }


def _parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--ratios: expected comma-separated numbers, got {text!r}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ddcl_incrt.studies.time_scales",
        description=f"Claim R3: stability of joint training against η_enc/η_P on digits (protocol: {PROTOCOL}).",
    )
    parser.add_argument("--out", type=path_argument, required=True, help="folder for time_scales.{json,md,png}")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 ratios x 1 seed x 100 steps")
    parser.add_argument("--workers", type=worker_count, default=None, help="worker processes (default 2; --quick: 1)")
    parser.add_argument(
        "--ratios", type=_parse_floats, default=None, help="comma-separated ratios (default: the protocol's grid)"
    )
    parser.add_argument(
        "--arms",
        default=None,
        help=f"comma-separated arms to run, of {', '.join(ARMS)} (default: both, as in the protocol)",
    )
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds for every arm run (default: the protocol's)"
    )
    parser.add_argument("--no-records", action="store_true", help="do not save every run's record under OUT/records/")
    parser.add_argument(
        "--feature-scale",
        action="store_true",
        help="post hoc, from OUT/records/: print F's last/min window and T_c's last/first check per ratio",
    )
    parser.add_argument(
        "--from-records",
        action="store_true",
        help="train nothing: re-judge the grid from OUT/records/ and the errors in OUT/progress.log",
    )
    args = parser.parse_args(argv)
    base = SweepConfig.quick() if args.quick else SweepConfig()
    try:
        arms = base.arms
        if args.arms is not None:
            names = [a.strip() for a in args.arms.split(",") if a.strip()]
            unknown = sorted(set(names) - set(ARMS))
            if unknown or not names:
                raise ValueError(f"--arms: expected a comma-separated subset of {ARMS}, got {args.arms!r}")
            arms = tuple(a for a in base.arms if a.name in names)
        if args.seeds is not None:
            try:
                seeds = tuple(int(x) for x in args.seeds.split(",") if x.strip())
            except ValueError:
                raise ValueError(f"--seeds: expected comma-separated ints, got {args.seeds!r}") from None
            arms = tuple(ArmSpec(a.name, seeds) for a in arms)
        config = replace(
            base,
            ratios=base.ratios if args.ratios is None else args.ratios,
            arms=arms,
            workers=base.workers if args.workers is None else args.workers,
        )
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    if importlib.util.find_spec("torch") is None:  # the study runs on the accelerated engine
        parser.error("the study needs PyTorch: pip install torch==2.13.0 (then pip install -e '.[torch]')")
    argv_used = list(sys.argv if argv is None else argv)
    if args.feature_scale:
        print(feature_scale_table(config, args.out), end="")
        return 0
    if args.from_records:
        result, missing = from_records(config, args.out)
        result = replace(result, meta={**result.meta, "argv": argv_used})
        if missing:
            print(f"not run (no record, no error reported): {len(missing)}: {', '.join(missing)}", file=sys.stderr)
    else:
        records = None if args.no_records else args.out / "records"
        result = sweep(config, progress=lambda msg: print(msg, file=sys.stderr, flush=True), records_dir=records)
        result = replace(result, meta={"argv": argv_used})
    files = write_outputs(result, args.out)
    for arm in result.arms():
        lower, upper = result.boundaries(arm)
        print(f"{arm}: {_boundary_text(lower, upper, [c.ratio for c in result.cells(arm)])}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in files.values()), file=sys.stderr)
    return 0


__all__ = [
    "ARMS",
    "ARM_MEAN_FIXED",
    "ARM_P_FIXED",
    "ETA_P_FIXED",
    "GEOMETRIC_MEAN",
    "LEARNED_FRACTION",
    "PROTOCOL",
    "QUICK_RATIOS",
    "QUICK_STEPS",
    "RATIOS",
    "SCHEMA",
    "STEPS",
    "ArmSpec",
    "Cell",
    "RunResult",
    "StudyResult",
    "SweepConfig",
    "boundaries",
    "check_ratio",
    "feature_scale_table",
    "figure_png",
    "from_records",
    "judge_record",
    "main",
    "markdown",
    "rates_for",
    "record_name",
    "run_one",
    "sweep",
    "unstable_majority",
    "write_outputs",
]


if __name__ == "__main__":
    raise SystemExit(main())
