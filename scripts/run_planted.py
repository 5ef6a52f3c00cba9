"""Planted-offsets task: does the growth rule end with the planted number of heads?

For each seed: a fresh instance of ``training.data.planted_offsets`` (its defaults: 512 train / 256
test sequences, T = 8, d_in = 6, offsets (1, 3), so m = 2 planted heads), one reference training run
(``training.trainer.train``) with the configuration below, chosen before any run and not changed after
(see docs/runs.md for why each value), the full record written to ``runs/planted/seed{N}.json``, and a
table: final vs planted head count, births (step: λ_birth (margin)), prunes, accuracy, invariant
checks / violations / min margins, and the trajectory of the growth statistic ``λ_max(A_res)/θ``.

    taskset -c 0,1 .venv/bin/python scripts/run_planted.py            # 10 seeds, 3000 steps each
    taskset -c 0,1 .venv/bin/python scripts/run_planted.py --seeds 1 --steps 200   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

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
from training.data import planted_offsets
from training.record import RunRecord
from training.trainer import train

# planted_offsets' own defaults (n_train 512, n_test 256, seq_len 8, d_in 6, offsets (1, 3)), spelled out
DATA: dict[str, object] = {"n_train": 512, "n_test": 256, "seq_len": 8, "d_in": 6, "offsets": (1, 3)}
OFFSETS = (1, 3)
# the audit's planted configuration (training.configs), run longer, in batches of 32, evaluated every 500 steps
LAYER = LAYERS["planted"]
TRAIN = replace(AUDIT_TRAIN, steps=3000, batch_size=32, eval_every=500)


def run_seed(seed: int, steps: int, out_dir: Path, command: str, offsets: tuple[int, ...], shuffle: bool) -> RunRecord:
    data = planted_offsets(
        n_train=512, n_test=256, seq_len=8, d_in=6, offsets=offsets, rng=np.random.default_rng([seed, 0])
    )
    if shuffle:  # control: same inputs, labels permuted, so no head is needed by the task
        perm = np.random.default_rng([seed, 2])
        data = replace(
            data,
            name="planted-offsets (labels shuffled)",
            labels_train=perm.permutation(data.labels_train),
            labels_test=perm.permutation(data.labels_test),
            meta={**data.meta, "labels_shuffled": True},
        )
    cfg = replace(TRAIN, steps=steps, seed=seed)
    with progress_bar(f"seed {seed}", steps) as update:
        rec = train(data, LAYER, cfg, rng=np.random.default_rng([seed, 1]), progress=update)
    rec = replace(
        rec,
        meta={
            "command": command,
            "seed": seed,
            "data_seed": [seed, 0],
            "train_rng": [seed, 1],
            "environment": environment(),
        },
    )
    rec.save(out_dir / f"seed{seed}.json")
    return rec


NOT_MEASURED = (
    "—: nothing to measure: no check (fewer steps than check_every), no birth (the first can come no earlier "
    "than the dwell time T_d), no check after the first birth, or no head 0 (pruned); null in summary.json"
)


def _value(x: float, spec: str) -> str:
    """``x`` formatted, or ``—`` for a statistic of no checks (``trajectory_stats`` gives NaN)."""
    return "—" if math.isnan(x) else format(x, spec)


def after_first_birth(rec: RunRecord, st: Mapping[str, Any]) -> str:
    """The largest ``λ_max/θ`` at the checks after the first birth, or why there is none."""
    first = next((e.step for e in rec.births()), None)
    if first is None:
        return "— (no birth)"
    if math.isnan(st["max_after_first_birth"]):
        return f"— (no check after the birth at step {first})"
    return _value(st["max_after_first_birth"], ".2f")


def trajectory_row(rec: RunRecord, st: Mapping[str, Any]) -> list[object]:
    """One row of the growth-statistic table (``st``: :func:`trajectory_stats` of ``rec``)."""
    return [
        int(rec.meta["seed"]),
        f"{rec.growth_config.theta:.4g}",
        _value(st["first"], ".2f"),
        st["static_m_first"],
        after_first_birth(rec, st),
        _value(st["final"], ".2f"),
        st["static_m_final"],
        f"{st['checks_above']}/{st['checks']}",
        f"{_value(st['G0_first'], '.3g')} → {_value(st['G0_final'], '.3g')}",
        ratio_trajectory(rec, 500) or "—",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (0..N-1)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=TRAIN.steps)
    parser.add_argument("--out", type=Path, default=Path("runs/planted"))
    parser.add_argument(
        "--offsets",
        type=str,
        default=",".join(str(o) for o in OFFSETS),
        help="planted offsets, comma-separated (a control; the main run uses the default 1,3)",
    )
    parser.add_argument(
        "--shuffle-labels", action="store_true", help="control: permute the labels, so the task needs no head at all"
    )
    args = parser.parse_args(argv)
    offsets = tuple(int(o) for o in args.offsets.split(","))
    command = " ".join(["scripts/run_planted.py", *(argv if argv is not None else sys.argv[1:])])
    console = Console(width=250)
    planted = len(offsets)
    data_desc = {**DATA, "offsets": offsets, "labels_shuffled": args.shuffle_labels}
    console.print(f"[bold]planted_offsets[/] {data_desc} → planted heads m = {planted}")
    console.print(f"layer {LAYER}\ntrain {replace(TRAIN, steps=args.steps)}")

    records = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        records.append(run_seed(seed, args.steps, args.out, command, offsets, args.shuffle_labels))

    what = " — LABELS SHUFFLED (control)" if args.shuffle_labels else ""
    table = Table(title=f"planted task: m = {planted} planted heads, {args.steps} steps per seed{what}")
    header = [
        "seed",
        "heads (planted)",
        "births: step: λ_birth (margin)",
        "head prunes",
        "K final",
        "train acc",
        "test acc",
        "checks",
        "violations",
        *(f"{c} n/viol/min margin" for c in CLAIMS),
        "wall s",
    ]
    for h in header:
        table.add_column(h, overflow="fold")
    rows: list[list[object]] = []
    traj_rows: list[list[object]] = []
    summary = []
    for rec in records:
        seed = int(rec.meta["seed"])
        total, bad, cells = invariant_cells(rec)
        arch = rec.architecture
        row: list[object] = [
            seed,
            f"{arch.n_heads} ({planted})",
            birth_summary(rec),
            arch.head_prunes,
            arch.n_prototypes,
            f"{rec.train_accuracy:.3f}",
            f"{rec.test_accuracy:.3f}",
            total,
            bad,
            *(cells[c] for c in CLAIMS),
            f"{rec.wall_time_s:.1f}",
        ]
        rows.append(row)
        table.add_row(*(str(c) for c in row))
        st = trajectory_stats(rec)
        traj_rows.append(trajectory_row(rec, st))
        summary.append(
            {
                "seed": seed,
                "n_heads": arch.n_heads,
                "planted": planted,
                "births": arch.births,
                "head_prunes": arch.head_prunes,
                "n_prototypes": arch.n_prototypes,
                "test_accuracy": rec.test_accuracy,
                "train_accuracy": rec.train_accuracy,
                "invariant_checks": total,
                "violations": bad,
                "trajectory": {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in st.items()},
                "theta": rec.growth_config.theta,
                "wall_time_s": rec.wall_time_s,
            }
        )
    console.print(table)
    traj_header = [
        "seed",
        "θ",
        "λmax/θ first check",
        "m* first",
        "max λmax/θ after 1st birth",
        "λmax/θ final",
        "m* final",
        "checks with λmax>θ",
        "G_0 first → final",
        "λmax/θ every 500 steps",
    ]
    traj = Table(title="growth statistic λ_max(A_res)/θ (m* = #{λ_i(A_res) > θ} at that check)")
    for h in traj_header:
        traj.add_column(h, overflow="fold")
    for r in traj_rows:
        traj.add_row(*(str(c) for c in r))
    console.print(traj)
    console.print(NOT_MEASURED)
    hits = sum(1 for s in summary if s["n_heads"] == planted)
    viol = sum(int(str(s["violations"])) for s in summary)
    console.print(
        f"[bold]final head count = planted ({planted}) on {hits}/{len(summary)} seeds; invariant violations: {viol}[/]"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    md = [
        f"Command: `taskset -c 0,1 .venv/bin/python {command}`",
        "",
        markdown_table(header, rows),
        "",
        markdown_table(traj_header, traj_rows),
        "",
        NOT_MEASURED,
        "",
        f"Final head count equal to the planted {planted} on **{hits}/{len(summary)}** seeds; "
        f"invariant violations: **{viol}**.",
    ]
    (args.out / "summary.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    cfg = config_dict(records[0]) if records else {}
    (args.out / "summary.json").write_text(
        json.dumps({"command": command, "data": data_desc, "config": cfg, "seeds": summary, "hits": hits}, indent=1),
        encoding="utf-8",
    )
    console.print(f"records and summary under {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
