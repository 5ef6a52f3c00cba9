"""Analysis of the cluster study's protocol addendum (docs/studies/cluster.md, "Addendum results"), run after
``runs/cluster_addendum``, ``runs/cluster_rerun4`` and ``runs/cluster_identity`` exist:

    .venv/bin/python scripts/cluster_addendum_analysis.py docs/studies/cluster-addendum.png

Analysis of the protocol addendum (docs/studies/cluster.md): identity of the re-run rows, merged tables,
paired comparisons, feature scales, the figure."""

import json
import sys
from pathlib import Path

import numpy as np

from ddcl_incrt.studies import cluster as c

md = Path("docs/studies/cluster.md").read_text(encoding="utf-8")
sec = md.split("### ACC of every seed")[1].split("###")[0]
table = {}
for line in sec.splitlines():
    cells = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(cells) == 12 and cells[0] in c.DATASETS:
        table[(cells[0], cells[1])] = cells[2:]

rerun = json.loads(Path("runs/cluster_rerun4/cluster.json").read_text(encoding="utf-8"))
ident = json.loads(Path("runs/cluster_identity/cluster.json").read_text(encoding="utf-8"))
add = json.loads(Path("runs/cluster_addendum/cluster.json").read_text(encoding="utf-8"))


def compare(doc, shift=0):
    bad, n = [], 0
    for r in doc["runs"]:
        exp = table[(r["dataset"], r["setting"])][(r["seed"] + shift) % 10]
        n += 1
        if exp != f"{r['acc']:.3f}":
            bad.append((r["dataset"], r["setting"], r["seed"], exp, f"{r['acc']:.3f}"))
    return n, bad


for name, doc in (("identity (blobs, madelon-10; 6 settings)", ident), ("re-run (9 sets; 4 settings)", rerun)):
    n, bad = compare(doc)
    print(f"{name}: {n} seeds compared, {len(bad)} differ {bad[:5]}")
n, bad = compare(rerun, shift=1)
print(f"planted (each seed against the next seed's documented value): {len(bad)} of {n} differ")

merged = c.merge_documents(rerun, add)
doc = merged.to_dict()
print(c.markdown_table(merged))
for m in c.METRICS:
    print(f"\n{m.upper()} of every seed (addendum rows)\n")
    sub = {**doc, "settings": list(c.ADDENDUM_SETTING_NAMES)}
    print(c.per_seed_markdown(sub, m))
print("\nPaired ACC\n")
print(c.paired_markdown(doc, "acc"))

print("\nFeature scale (median [min, max]) of the backbone settings\n")
print("| data set | " + " | ".join(s for s in merged.settings if s.startswith("backbone")) + " |")
print("|---|" + "---|" * sum(s.startswith("backbone") for s in merged.settings))
for d in merged.datasets:
    cells = []
    for s in merged.settings:
        if s.startswith("backbone"):
            v = [r.final["feature_scale"] for r in merged.runs if r.dataset == d and r.setting == s]
            cells.append(f"{np.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]")
    print(f"| {d} | " + " | ".join(cells) + " |")

print("\nInteraction on every data set: (backbone-ols − backbone) − (ols-only − ddcl), ACC per seed\n")
for d in merged.datasets:
    diffs = []
    for seed in merged.seeds:
        acc = {r.setting: r.metrics["acc"] for r in merged.runs if r.dataset == d and r.seed == seed}
        diffs.append((acc["backbone-ols"] - acc["backbone"]) - (acc["ols-only"] - acc["ddcl"]))
    print(
        d,
        " ".join(f"{x:+.3f}" for x in diffs),
        f"mean {np.mean(diffs):+.3f}, negative on {sum(x < 0 for x in diffs)}/10",
    )

if len(sys.argv) > 1:
    Path(sys.argv[1]).write_bytes(c.figure_png(merged))
    print("figure written to", sys.argv[1])
