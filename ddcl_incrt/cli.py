"""``ddcl-incrt`` command line.

* ``audit``   — the main job: train on digits (or the planted task) with every claim a run can check
  checked live, its hypotheses watched, and write the report (report.html, report.md, figures,
  summary.json, the run record); exits 1 when a ``proved`` claim was violated where its hypotheses
  held (``measured`` and ``paper-claim`` results never do).

Exit codes of every command: 0 held, 1 a failed check, 2 usage or input error, 3 internal error,
130 interrupted by Ctrl-C or SIGTERM, 141 standard output's reader went away (README, "Exit codes").
* ``prove``   — run every sympy derivation step (``proofs_check``) and print claim / step / result;
  exits non-zero if any step fails.
* ``claims``  — the claim registry: id, label, implemented, hypotheses, sympy steps, falsifiers, and
  the hypotheses with a stated reason why no counterexample can exist.
* ``falsify`` — for every hypothesis of every ``proved`` claim: the counterexample its falsifier builds,
  passed through the claim's conclusion predicate (the hypothesis false, the conclusion false), or
  the stated reason why none can exist; non-zero if a counterexample's conclusion holds.
* ``cluster`` — the DDCL block alone as a clustering method vs k-means (docs/studies/cluster.md): writes
  cluster.json (every seed), cluster.md (the table) and cluster.png, and prints the table.
* ``conformance`` — the conformance kit for ports: run it on an adapter or on a port's written outputs,
  write the inputs for a non-Python port, regenerate the golden vectors (docs/porting.md).
* ``docs``    — where this installation's documentation is, or one document printed (``docs spec``:
  the mathematical specification).
* ``bench``   — PyTorch performance (:mod:`ddcl_incrt.bench`, needs torch): step vs nn.TransformerEncoderLayer.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ddcl_incrt.arguments import (
    BENCH_HELP,
    CLUSTER_MAX_SEEDS,
    MAX_STEPS,
    SEED_LIMIT,
    add_bench_arguments,
    cluster_seed_count,
    path_argument,
    seed_argument,
    step_count,
    step_interval,
    thread_count,
)
from ddcl_incrt.exit_codes import (
    FAILED_CHECK,
    OK,
    USAGE,
    command_console,
    command_error,
    flush_stdout,
    run_command,
)
from ddcl_incrt.interrupts import terminate_as_interrupt
from ddcl_incrt.threads import DEFAULT_THREADS, MAX_THREADS, use_threads


def _version() -> str:
    try:
        return importlib.metadata.version("ddcl-incrt")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown (not installed)"


def _prove(args: argparse.Namespace, console: Console) -> int:
    from ddcl_incrt.claim_checks import proof_steps
    from proofs_check import ALL_STEPS

    known = sorted({s.claim for s in ALL_STEPS})
    unknown = sorted(set(args.claim or ()) - set(known))
    if unknown:
        return command_error(
            "prove", f"--claim: unknown claim id(s) {', '.join(unknown)}; claims with proof steps: {', '.join(known)}"
        )
    table = Table(title="ddcl-incrt prove: symbolic steps (sympy) + numeric cross-check against reference/")
    for col in ("claim", "step", "statement", "symbolic", "numeric error / bound", "result", "s"):
        table.add_column(col, overflow="fold")
    start = time.perf_counter()
    n = sum(1 for s in ALL_STEPS if not args.claim or s.claim in args.claim)
    console.print(
        f"{n} derivation steps, each symbolic (sympy) and numeric: about 20 s for all on an idle 2-core machine"
    )
    with console.status("proving..."):
        results = proof_steps(args.claim or None)
    for r in results:
        result = "[green]proved[/green]" if r.proved else "[red]failed[/red]"
        table.add_row(r.claim, r.step, r.statement, r.symbolic, r.numeric, result, f"{r.seconds:.2f}")
    console.print(table)
    failed = sum(1 for r in results if not r.proved)
    console.print(f"{len(results) - failed} proved, {failed} failed, {time.perf_counter() - start:.1f} s")
    return FAILED_CHECK if failed else OK


def _docs(args: argparse.Namespace, console: Console) -> int:
    from ddcl_incrt.installation import doc_names, docs_dir

    root = docs_dir()
    names = doc_names(root)
    if args.name is None:
        console.print(f"The documentation of this installation is in {root}:")
        for name in names:
            console.print(f"  {name}", highlight=False)
        console.print("Print one with `ddcl-incrt docs NAME` (the specification: `ddcl-incrt docs spec`).")
        return OK
    if args.name not in names:
        return command_error("docs", f"NAME: no document {args.name!r} in {root}; there are: {', '.join(names)}")
    path = root / f"{args.name}.md"
    if args.path:
        print(path)
    else:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    return OK


def _claims(args: argparse.Namespace, console: Console) -> int:
    from reference.claims.registry import REGISTRY

    table = Table(title="Claim registry (SPEC §4)")
    for col in ("id", "title", "label", "implemented", "hypotheses", "sympy steps", "falsifiers", "reasons"):
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
            f"{len(c.no_falsifier)}: {', '.join(c.no_falsifier)}" if c.no_falsifier else "0",
        )
    console.print(table)
    reasons = sum(len(c.no_falsifier) for c in REGISTRY.values())
    console.print(f"reasons (hypotheses for which no counterexample can exist, stated in the registry): {reasons}")
    return 0


def _falsify(args: argparse.Namespace, console: Console) -> int:
    """One row per hypothesis of every implemented ``proved`` claim: its falsifier's counterexample, checked
    (the dropped hypothesis false, the others true) and passed through the claim's conclusion predicate —
    or the registry's reason why no counterexample can exist. Exit 1 if a counterexample is not one."""
    from ddcl_incrt.claim_checks import falsifier_results

    table = Table(title="Falsifiers: each hypothesis dropped, a counterexample through the conclusion predicate")
    for col in ("claim", "hypothesis dropped", "counterexample (observed) or reason", "hypotheses", "conclusion false"):
        table.add_column(col, overflow="fold")
    results = falsifier_results()
    for r in results:
        if r.reason:
            table.add_row(r.claim, r.hypothesis, f"[dim]no falsifier:[/dim] {r.reason}", "—", "—")
            continue
        hyp = (
            "only this one false"
            if r.only_this_false
            else f"[red]NO: {r.hypothesis} {not r.dropped_false}, also false {list(r.others_false)}[/red]"
        )
        verdict = "yes" if r.conclusion_fails else "[red]NO[/red]"
        if not r.agrees:
            verdict += " [red](the falsifier reported otherwise)[/red]"
        table.add_row(r.claim, r.hypothesis, r.observed, hyp, verdict)
    console.print(table)
    bad = sum(1 for r in results if not r.holds_up)
    n_reasons = sum(1 for r in results if r.reason)
    console.print(
        f"{len(results) - n_reasons} counterexamples, {n_reasons} hypotheses with a stated reason why none can exist; "
        + ("[red]some counterexample is not one: exit code 1[/red]" if bad else "every counterexample holds up")
    )
    return FAILED_CHECK if bad else OK


def _bench(args: argparse.Namespace, console: Console) -> int:
    try:
        importlib.import_module("torch")  # first: the bench's modules import it at their top
        from ddcl_incrt import bench
    except ModuleNotFoundError as exc:  # torch is an optional dependency; any other missing module is a bug
        if (exc.name or "").split(".")[0] != "torch":
            raise
        return command_error("bench", "needs PyTorch, which is not installed: pip install torch==2.13.0")
    return bench.run_cli(args, console)


def _cluster(args: argparse.Namespace, console: Console) -> int:
    from ddcl_incrt.studies import cluster

    # a bad --datasets / --seeds is a ValueError raised before any run, reported by main on stderr
    result, files = cluster.run_cli(
        out=args.out, seeds=args.seeds, datasets=args.datasets, quick=args.quick, settings=args.settings
    )
    table = Table(title="ddcl-incrt cluster: the DDCL block as a clustering method (measured; mean ± std over seeds)")
    for col in ("data set", "setting", "ACC", "NMI", "ARI", "D1 checks / violations", "s per run"):
        table.add_column(col, overflow="fold")
    for dataset in result.datasets:
        for setting in result.settings:
            row = result.summary[dataset][setting]
            cells = [f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_std']:.3f}" for m in cluster.METRICS]
            d1 = "—" if setting == cluster.KMEANS else f"{int(row['d1_checks'])} / {int(row['d1_violations'])}"
            table.add_row(dataset, setting, *cells, d1, f"{row['wall_s_mean']:.2f}")
    console.print(table)
    console.print(
        f"D1: {result.d1_checks} checks, {result.d1_violations} violated; "
        f"{result.wall_s:.1f} s wall, {result.cpu_s:.1f} s CPU; files: {', '.join(str(p) for p in files.values())}"
    )
    return FAILED_CHECK if result.d1_violations else OK


def _audit(args: argparse.Namespace, console: Console) -> int:
    from ddcl_incrt.audit.report import plural
    from ddcl_incrt.audit.run import AuditOptions, audit

    variants = list(args.growth_variants or ())
    repeated = sorted({v for v in variants if variants.count(v) > 1})
    if repeated:
        raise ValueError(f"--growth-variant: {repeated[0]!r} is given more than once (each variant is on or off)")
    opts = AuditOptions(
        dataset=args.dataset,
        steps=args.steps,
        seed=args.seed,
        engine=args.engine,
        theta=args.theta,
        phi_g=args.phi_g,
        out=args.out,
        quick=args.quick,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        studies=args.studies,
        skip_proofs=args.skip_proofs,
        growth_variants=tuple(variants),
    )
    code, summary, files = audit(opts, console)
    table = Table(title=f"ddcl-incrt audit: {summary['dataset']}, {summary['steps']} steps, {summary['engine']}")
    columns = ("claim", "label", "checks", "certified", "uncertified", "violated", "not promised (failed)")
    for col in (*columns, "tightest value/bound", "status"):
        table.add_column(col, overflow="fold")
    colour = {"violated": "red", "held": "green", "nothing certified": "yellow", "not promised": "yellow"}
    for row in summary["claims"]:
        tightest = "—" if row["tightest"] is None else f"{row['tightest']:.3g}"
        status = row["status"]
        unpromised = (
            f"{row['unpromised']} ({row['failed_unpromised']}): {', '.join(row['failed_hypotheses'])}"
            if row["unpromised"]
            else "0"
        )
        table.add_row(
            row["claim_id"],
            row["label"],
            str(row["checks"]),
            str(row["certified"]),
            str(row["uncertified"]),
            str(row["violations"]),
            unpromised,
            tightest,
            f"[{colour[status]}]{status}[/]" if status in colour else status,
        )
    console.print(table)
    arch = summary["architecture"]
    console.print(
        f"architecture: {plural(arch['n_heads'], 'head')} ({plural(arch['births'], 'birth')}, "
        f"{plural(arch['head_prunes'], 'head prune')}), "
        f"{arch['n_prototypes']} prototypes ({arch['prototype_prunes']} pruned); "
        f"test accuracy {summary['test_accuracy']:.3f}, train {summary['train_accuracy']:.3f}; "
        f"{summary['wall_time_s']:.1f} s"
    )
    if summary.get("quick"):
        console.print("[yellow]a quick run: it checks every live claim, but cannot stand for the default run[/]")
    console.print(proofs_line(summary["checked_elsewhere"]), highlight=False)
    console.print("[bold]verdict on the papers' claims[/bold]")
    for v in summary["verdicts"]:
        console.print(f"  • “{v['sentence']}” ({', '.join(v['claims'])}): {v['verdict']}")
    console.print("[bold]findings[/bold]" + ("" if summary["findings"] else ": none"))
    for line in summary["findings"]:
        console.print(f"  • {line}")
    console.print(f"report: {files['report.html']}  (also {files['report.md']}, summary.json, record.json, figures/)")
    if code:
        console.print("[red]a proved claim was violated: exit code 1[/red]")
    return code


def proofs_line(rows: Sequence[Mapping[str, Any]] | None) -> str:
    """The audit's one terminal line on its sympy proofs and falsifiers (the report has them per claim):
    totals over the rows of :func:`ddcl_incrt.audit.summary.checked_elsewhere`, or that they were not run
    (``None``: ``--quick`` or ``--skip-proofs``)."""
    if rows is None:
        return "proofs and falsifiers: not run (--quick or --skip-proofs): ddcl-incrt prove and falsify run them"
    steps, proved = sum(r["steps"] for r in rows), sum(r["proved"] for r in rows)
    found, hold = sum(r["counterexamples"] for r in rows), sum(r["hold_up"] for r in rows)
    reasons = sum(len(r["no_falsifier"]) for r in rows)
    return (
        f"proofs: {proved} of {steps} sympy steps proved; falsifiers: {hold} of {found} counterexamples hold up "
        f"(and {reasons} {'hypothesis' if reasons == 1 else 'hypotheses'} with a stated reason why none can exist)"
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0.0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from reference.incrt.controller import GROWTH_VARIANTS

    parser = argparse.ArgumentParser(
        prog="ddcl-incrt",
        description=(__doc__ or "").replace("``", ""),  # the module docstring, without its reST markup
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("audit", help="train with every claim checked live and write the report (the main job)")
    p.add_argument("--dataset", choices=("digits", "planted"), default="digits", help="default: digits")
    p.add_argument(
        "--steps",
        type=step_count,
        default=None,
        help=f"optimiser steps, 1 to {MAX_STEPS} (default 1500; 300 with --quick)",
    )
    p.add_argument(
        "--seed", type=seed_argument, default=0, help="data split and training seed, 0 to 2**32 - 1 (default 0)"
    )
    p.add_argument(
        "--engine",
        choices=("auto", "reference", "accelerated"),
        default="auto",
        help="auto: the accelerated engine when torch is installed, else the reference",
    )
    p.add_argument("--theta", type=_positive_float, default=None, help="growth threshold θ (default: calibrated)")
    p.add_argument(
        "--phi-g", dest="phi_g", type=_positive_float, default=None, help="pruning threshold (default 0.01θ)"
    )
    p.add_argument(
        "--growth-variant",
        dest="growth_variants",
        action="append",
        choices=GROWTH_VARIANTS,
        default=None,
        help="a named variant of the growth rule (repeatable; default none: the paper's rule); author_code is "
        "the rule as its author coded it (docs/studies/planted-heads.md §2.5)",
    )
    p.add_argument("--out", type=path_argument, default=Path("audit"), help="output folder (default ./audit)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a run of seconds: 300 steps, checks every 25, dwell 50 (births, prunes and every live claim)",
    )
    p.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=step_interval,
        default=500,
        help="checkpoint to OUT/checkpoints every N steps and at the last one, keeping the last 2 (0: only at the "
        "last step and on interruption; default 500)",
    )
    p.add_argument(
        "--resume",
        type=path_argument,
        default=None,
        help="continue an interrupted audit from a checkpoint file, or from the latest in a folder (same options)",
    )
    p.add_argument(
        "--studies",
        type=path_argument,
        default=None,
        help="add the studies' results found in this folder (one subfolder per study: its .md and .png) to the report",
    )
    p.add_argument(
        "--skip-proofs",
        action="store_true",
        help="do not embed the sympy steps and falsifiers in the report (about 20 s; --quick skips them)",
    )
    p.set_defaults(func=_audit)
    p = sub.add_parser("prove", help="run every sympy derivation step and print a table")
    p.add_argument("--claim", action="append", help="only this claim id (repeatable), e.g. --claim D2")
    p.set_defaults(func=_prove)
    sub.add_parser(
        "claims",
        help="list the claim registry",
        description="The claim registry: id, title, label, what is implemented, hypotheses, sympy steps, falsifiers.",
    ).set_defaults(func=_claims)
    sub.add_parser(
        "falsify",
        help="run every falsifier",
        description=(
            "For every hypothesis of every proved claim: the counterexample its falsifier builds, passed through "
            "the claim's conclusion (the hypothesis false, the conclusion false), or the registry's reason why "
            "none can exist. Exit 1 if a counterexample is not one."
        ),
    ).set_defaults(func=_falsify)
    p = sub.add_parser("cluster", help="the DDCL block as a clustering method vs k-means (docs/studies/cluster.md)")
    p.add_argument("--out", type=path_argument, default=Path("cluster"), help="output folder (default ./cluster)")
    p.add_argument(
        "--seeds",
        type=cluster_seed_count,
        default=None,
        help=f"a count N: seeds 0..N-1, N at most {CLUSTER_MAX_SEEDS} (default 10; 2 with --quick)",
    )
    p.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        help="digits, blobs, moons, circles, madelon-{10,50,200,500,1000} (default: all; 3 small with --quick)",
    )
    p.add_argument(
        "--settings",
        nargs="+",
        default=None,
        help="the study's settings to run (default: all; docs/studies/cluster.md lists them)",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds (20 steps)")
    p.set_defaults(func=_cluster)
    p = sub.add_parser(
        "docs",
        help="list the installed documentation, or print one document (the specification: docs spec)",
    )
    p.add_argument("name", nargs="?", default=None, help="a document, e.g. spec, porting, studies/cluster")
    p.add_argument("--path", action="store_true", help="print the document's path instead of its text")
    p.set_defaults(func=_docs)
    p = sub.add_parser("bench", help=BENCH_HELP)
    add_bench_arguments(p)
    p.set_defaults(func=_bench)
    from ddcl_incrt.conformance.command import add_subcommand as add_conformance

    add_conformance(sub)
    for name, command in sub.choices.items():
        if command.description is None:  # a subcommand's --help says what it does, as its one-line help
            command.description = next(a.help for a in sub._choices_actions if a.dest == name)
        if name != "bench":  # the benchmark's own --threads is part of its protocol (default 2)
            command.add_argument(
                "--threads",
                type=thread_count,
                default=None,
                help=f"threads for torch and NumPy's BLAS, 1 to {MAX_THREADS} "
                f"(default: OMP_NUM_THREADS if set, else {DEFAULT_THREADS})",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; its exit code (:mod:`ddcl_incrt.exit_codes`), by
    :func:`~ddcl_incrt.exit_codes.run_command`: a bad argument or input file the command detects (a
    ``ValueError``, a malformed record or checkpoint) and a file that cannot be read or written (an
    ``OSError``) are reported on stderr as ``ddcl-incrt <command>: error: …`` with
    :data:`~ddcl_incrt.exit_codes.USAGE`, as argparse reports bad options; Ctrl-C (or SIGTERM) prints one
    line saying where the state is (:data:`~ddcl_incrt.exit_codes.INTERRUPTED`); a reader of standard
    output that went away stops the command silently (:data:`~ddcl_incrt.exit_codes.OUTPUT_CLOSED`);
    any other exception is a bug: its traceback and :data:`~ddcl_incrt.exit_codes.INTERNAL`."""
    from ddcl_incrt.installation import OWN_PACKAGES, foreign_package

    # Before the parser, which imports the kit (and so `training`): another module named `reference`,
    # `training`, ... first on sys.path is named, instead of an ImportError from deep inside.
    for name in OWN_PACKAGES:
        if (problem := foreign_package(name)) is not None:
            print(f"ddcl-incrt: error: {problem}", file=sys.stderr)
            return USAGE
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # --help, --version or a bad option, printed: its flush, not one failing at exit
        flush_stdout()
        raise
    console = command_console()

    def body() -> int:
        use_threads(args.threads)
        code: int = args.func(args, console)
        return code

    return run_command(args.command, body)


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "SEED_LIMIT",
    "build_parser",
    "command_error",
    "main",
    "proofs_line",
    "seed_argument",
    "terminate_as_interrupt",
]
