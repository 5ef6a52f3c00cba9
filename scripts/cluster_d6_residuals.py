"""Protocol addendum 2 of docs/studies/cluster.md: how far the study's Adam steps are from D6's
preconditioned step. Writes runs/cluster_d6_residuals.json and prints the table:

    OMP_NUM_THREADS=1 .venv/bin/python scripts/cluster_d6_residuals.py
"""

import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from ddcl_incrt.studies import cluster as c
from training.files import write_atomic

out: dict[str, dict[str, dict[str, list[float]]]] = {}
wall0, cpu0 = time.perf_counter(), time.process_time()
with threadpool_limits(limits=1):
    for name in c.DATASETS:
        out[name] = {}
        for seed in range(10):
            out[name][str(seed)] = c.dcl_update_residuals(c.make_dataset(name, seed), "ddcl", seed)
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
write_atomic("runs/cluster_d6_residuals.json", json.dumps({"wall_s": wall, "cpu_s": cpu, "residuals": out}).encode())
print(f"{wall:.1f} s wall, {cpu:.1f} s CPU\n")
print(
    "| data set | r_M median [5%, 95%] | r_η median [5%, 95%] | r_M at step 0, seeds 0–9 | r_η at step 0, seeds 0–9 |"
)
print("|---|---|---|---|---|")
for name, seeds in out.items():
    cells = []
    for key in ("vs_M", "vs_rate_weighted"):
        v = np.array([x for s in seeds.values() for x in s[key]])
        v = v[~np.isnan(v)]
        cells.append(f"{np.median(v):.3f} [{np.percentile(v, 5):.3f}, {np.percentile(v, 95):.3f}]")
    for key in ("vs_M", "vs_rate_weighted"):
        cells.append(" ".join(f"{seeds[str(s)][key][0]:.3f}" for s in range(10)))
    print(f"| {name} | " + " | ".join(cells) + " |")
