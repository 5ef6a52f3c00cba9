"""Which relative offsets do the trained heads attend to? (reads the records; no training)

For every ``seed*.json`` record under a folder written by ``scripts/run_planted.py``, rebuild the
seed's planted task (same generator seed), rebuild the final parameters from the record, and for each
final head ``h`` measure its attention mass at each cyclic relative offset ``o``:
``a_h(o) = mean_{b,t} A_h[b, t, (t − o) mod T]`` on the test set. A head "reads offset o" when
``a_h(o) > 1/2``. The planted offsets are those the label needs (``training.data.planted_offsets``).

    .venv/bin/python scripts/inspect_planted.py runs/planted
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import markdown_table

from reference.model import forward
from training.data import planted_offsets
from training.record import RunRecord


def offset_profile(A: np.ndarray) -> np.ndarray:
    """``a(o) = mean_{b,t} A[b, t, (t − o) mod T]`` for ``o = 0..T−1``."""
    T = A.shape[1]
    t = np.arange(T)
    return np.array([A[:, t, (t - o) % T].mean() for o in range(T)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    console = Console(width=250)
    paths = sorted(args.folder.glob("seed*.json"), key=lambda p: int(p.stem.removeprefix("seed")))
    header = [
        "seed",
        "planted offsets",
        "heads",
        "per head: dominant offset (mass)",
        "planted offsets read by a head",
        "test acc",
    ]
    table = Table(title=f"attention by relative offset, {args.folder}")
    for h in header:
        table.add_column(h, overflow="fold")
    rows = []
    for path in paths:
        rec = RunRecord.load(path)
        seed = int(rec.meta["seed"])
        offsets = tuple(int(o) for o in rec.dataset_meta["offsets"])
        data = planted_offsets(
            n_train=512,
            n_test=256,
            seq_len=rec.layer_config.seq_len,
            d_in=rec.layer_config.d_in,
            offsets=offsets,
            rng=np.random.default_rng([seed, 0]),
        )
        cache = forward(rec.final_params, rec.layer_config, data.x_test, data.labels_test)
        cells = []
        read = set()
        for hid, hc in sorted(cache.heads.items()):
            prof = offset_profile(hc.A)
            o = int(np.argmax(prof))
            cells.append(f"h{hid}: {o} ({prof[o]:.2f})")
            read |= {int(k) for k in np.flatnonzero(prof > 0.5)}
        covered = sorted(read & set(offsets))
        row = [
            seed,
            ",".join(map(str, offsets)),
            len(cache.heads),
            "; ".join(cells),
            ",".join(map(str, covered)) or "none",
            f"{rec.test_accuracy:.3f}",
        ]
        rows.append(row)
        table.add_row(*(str(c) for c in row))
    console.print(table)
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
