"""Pin run records before a refactoring, compare after: behaviour-preserving changes keep them bit-identical.

Four short runs (digits and the planted task, each on the reference and the accelerated float64 engine,
one thread, the same draws) are trained and their records written as JSON with the wall time removed
(the only field a clock decides). Bit-identical is promised on the same machine only: BLAS kernels round
differently on other CPUs, so the pins are not committed and no CI test compares them.

    .venv/bin/python scripts/pin_records.py --write build/pins     # before the change
    .venv/bin/python scripts/pin_records.py --compare build/pins   # after: exit 1 on any difference

A difference is reported as the first JSON path where the records part (e.g. ``checks[3].lam_max``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run_planted import LAYER as PLANTED_LAYER
from run_planted import TRAIN as PLANTED_TRAIN

from reference.model import LayerConfig
from reference.train_config import TrainConfig
from training.configs import LAYERS
from training.configs import TRAIN as AUDIT_TRAIN
from training.data import SequenceDataset, digits_sequences, planted_offsets
from training.record import RunRecord

STEPS = 400  # long enough for births, a prune phase and several checks on both tasks; short enough for minutes


def _digits() -> tuple[SequenceDataset, LayerConfig, TrainConfig]:
    return digits_sequences(test_fraction=0.25, seed=0), LAYERS["digits"], replace(AUDIT_TRAIN, steps=STEPS, seed=0)


def _planted() -> tuple[SequenceDataset, LayerConfig, TrainConfig]:
    rng = np.random.default_rng([0, 0])
    data = planted_offsets(n_train=512, n_test=256, seq_len=8, d_in=6, offsets=(1, 3), rng=rng)
    return data, PLANTED_LAYER, replace(PLANTED_TRAIN, steps=STEPS, seed=0, eval_every=100)


def _train(engine: str, task: Callable[[], tuple[SequenceDataset, LayerConfig, TrainConfig]]) -> RunRecord:
    data, layer, cfg = task()
    rng = np.random.default_rng([0, 1])
    if engine == "reference":
        from training.trainer import train

        return train(data, layer, cfg, rng=rng)
    import torch

    from accelerated import trainer as acc

    torch.set_num_threads(1)
    return acc.train(data, layer, cfg, rng=rng, dtype=torch.float64)


RUNS = {
    "digits-reference": ("reference", _digits),
    "digits-accelerated": ("accelerated", _digits),
    "planted-reference": ("reference", _planted),
    "planted-accelerated": ("accelerated", _planted),
}


def pinned_json(rec: RunRecord) -> Any:
    d = rec.to_dict()
    d.pop("wall_time_s")
    return json.loads(json.dumps(d))  # the record's own JSON encoding, read back: what a file holds


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{path or '.'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{path or '.'}: keys {sorted(set(a) ^ set(b))} differ"
        return next((d for k in a if (d := first_difference(a[k], b[k], f"{path}.{k}")) is not None), None)
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} vs {len(b)}"
        pairs = enumerate(zip(a, b, strict=True))
        return next((d for i, (x, y) in pairs if (d := first_difference(x, y, f"{path}[{i}]")) is not None), None)
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="train the runs and write their pinned records here")
    mode.add_argument("--compare", type=Path, help="train the runs and compare with the records pinned here")
    parser.add_argument("--only", choices=sorted(RUNS), action="append", help="these runs only (repeatable)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    failed = 0
    for name in args.only or sorted(RUNS):
        engine, task = RUNS[name]
        got = pinned_json(_train(engine, task))
        n = len(got["checks"])
        if args.write is not None:
            args.write.mkdir(parents=True, exist_ok=True)
            (args.write / f"{name}.json").write_text(json.dumps(got, sort_keys=True))
            (args.write / "machine.txt").write_text(f"{platform.machine()} {platform.processor()} {platform.node()}\n")
            print(f"{name}: pinned ({n} checks, {len(got['events'])} events)")
            continue
        pinned = json.loads((args.compare / f"{name}.json").read_text())
        diff = first_difference(pinned, got)
        print(f"{name}: {'bit-identical' if diff is None else 'DIFFERS at ' + diff} ({n} checks)")
        failed += diff is not None
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
