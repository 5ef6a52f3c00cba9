"""Data-parallel training (accelerated.distributed) against one process: wall time and agreement.

For one configuration (the audit's, ``ddcl_incrt.audit.run``: digits or planted, fewer steps), three
runs of the same global batches from the same seed, float64 on the CPU:

* 1 process, 1 thread and 1 process, 2 threads (``accelerated.trainer.train``);
* W processes, 1 thread each (``accelerated.distributed.DistributedEngine``, gloo, a file store).

It prints the wall time of each (the record's ``wall_time_s``: calibration, steps, checks,
evaluations) and, for the W-process run against the 1-process 1-thread run, whether the events are
identical and the worst scaled difference (``max|a − b| / max(max|b|, 1)``) of the losses and the
final parameters. The machine's load average is printed too: timings on a shared machine are only
comparable within one invocation.

    .venv/bin/python scripts/bench_distributed.py --dataset digits --steps 200
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accelerated import trainer as acc_trainer
from accelerated.distributed import DistributedEngine
from reference.log import LOSS_FIELDS
from reference.surgery import flatten
from reference.train_config import TrainConfig
from training.configs import LAYERS, TRAIN
from training.data import named_dataset
from training.record import RunRecord
from training.trainer import run

LOSSES = LOSS_FIELDS


def _config(dataset: str, steps: int) -> TrainConfig:
    batch = TRAIN.batch_size if dataset == "digits" else 32  # as the audit's train_config
    return replace(TRAIN, steps=steps, batch_size=batch, eval_every=0)


def _worker(rank: int, world: int, dataset: str, steps: int, seed: int, out: str) -> None:
    torch.set_num_threads(1)
    store = dist.FileStore(str(Path(out) / "store"), world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        engine = DistributedEngine.from_process_group()
        record = run(
            named_dataset(dataset, seed),
            LAYERS[dataset],
            _config(dataset, steps),
            rng=np.random.default_rng([seed, 1]),
            engine=engine,
        )
        if rank == 0:  # pickled: the bench's own hand-over, not a record file for others
            (Path(out) / "summary.pickle").write_bytes(pickle.dumps(_summary(record)))
    finally:
        dist.destroy_process_group()


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1.0))


def _summary(rec: RunRecord) -> dict[str, Any]:
    """What the table needs from a record, as plain picklable values."""
    return {
        "wall_time_s": rec.wall_time_s,
        "losses": {k: np.array(getattr(rec.losses, k)) for k in LOSSES},
        "params": flatten(rec.final_params),
        "events": [(e.step, e.kind.value, e.head_id, e.prototype_id) for e in rec.events],
        "births": rec.architecture.births,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("digits", "planted"), default="digits")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    cfg = _config(args.dataset, args.steps)
    rows: list[tuple[str, dict[str, Any]]] = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rec = acc_trainer.train(
            named_dataset(args.dataset, args.seed),
            LAYERS[args.dataset],
            cfg,
            rng=np.random.default_rng([args.seed, 1]),
        )
        rows.append((f"1 process × {threads} thread{'s' if threads > 1 else ''}", _summary(rec)))
    os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(args.world, args.dataset, args.steps, args.seed, out), nprocs=args.world, join=True)
        rows.append(
            (f"{args.world} processes × 1 thread (gloo)", pickle.loads((Path(out) / "summary.pickle").read_bytes()))
        )
    print(f"load average after: {os.getloadavg()}")
    base = rows[0][1]
    print(
        f"\n{args.dataset}, {args.steps} steps, batch {cfg.batch_size}, check every {cfg.check_every}, float64, CPU\n"
    )
    print("| run | wall s | ms/step | vs 1×1 | events as 1×1 | losses max rel | final params max rel |")
    print("|---|---|---|---|---|---|---|")
    fb = base["params"]
    for name, rec in rows:
        fr = rec["params"]
        loss_err = max(_max_rel(rec["losses"][k], base["losses"][k]) for k in LOSSES)
        same_names = list(fr) == list(fb)
        param_err = max(_max_rel(fr[k], fb[k]) for k in fb) if same_names else float("nan")
        wall = rec["wall_time_s"]
        print(
            f"| {name} | {wall:.2f} | {1e3 * wall / args.steps:.1f} | {base['wall_time_s'] / wall:.2f}× | "
            f"{rec['events'] == base['events']} | {loss_err:.1e} | {param_err:.1e} |"
        )
    print(f"\nevents: {len(base['events'])} ({base['births']} births)")


if __name__ == "__main__":
    main()
