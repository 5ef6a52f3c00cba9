"""Study: does INCRT's growth rule end with the planted m heads on a task the layer provably
fits with m heads? The paper's rule and its named variants, beside fixed-head training (m − 1 vs m).

The protocol (task family, construction, architecture, optimiser, budgets, seeds, rules, statistics) is
fixed in ``docs/studies/planted-heads.md`` §2; this module carries it out. One growth run is one
(task, rule, seed): ``training.data.planted_pairs`` (or its label-shuffled control) trained by the
accelerated engine in float32 with the rule's ``growth_variants``; one fixed-head run is (m, H, seed)
with H heads from the start and no growth checks. Beside each seed: the constructed m-head solution's
test accuracy (:func:`reference.planted_solution.constructed_params`, reference ``forward``). Results
are ``measured``.

    python -m ddcl_incrt.studies.planted_heads --out runs/planted_heads [--workers 2] [--quick]

writes ``results.json`` (every run), ``table.md`` (tables) and ``figure.png``, each atomically;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ddcl_incrt.arguments import (
    SEED_LIMIT,
    cluster_seed_count,
    path_argument,
    seed_argument,
    step_count,
    worker_count,
)
from reference.incrt.controller import GrowthVariant
from reference.model import LayerConfig, forward
from reference.optim import LearningRates
from reference.planted_solution import constructed_params
from reference.train_config import TrainConfig
from training.data import SequenceDataset, planted_pairs
from training.files import write_atomic

SCHEMA = "ddcl-incrt planted-heads study v1"
PROTOCOL = "docs/studies/planted-heads.md"

SEQ_LEN = 6
D_IN = 12  # 4 · the largest m, so that every task has the same layer
N_TRAIN = 1024
N_TEST = 512
STEPS = 2000
SEEDS = 10  # the protocol's seed count (docs/studies/planted-heads.md)
QUICK_SEEDS, QUICK_STEPS = 1, 100  # --quick: a smoke run, not the protocol
FIT = 0.99  # "fit": test accuracy at least this (the construction's test asks the same)

# task name → (m, labels shuffled); the control's needed head count is the minimum, 1
TASKS: dict[str, tuple[int, bool]] = {"m1": (1, False), "m2": (2, False), "m3": (3, False), "shuffled": (2, True)}
RULES: dict[str, tuple[GrowthVariant, ...]] = {
    "paper": (),
    "birth_along_u_plus": ("birth_along_u_plus",),
    "prune_at_theta": ("prune_at_theta",),
    "newborn_margin": ("newborn_margin",),
    "combined": ("birth_along_u_plus", "prune_at_theta", "newborn_margin"),
    # the rule as its author coded it (reference.incrt.author_code); its runs are the addendum of §2.6
    "author_code": ("author_code",),
}
FIXED_HEADS: tuple[tuple[int, int], ...] = ((2, 1), (2, 2), (3, 2), (3, 3))  # (m, H)
# The rules the protocol runs by default (docs/studies/planted-heads.md §2.2, amended for the budget
# before any growth result: `combined` only with --rules).
DEFAULT_RULES: tuple[str, ...] = ("paper", "birth_along_u_plus", "prune_at_theta", "newborn_margin")

TRAIN = TrainConfig(
    steps=STEPS,
    batch_size=32,
    optimizer="adam",
    lr=LearningRates.uniform(1e-2),
    check_every=50,
    probe_size=128,
    calibration_probes=5,
    c_theta=0.1,
    T_d=200,
    T_prune=5,
    eps_K=0.01,
    max_heads=8,
    tracker_steps=20,
    check_invariants=False,
)


def layer_for(m: int) -> LayerConfig:
    """The study's layer for a task with ``m`` relations (only ``n_classes = 2^m`` depends on m)."""
    return LayerConfig(d_in=D_IN, d=16, d_k=1, d_v=1, seq_len=SEQ_LEN, K_max=8, n_classes=2**m, T_P=1.0, lambda_q=0.1)


def planted_count(task: str) -> int:
    """The head count the task needs: m, or 1 (the minimum) for the shuffled control."""
    m, shuffled = TASKS[task]
    return 1 if shuffled else m


def task_data(task: str, seed: int) -> SequenceDataset:
    """Seed ``seed``'s draw of ``task`` (``default_rng([seed, 0])``; the control permutes the labels
    with ``default_rng([seed, 2])``)."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {list(TASKS)}, got {task!r}")
    m, shuffled = TASKS[task]
    data = planted_pairs(
        n_relations=m, n_train=N_TRAIN, n_test=N_TEST, seq_len=SEQ_LEN, d_in=D_IN, rng=np.random.default_rng([seed, 0])
    )
    if not shuffled:
        return data
    perm = np.random.default_rng([seed, 2])
    return replace(
        data,
        name=data.name + " (labels shuffled)",
        labels_train=perm.permutation(data.labels_train),
        labels_test=perm.permutation(data.labels_test),
        meta={**data.meta, "labels_shuffled": True},
    )


def constructed_accuracy(task: str, seed: int) -> float:
    """Test accuracy of the constructed m-head solution on seed ``seed``'s test set."""
    m, _ = TASKS[task]
    cfg = layer_for(m)
    data = task_data(task, seed)
    cache = forward(constructed_params(cfg, m), cfg, data.x_test, data.labels_test)
    return float(np.mean(cache.logits.argmax(axis=1) == data.labels_test))


@dataclass(frozen=True)
class GrowthRun:
    """One (task, rule, seed) growth run's outcome."""

    task: str
    rule: str
    seed: int
    planted: int
    n_heads: int
    births: int
    head_prunes: int
    capped: bool
    train_accuracy: float
    test_accuracy: float
    constructed_accuracy: float
    theta: float
    phi_g: float
    wall_s: float
    # under author_code only (protocol §2.6): checks, checks with the exact λ_max > θ, checks with both of the
    # author's gates open, the median adaptive growth dwell in checks (ddcl_incrt.audit.summary.author_code_pacing)
    checks: int | None = None
    exact_above: int | None = None
    gates_open: int | None = None
    median_dwell: float | None = None


@dataclass(frozen=True)
class FixedRun:
    """One (m, H, seed) fixed-head run's outcome."""

    m: int
    heads: int
    seed: int
    train_accuracy: float
    test_accuracy: float
    wall_s: float


def _torch_setup() -> None:
    import torch

    torch.set_num_threads(1)  # one core per run; the study runs several at a time


def growth_run(task: str, rule: str, seed: int, steps: int = STEPS) -> GrowthRun:
    """Train ``task`` with ``rule`` (protocol §2.1–2.2) and summarise the record."""
    import torch

    from accelerated.trainer import train

    _torch_setup()
    m, _ = TASKS[task]
    cfg = replace(TRAIN, steps=steps, seed=seed, growth_variants=RULES[rule])
    t0 = time.perf_counter()
    rec = train(task_data(task, seed), layer_for(m), cfg, rng=np.random.default_rng([seed, 1]), dtype=torch.float32)
    arch = rec.architecture
    last = rec.checks[-1] if rec.checks else None
    pacing: dict[str, Any] = {}
    if "author_code" in cfg.growth_variants:
        from ddcl_incrt.audit.summary import author_code_pacing

        p = author_code_pacing(rec)
        pacing = {
            "checks": p.checks,
            "exact_above": p.exact_above,
            "gates_open": p.gates_open,
            "median_dwell": p.median_dwell,
        }
    return GrowthRun(
        task=task,
        rule=rule,
        seed=seed,
        planted=planted_count(task),
        n_heads=arch.n_heads,
        births=arch.births,
        head_prunes=arch.head_prunes,
        capped=bool(last is not None and cfg.max_heads is not None and arch.n_heads >= cfg.max_heads and last.capped),
        train_accuracy=rec.train_accuracy,
        test_accuracy=rec.test_accuracy,
        constructed_accuracy=constructed_accuracy(task, seed),
        theta=rec.growth_config.theta,
        phi_g=rec.growth_config.phi_g,
        wall_s=time.perf_counter() - t0,
        **pacing,
    )


def fixed_run(m: int, heads: int, seed: int, steps: int = STEPS) -> FixedRun:
    """Train ``planted_pairs(m)`` with ``heads`` heads from the start and no growth (protocol §2.3):
    head 0 from the run's initial parameters, heads 1..H−1 drawn as births would be."""
    import torch

    from accelerated.trainer import AcceleratedEngine
    from reference.growth_phases import Context, birth_rng
    from reference.incrt.controller import GrowthConfig
    from reference.surgery import add_head
    from training.trainer import init_state

    _torch_setup()
    cfg = layer_for(m)
    train_cfg = replace(TRAIN, steps=steps, seed=seed)
    data = task_data(f"m{m}", seed)
    rng = np.random.default_rng([seed, 1])
    t0 = time.perf_counter()
    state = init_state(cfg, train_cfg, rng=rng)
    params = state.params
    for h in range(1, heads):
        params, _ = add_head(params, cfg, rng=birth_rng(seed, h))
    state = replace(state, params=params)
    # No check runs, so the growth thresholds are never read; they only make a valid Context.
    ctx = Context(cfg, train_cfg, GrowthConfig(theta=1.0, phi_g=0.0, T_d=0, T_prune=1, eps_K=0.0))
    engine = AcceleratedEngine(dtype=torch.float32)
    es = engine.start(ctx, state)
    n = data.x_train.shape[0]
    for _ in range(steps):
        idx = rng.choice(n, size=train_cfg.batch_size, replace=False)
        es, _, _ = engine.step(ctx, es, data.x_train[idx], data.labels_train[idx])
    ev = engine.evaluate(es, cfg, data, steps)
    return FixedRun(m, heads, seed, ev.train_accuracy, ev.test_accuracy, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyResult:
    growth: tuple[GrowthRun, ...]
    fixed: tuple[FixedRun, ...]
    seeds: tuple[int, ...]
    steps: int
    wall_s: float

    def cell(self, task: str, rule: str) -> tuple[GrowthRun, ...]:
        return tuple(sorted((r for r in self.growth if r.task == task and r.rule == rule), key=lambda r: r.seed))

    def fixed_cell(self, m: int, heads: int) -> tuple[FixedRun, ...]:
        return tuple(sorted((r for r in self.fixed if r.m == m and r.heads == heads), key=lambda r: r.seed))

    def recovers(self, rule: str) -> bool:
        """Protocol §2.4: final count = planted on ≥ 9 of 10 seeds (90 %) for every task."""
        for task in TASKS:
            runs = self.cell(task, rule)
            if not runs or sum(r.n_heads == r.planted for r in runs) < 0.9 * len(runs):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "protocol": PROTOCOL,
            "label": "measured",
            "seeds": list(self.seeds),
            "steps": self.steps,
            "train_config": asdict(TRAIN),
            "layer": {str(m): asdict(layer_for(m)) for m in (1, 2, 3)},
            "rules": {k: list(v) for k, v in RULES.items()},
            "growth_runs": [asdict(r) for r in self.growth],
            "fixed_runs": [asdict(r) for r in self.fixed],
            "recovers": {rule: self.recovers(rule) for rule in RULES},
            "wall_s": self.wall_s,
        }


def _call(kind: str, args: tuple[Any, ...]) -> GrowthRun | FixedRun:
    return fixed_run(*args) if kind == "fixed" else growth_run(*args)


def sweep(
    seeds: Sequence[int],
    *,
    steps: int = STEPS,
    workers: int = 2,
    rules: Sequence[str] = DEFAULT_RULES,
    progress: Callable[[str], None] = lambda _msg: None,
    partial: Path | None = None,
    fixed_heads: Sequence[tuple[int, int]] = FIXED_HEADS,
) -> StudyResult:
    """The first rule's growth runs (every task and seed), then every fixed-head run, then the other rules'
    growth runs, in the protocol's order (so that an interrupted sweep has the paper's rule first). With
    ``partial``, the runs finished so far are rewritten there (atomically) after each one, so that an
    interrupted sweep leaves every finished run on disk."""
    grow = [("growth", (task, rule, s, steps)) for rule in rules for task in TASKS for s in seeds]
    first = len(TASKS) * len(seeds) if rules else 0
    fixed_jobs = [("fixed", (m, h, s, steps)) for m, h in fixed_heads for s in seeds]
    jobs: list[tuple[str, tuple[Any, ...]]] = grow[:first] + fixed_jobs + grow[first:]
    growth: list[GrowthRun] = []
    fixed: list[FixedRun] = []
    t0 = time.perf_counter()

    def done(res: GrowthRun | FixedRun) -> None:
        if isinstance(res, GrowthRun):
            growth.append(res)
            what = f"{res.rule:>18} {res.task:>8} seed {res.seed}: {res.n_heads} heads (planted {res.planted})"
        else:
            fixed.append(res)
            what = f"{'fixed':>18} m={res.m} H={res.heads} seed {res.seed}"
        n = len(growth) + len(fixed)
        if partial is not None:
            runs = {"growth_runs": [asdict(r) for r in growth], "fixed_runs": [asdict(r) for r in fixed]}
            write_atomic(partial, json.dumps(runs).encode("utf-8"))
        progress(
            f"[{n}/{len(jobs)} {time.perf_counter() - t0:6.0f}s] {what}, test acc {res.test_accuracy:.3f} "
            f"({res.wall_s:.1f}s)"
        )

    if workers <= 1:
        for kind, args in jobs:
            done(_call(kind, args))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_call, k, a) for k, a in jobs]
            for fut in as_completed(futures):
                done(fut.result())
    return StudyResult(tuple(growth), tuple(fixed), tuple(seeds), steps, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def markdown(result: StudyResult) -> str:
    """The tables of the results section: fixed heads, then per task and rule, then every seed."""
    n = len(result.seeds)
    run_s = sum(r.wall_s for r in result.growth) + sum(r.wall_s for r in result.fixed)
    lines = [
        f"Seeds {list(result.seeds)}, {result.steps} steps per run; sum of the runs' wall times {run_s:.0f} s "
        f"(several ran at a time; the sweep's own wall time {result.wall_s:.0f} s, 0 for merged files).",
        "",
    ]
    lines.append("### Fixed heads, no growth (m − 1 vs m)")
    lines.append("")
    rows: list[list[object]] = []
    for m, h in FIXED_HEADS:
        runs = result.fixed_cell(m, h)
        if not runs:
            continue
        accs = [r.test_accuracy for r in runs]
        rows.append(
            [
                m,
                h,
                f"{sum(a >= FIT for a in accs)}/{len(runs)}",
                f"{statistics.median(accs):.3f}",
                f"{max(accs):.3f}",
                " ".join(f"{a:.2f}" for a in accs),
                f"{sum(r.wall_s for r in runs):.0f}",
            ]
        )
    lines += _table(["m", "heads H", f"fit (test ≥ {FIT})", "median test", "max test", "test acc per seed", "s"], rows)
    lines += ["", "### Growth rules: final head count per task", ""]
    rows = []
    for rule in RULES:
        for task in TASKS:
            cell = result.cell(task, rule)
            if not cell:
                continue
            counts = [r.n_heads for r in cell]
            rows.append(
                [
                    rule,
                    task,
                    cell[0].planted,
                    " ".join(str(c) for c in counts),
                    f"{sum(c == cell[0].planted for c in counts)}/{len(cell)}",
                    f"{statistics.median(counts):g}",
                    sum(r.capped for r in cell),
                    sum(r.head_prunes for r in cell),
                    f"{statistics.mean(r.test_accuracy for r in cell):.3f}",
                    f"{sum(r.test_accuracy >= FIT for r in cell)}/{len(cell)}",
                    f"{min(r.constructed_accuracy for r in cell):.3f}",
                    f"{sum(r.wall_s for r in cell):.0f}",
                ]
            )
    lines += _table(
        [
            "rule",
            "task",
            "planted",
            "final heads per seed",
            "= planted",
            "median",
            "capped",
            "head prunes",
            "mean test acc",
            "fit",
            "constructed test acc (min over seeds)",
            "s",
        ],
        rows,
    )
    lines += ["", f"Rule recovers the planted count (≥ 90 % of the {n} seeds on every task): "]
    ran = [rule for rule in RULES if any(r.rule == rule for r in result.growth)]
    seeds_of = {rule: sorted({r.seed for r in result.growth if r.rule == rule}) for rule in ran}
    lines += [
        ", ".join(f"`{rule}` (seeds {seeds_of[rule]}): {'yes' if result.recovers(rule) else 'no'}" for rule in ran)
    ]
    lines += [f"Not run: {', '.join(f'`{r}`' for r in RULES if r not in ran) or 'none'}.", ""]
    paced = [r for rule in RULES for task in TASKS for r in result.cell(task, rule) if r.checks is not None]
    if paced:
        lines += ["### What paced births under `author_code` (protocol §2.6)", ""]
        lines += _table(
            ["task", "seed", "checks", "exact λ_max > θ", "both gates open", "births", "median dwell (checks)", "s"],
            [
                [
                    r.task,
                    r.seed,
                    r.checks,
                    r.exact_above,
                    r.gates_open,
                    r.births,
                    "—" if r.median_dwell is None else f"{r.median_dwell:g}",
                    f"{r.wall_s:.1f}",
                ]
                for r in paced
            ],
        )
        lines += [""]
    lines += ["### Every growth run", ""]
    rows = [
        [
            r.rule,
            r.task,
            r.seed,
            f"{r.n_heads} ({r.planted})",
            r.births,
            r.head_prunes,
            "yes" if r.capped else "",
            f"{r.train_accuracy:.3f}",
            f"{r.test_accuracy:.3f}",
            f"{r.constructed_accuracy:.3f}",
            f"{r.theta:.3g}",
            f"{r.phi_g:.3g}",
            f"{r.wall_s:.1f}",
        ]
        for rule in RULES
        for task in TASKS
        for r in result.cell(task, rule)
    ]
    lines += _table(
        [
            "rule",
            "task",
            "seed",
            "heads (planted)",
            "births",
            "prunes",
            "capped",
            "train",
            "test",
            "constructed",
            "θ",
            "φ_g",
            "s",
        ],
        rows,
    )
    return "\n".join(lines) + "\n"


def figure_png(result: StudyResult) -> bytes:
    """Final head count (left) and test accuracy (right) of every seed, per task and rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    rules = [r for r in RULES if any(g.rule == r for g in result.growth)]
    width = 0.8 / max(1, len(rules))
    for i, rule in enumerate(rules):
        for j, task in enumerate(TASKS):
            runs = result.cell(task, rule)
            x = j + (i - (len(rules) - 1) / 2) * width + np.linspace(-0.3, 0.3, len(runs)) * width
            label = rule if j == 0 else None
            axes[0].scatter(x, [r.n_heads for r in runs], s=12, color=f"C{i}", label=label)
            axes[1].scatter(x, [r.test_accuracy for r in runs], s=12, color=f"C{i}", label=label)
    for j, task in enumerate(TASKS):
        axes[0].hlines(planted_count(task), j - 0.45, j + 0.45, colors="k", linestyles="dashed")
        axes[1].hlines(2.0 ** -TASKS[task][0], j - 0.45, j + 0.45, colors="grey", linestyles="dotted")
    for ax, title in zip(axes, ("final head count (dashed: planted)", "test accuracy (dotted: chance)"), strict=True):
        ax.set_xticks(range(len(TASKS)), list(TASKS))
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.suptitle("planted_pairs: growth rules vs planted head count (measured, every seed)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def merge(paths: Sequence[Path], *, steps: int = STEPS) -> StudyResult:
    """One result from the runs in several ``partial.json`` / ``results.json`` files (sweeps that ran
    different rules or seeds); a run present twice must agree exactly (its wall time aside), else it is
    an error."""

    def same(a: GrowthRun | FixedRun, b: GrowthRun | FixedRun) -> bool:
        return replace(a, wall_s=0.0) == replace(b, wall_s=0.0)

    growth: dict[tuple[str, str, int], GrowthRun] = {}
    fixed: dict[tuple[int, int, int], FixedRun] = {}
    wall = 0.0
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        wall += float(data.get("wall_s", 0.0))
        for row in data["growth_runs"]:
            g = GrowthRun(**row)
            key = (g.task, g.rule, g.seed)
            if key in growth and not same(growth[key], g):
                raise ValueError(f"paths: growth run {key} differs between files ({path})")
            growth[key] = g
        for row in data["fixed_runs"]:
            f = FixedRun(**row)
            fkey = (f.m, f.heads, f.seed)
            if fkey in fixed and not same(fixed[fkey], f):
                raise ValueError(f"paths: fixed-head run {fkey} differs between files ({path})")
            fixed[fkey] = f
    seeds = sorted({k[2] for k in growth} | {k[2] for k in fixed})
    return StudyResult(tuple(growth.values()), tuple(fixed.values()), tuple(seeds), steps, wall)


def write_outputs(result: StudyResult, out: Path) -> dict[str, Path]:
    return {
        "json": write_atomic(out / "results.json", json.dumps(result.to_dict(), indent=1).encode("utf-8")),
        "md": write_atomic(out / "table.md", markdown(result).encode("utf-8")),
        "png": write_atomic(out / "figure.png", figure_png(result)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=path_argument, default=Path("runs/planted_heads"))
    parser.add_argument("--seeds", type=cluster_seed_count, default=SEEDS, help=f"seeds 0..N-1 (protocol: {SEEDS})")
    parser.add_argument("--steps", type=step_count, default=STEPS, help=f"steps per run (protocol: {STEPS})")
    parser.add_argument("--workers", type=worker_count, default=2)
    parser.add_argument(
        "--rules", type=str, default=",".join(DEFAULT_RULES), help=f"comma-separated, from {list(RULES)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"a smoke run: {QUICK_SEEDS} seed, {QUICK_STEPS} steps (not the protocol)"
    )
    parser.add_argument("--no-fixed", action="store_true", help="skip the fixed-head runs")
    parser.add_argument(
        "--fixed",
        type=str,
        default=None,
        help="fixed-head runs as m:H pairs, comma-separated (default: the protocol's)",
    )
    parser.add_argument("--first-seed", type=seed_argument, default=0, help="seeds first..first+N-1")
    parser.add_argument(
        "--merge", type=path_argument, nargs="+", default=None, help="only merge these partial/results files into --out"
    )
    args = parser.parse_args(argv)
    if args.merge is not None:
        merged = merge(args.merge, steps=args.steps)
        files = write_outputs(merged, args.out)
        print("wrote " + ", ".join(str(p) for p in files.values()), file=sys.stderr)
        return 0
    if args.first_seed + args.seeds > SEED_LIMIT:
        parser.error(f"--first-seed {args.first_seed} with --seeds {args.seeds}: the last seed passes 2**32 - 1")
    rules = tuple(r for r in args.rules.split(",") if r)
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        parser.error(f"--rules: unknown rule(s) {unknown}; the rules are {list(RULES)}")
    fixed_heads = FIXED_HEADS
    if args.fixed is not None:
        fixed_heads = tuple((int(a), int(b)) for a, b in (p.split(":") for p in args.fixed.split(",") if p))
    first = args.first_seed
    seeds, steps = (
        (tuple(range(QUICK_SEEDS)), QUICK_STEPS)
        if args.quick
        else (tuple(range(first, first + args.seeds)), args.steps)
    )
    result = sweep(
        seeds,
        steps=steps,
        workers=args.workers,
        rules=rules,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        partial=args.out / "partial.json",
        fixed_heads=() if args.no_fixed else fixed_heads,
    )
    files = write_outputs(result, args.out)
    for rule in rules:
        print(f"{rule}: recovers the planted count: {result.recovers(rule)}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in files.values()), file=sys.stderr)
    return 0


__all__ = [
    "DEFAULT_RULES",
    "D_IN",
    "FIT",
    "FIXED_HEADS",
    "N_TEST",
    "N_TRAIN",
    "PROTOCOL",
    "QUICK_SEEDS",
    "QUICK_STEPS",
    "RULES",
    "SCHEMA",
    "SEEDS",
    "SEQ_LEN",
    "STEPS",
    "TASKS",
    "TRAIN",
    "FixedRun",
    "GrowthRun",
    "StudyResult",
    "constructed_accuracy",
    "figure_png",
    "fixed_run",
    "growth_run",
    "layer_for",
    "main",
    "markdown",
    "merge",
    "planted_count",
    "sweep",
    "task_data",
    "write_outputs",
]


if __name__ == "__main__":
    raise SystemExit(main())
