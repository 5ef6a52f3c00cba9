"""``ddcl-incrt`` command line.

* ``prove``   — run every sympy derivation step (``proofs_check``) and print claim / step / result;
  exits non-zero if any step fails.
* ``claims``  — the claim registry: id, label, implemented, hypotheses, sympy steps, falsifiers.
* ``falsify`` — run every falsifier and show the counterexample it found; non-zero if one finds none.
* ``bench``   — PyTorch performance (:mod:`ddcl_incrt.bench`, needs torch): step vs nn.TransformerEncoderLayer.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table


def _prove(args: argparse.Namespace, console: Console) -> int:
    from proofs_check import ALL_STEPS

    steps = [s for s in ALL_STEPS if not args.claim or s.claim in args.claim]
    if not steps:
        console.print(f"[red]no proof steps for claims {args.claim}[/red]")
        return 2
    table = Table(title="ddcl-incrt prove: symbolic steps (sympy) + numeric cross-check against reference/")
    for col in ("claim", "step", "statement", "symbolic", "numeric error / bound", "result", "s"):
        table.add_column(col, overflow="fold")
    failed = 0
    start = time.perf_counter()
    with console.status("proving...") as status:
        for step in steps:
            status.update(f"proving {step.id}: {step.statement[:60]}")
            t0 = time.perf_counter()
            try:
                out = step.run()
                proved, sym = out.proved, "ok" if out.symbolic_ok else "FAILED"
                num = f"{out.numeric_error:.2e} / {out.numeric_bound:.2e}"
            except Exception as exc:  # a crashing step is a failed step, reported with its error
                proved, sym, num = False, "ERROR", f"{type(exc).__name__}: {exc}"
            failed += not proved
            table.add_row(
                step.claim,
                step.id,
                step.statement,
                sym,
                num,
                "[green]proved[/green]" if proved else "[red]failed[/red]",
                f"{time.perf_counter() - t0:.2f}",
            )
    console.print(table)
    total = time.perf_counter() - start
    console.print(f"{len(steps) - failed} proved, {failed} failed, {total:.1f} s")
    return 1 if failed else 0


def _claims(args: argparse.Namespace, console: Console) -> int:
    from reference.claims.registry import REGISTRY

    table = Table(title="Claim registry (SPEC §4)")
    for col in ("id", "title", "label", "implemented", "hypotheses", "sympy steps", "falsifiers"):
        table.add_column(col, overflow="fold")
    for c in REGISTRY.values():
        table.add_row(
            c.id,
            c.title,
            c.label.value,
            "yes" if c.implemented else "[yellow]not yet[/yellow]",
            ", ".join(h.name for h in c.hypotheses),
            ", ".join(c.sympy_steps),
            ", ".join(f.hypothesis for f in c.falsifiers),
        )
    console.print(table)
    return 0


def _falsify(args: argparse.Namespace, console: Console) -> int:
    from reference.claims.registry import REGISTRY

    table = Table(title="Falsifiers: each hypothesis dropped, a checked counterexample")
    for col in ("claim", "hypothesis dropped", "what was observed", "conclusion fails"):
        table.add_column(col, overflow="fold")
    missing = 0
    for claim in REGISTRY.values():
        for f in claim.falsifiers:
            ce = f.run()
            missing += not ce.conclusion_fails
            table.add_row(claim.id, f.hypothesis, ce.observed, "yes" if ce.conclusion_fails else "[red]NO[/red]")
    console.print(table)
    return 1 if missing else 0


def _bench(args: argparse.Namespace, console: Console) -> int:
    try:
        from ddcl_incrt import bench
    except ModuleNotFoundError as exc:  # torch is an optional dependency; any other missing module is a bug
        if (exc.name or "").split(".")[0] != "torch":
            raise
        console.print("[red]ddcl-incrt bench needs PyTorch, which is not installed: pip install torch==2.13.0[/red]")
        return 2
    return bench.run_cli(args, console)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddcl-incrt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prove", help="run every sympy derivation step and print a table")
    p.add_argument("--claim", action="append", help="only this claim id (repeatable), e.g. --claim D2")
    p.set_defaults(func=_prove)
    sub.add_parser("claims", help="list the claim registry").set_defaults(func=_claims)
    sub.add_parser("falsify", help="run every falsifier").set_defaults(func=_falsify)
    p = sub.add_parser(
        "bench",
        help="time the PyTorch training step against nn.TransformerEncoderLayer and the reference (needs torch)",
    )
    p.add_argument("--quick", action="store_true", help="smoke test: one size per section, 3 repeats, no compile")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="eager steps only (no torch.compile)")
    p.add_argument("--large", action="store_true", help="add the large size (B=64, T=128, d=256); always on CUDA")
    p.add_argument("--repeats", type=int, default=None, help="timed iterations per measurement (default 20; 3 quick)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and NumPy's BLAS (default 2)")
    p.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON report (default bench.json)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    p.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=max(Console().width, 140))
    code: int = args.func(args, console)
    return code


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "build_parser",
    "main",
]
