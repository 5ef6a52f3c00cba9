"""The bench as a command: :func:`run` (every timed section in order, or the profile with
``--profile``, the report saved after each), :func:`run_cli` (the ``ddcl-incrt bench`` subcommand's
body, called by :mod:`ddcl_incrt.cli`) and :func:`main` (``python -m ddcl_incrt.bench``, the same
options from :func:`ddcl_incrt.arguments.add_bench_arguments`). The bench never imports the CLI."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from ddcl_incrt.arguments import BENCH_HELP, add_bench_arguments
from ddcl_incrt.bench.configs import SCHEMA, BenchOptions
from ddcl_incrt.bench.evidence import load_average, machine, thread_setting
from ddcl_incrt.bench.profile import profile_section
from ddcl_incrt.bench.report import competing_threads, header, notes, print_notes, print_section, write_json_atomic
from ddcl_incrt.bench.sections import (
    flops_section,
    growth_check_section,
    reference_section,
    scaling_section,
    training_step_section,
)
from ddcl_incrt.bench.steps import prime
from ddcl_incrt.bench.timing import spread_warnings
from ddcl_incrt.exit_codes import command_console, flush_stdout, run_command
from ddcl_incrt.output_paths import OutputWriteError, check_output_file, write_with_fallback
from ddcl_incrt.threads import use_threads


def _sections(opts: BenchOptions, report: dict[str, Any], status: Callable[[str], None]) -> list[tuple[str, Any]]:
    """The sections of this run, in order: the profile alone with ``--profile``, else the five timed."""
    if opts.profile:
        return [("profile", lambda: profile_section(opts, status))]
    return [
        ("training_step", lambda: training_step_section(opts, status)),
        ("growth_check", lambda: growth_check_section(opts, status)),
        ("reference_speedup", lambda: reference_section(opts, report["training_step"], status)),
        ("scaling", lambda: scaling_section(opts, status)),
        ("flops", lambda: flops_section(opts, report["training_step"], status)),
    ]


def run(opts: BenchOptions, console: Console) -> dict[str, Any]:
    """Every section in order. Each section's table is printed as it ends, and the report so far is
    written to ``opts.out`` (atomically, ``"complete": false`` until the last), so a long run that
    fails late keeps what it measured. The load average is recorded before the run and before and
    after each section; the notes and the spread warnings are rebuilt at each save. Returns the report."""
    check_output_file(opts.out, "--out")  # before any measurement: minutes of timings are never lost to a bad path
    t0 = time.perf_counter()
    report: dict[str, Any] = {"schema": SCHEMA, "complete": False}
    report["load"] = {"before": load_average(), "after": None, "sections": {}}
    target = [opts.out]  # where the report goes: --out, or a temporary file once writing there failed
    failure: list[OutputWriteError] = []

    def save() -> None:
        report["notes"] = notes(report)
        report["spread_warnings"] = spread_warnings({k: v for k, v in report.items() if k != "spread_warnings"})
        report["wall_s"] = time.perf_counter() - t0
        if failure:
            write_json_atomic(target[0], report)
            return
        try:
            write_with_fallback("--out", opts.out, lambda p: write_json_atomic(p, report), file=True)
        except OutputWriteError as exc:
            if exc.fallback is None:
                raise
            failure.append(exc)
            target[0] = exc.fallback
            console.print(f"warning: {exc}", markup=False, highlight=False)

    saved: list[str] = []  # the sections in the report file so far
    complete = False  # whether the file holds the complete report
    try:
        with thread_setting(opts), console.status("bench...") as st:

            def status(msg: str) -> None:
                st.update(f"bench: {msg}")

            report["machine"] = machine(opts)
            report["settings"] = opts.to_json()
            console.print(header(report), markup=False)
            competing = competing_threads(report)
            if competing:  # said before minutes of timings, so that the user can stop and rerun
                console.print(f"warning: {competing}", markup=False, highlight=False)
            status("priming (one untimed step of each kind)")
            prime(opts.device_name)
            for key, section in _sections(opts, report, status):
                before = load_average()
                report[key] = section()
                report["load"]["after"] = load_average()
                report["load"]["sections"][key] = {"before": before, "after": report["load"]["after"]}
                print_section(report, key, console)
                save()
                saved.append(key)
        report["complete"] = True
        save()
        complete = True
        print_notes(report, console)
        console.print(f"wrote {target[0]} ({report['wall_s']:.1f} s)", markup=False)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the line says what was kept, not "nothing"
        if complete:
            exc.add_note(f"the complete report is in {target[0]}")
        elif saved:
            exc.add_note(f"the sections measured before it ({', '.join(saved)}) are in {target[0]} (incomplete)")
        raise
    if failure:
        raise failure[0]
    return report


def run_cli(args: argparse.Namespace, console: Console) -> int:
    """The ``bench`` subcommand's body: options from ``args``, :func:`run`. A bad option is a ``ValueError``
    naming it (``ddcl_incrt.cli.main`` reports it on stderr with exit code 2)."""
    try:
        opts = BenchOptions.from_args(args)
    except ValueError as exc:  # BenchOptions names its field; the command line knows it as --field
        raise ValueError(f"--{exc}") from exc
    run(opts, console)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ddcl_incrt.bench [options]``: what ``ddcl-incrt bench`` runs, by the same code: the same
    options (:func:`~ddcl_incrt.arguments.add_bench_arguments`), console and runner
    (:func:`~ddcl_incrt.exit_codes.run_command`: a bad option or an unwritable ``--out`` on stderr with exit
    code 2, Ctrl-C or SIGTERM one line and 130, a closed pipe 141, a bug its traceback and 3), the same
    body (:func:`use_threads`, :func:`run_cli`). Only the program named in argparse's messages differs."""
    parser = argparse.ArgumentParser(prog="python -m ddcl_incrt.bench", description=BENCH_HELP)
    add_bench_arguments(parser)
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit:  # --help or a bad option, printed: its flush, not one failing at exit
        flush_stdout()
        raise
    console = command_console()

    def body() -> int:
        use_threads(args.threads)
        return run_cli(args, console)

    return run_command("bench", body)


__all__ = ["main", "run", "run_cli"]
