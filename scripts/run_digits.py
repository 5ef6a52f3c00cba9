"""Digits as 8-token sequences: one small DDCL-INCRT run that finishes in minutes on 2 cores.

``training.data.digits_sequences`` (scikit-learn's bundled ``load_digits``: 1,797 8×8 images, each a
sequence of 8 row-tokens of 8 features, stratified 75/25 split), one reference training run with the
configuration below, the record written to ``runs/digits/seed{N}.json``, and a table: test accuracy,
the final architecture (heads, prototypes, births, prunes), invariant checks / violations / min
margins, the growth statistic, wall time.

    taskset -c 0,1 .venv/bin/python scripts/run_digits.py                 # 3000 steps
    taskset -c 0,1 .venv/bin/python scripts/run_digits.py --steps 200     # a smoke run
    taskset -c 0,1 .venv/bin/python scripts/run_digits.py --engine accelerated --out runs/digits-acc

``--engine accelerated`` trains on the PyTorch engine (``--dtype``, ``--compile``) with the same draws,
so its record can be set beside the reference's run for the same seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import (
    CLAIMS,
    birth_summary,
    config_dict,
    environment,
    invariant_cells,
    markdown_table,
    progress_bar,
    ratio_trajectory,
    trajectory_stats,
)

from training.configs import LAYERS
from training.configs import TRAIN as AUDIT_TRAIN
from training.data import digits_sequences
from training.record import RunRecord
from training.trainer import train

# The audit's digits configuration (ddcl_incrt.audit.run), run for 3000 steps here.
LAYER = LAYERS["digits"]
TRAIN = replace(AUDIT_TRAIN, steps=3000)


def run_seed(seed: int, steps: int, out_dir: Path, command: str, engine: str, dtype: str, compile: bool) -> RunRecord:
    data = digits_sequences(test_fraction=0.25, seed=seed)
    cfg = replace(TRAIN, steps=steps, seed=seed)
    rng = np.random.default_rng([seed, 1])
    with progress_bar(f"digits seed {seed} ({engine})", steps) as update:
        if engine == "reference":
            rec = train(data, LAYER, cfg, rng=rng, progress=update)
        else:
            import torch

            from accelerated import trainer as acc_trainer

            torch.set_num_threads(2)
            rec = acc_trainer.train(
                data, LAYER, cfg, rng=rng, dtype=getattr(torch, dtype), compile=compile, progress=update
            )
    rec = replace(
        rec,
        meta={
            "command": command,
            "seed": seed,
            "split_seed": seed,
            "train_rng": [seed, 1],
            "engine": engine if engine == "reference" else f"accelerated {dtype}{' compiled' if compile else ''}",
            "environment": environment(),
        },
    )
    rec.save(out_dir / f"seed{seed}.json")
    return rec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=TRAIN.steps)
    parser.add_argument("--out", type=Path, default=Path("runs/digits"))
    parser.add_argument("--engine", choices=("reference", "accelerated"), default="reference")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="accelerated engine only")
    parser.add_argument("--compile", action="store_true", help="accelerated engine: torch.compile the step's loss")
    args = parser.parse_args(argv)
    command = " ".join(["scripts/run_digits.py", *(argv if argv is not None else sys.argv[1:])])
    console = Console(width=250)
    console.print(f"layer {LAYER}\ntrain {replace(TRAIN, steps=args.steps)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    records = [run_seed(s, args.steps, args.out, command, args.engine, args.dtype, args.compile) for s in seeds]

    header = [
        "seed",
        "test acc",
        "train acc",
        "heads",
        "births: step: λ_birth (margin)",
        "head prunes",
        "K final (of 16)",
        "checks",
        "violations",
        *(f"{c} n/viol/min margin" for c in CLAIMS),
        "λmax/θ first → final",
        "wall s",
    ]
    table = Table(title=f"digits (8 row-tokens × 8 features), {args.steps} steps")
    for h in header:
        table.add_column(h, overflow="fold")
    rows: list[list[object]] = []
    for rec in records:
        total, bad, cells = invariant_cells(rec)
        st = trajectory_stats(rec)
        arch = rec.architecture
        row: list[object] = [
            rec.meta["seed"],
            f"{rec.test_accuracy:.3f}",
            f"{rec.train_accuracy:.3f}",
            arch.n_heads,
            birth_summary(rec),
            arch.head_prunes,
            arch.n_prototypes,
            total,
            bad,
            *(cells[c] for c in CLAIMS),
            f"{st['first']:.2f} → {st['final']:.2f}",
            f"{rec.wall_time_s:.1f}",
        ]
        rows.append(row)
        table.add_row(*(str(c) for c in row))
    console.print(table)
    evals = Table(title="accuracy during training")
    for h in ("seed", "step", "train acc", "test acc", "train L_task", "test L_task"):
        evals.add_column(h)
    for rec in records:
        for e in rec.evaluations:
            evals.add_row(
                str(rec.meta["seed"]),
                str(e.step),
                f"{e.train_accuracy:.3f}",
                f"{e.test_accuracy:.3f}",
                f"{e.train_L_task:.3f}",
                f"{e.test_L_task:.3f}",
            )
    console.print(evals)
    for rec in records:
        console.print(f"seed {rec.meta['seed']} λmax/θ every 250 steps: {ratio_trajectory(rec, 250)}")
    args.out.mkdir(parents=True, exist_ok=True)
    md = [f"Command: `taskset -c 0,1 .venv/bin/python {command}`", "", markdown_table(header, rows)]
    (args.out / "summary.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (args.out / "summary.json").write_text(
        json.dumps(
            {
                "command": command,
                "config": config_dict(records[0]) if records else {},
                "runs": [
                    {
                        "seed": r.meta["seed"],
                        "test_accuracy": r.test_accuracy,
                        "train_accuracy": r.train_accuracy,
                        "architecture": r.to_dict()["architecture"],
                        "summary": r.to_dict()["summary"],
                        "wall_time_s": r.wall_time_s,
                    }
                    for r in records
                ],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    console.print(f"records and summary under {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
