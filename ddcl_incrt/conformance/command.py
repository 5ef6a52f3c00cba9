"""``ddcl-incrt conformance``: the kit's command line (registered by :mod:`ddcl_incrt.cli`).

* ``--adapter package.module:factory`` — run every golden case on a Python adapter;
* ``--outputs DIR`` — compare the outputs a non-Python port wrote (docs/porting.md);
* ``--write-inputs DIR`` — write every case's inputs for such a port;
* ``--regenerate`` — rewrite the committed golden vectors from the reference.

``--json FILE`` / ``--markdown FILE`` write the report too; ``--tolerances FILE`` declares a port's
tolerances; ``--skip`` / ``--xfail`` / ``--only`` take check-name patterns (``grow_decision/*``).
``--properties`` (with ``--adapter``) also runs property mode. Exit code 1 when a check or a property
failed, errored or unexpectedly passed; 2 for unusable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from ddcl_incrt.arguments import positive_int
from ddcl_incrt.output_paths import write_file_with_fallback


def add_subcommand(sub: Any) -> None:
    """Add ``conformance`` to the ``ddcl-incrt`` subparsers ``sub``."""
    p = sub.add_parser("conformance", help="the conformance kit for ports (docs/porting.md)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--adapter", help="package.module:factory of a Python adapter")
    mode.add_argument("--outputs", type=Path, help="a directory of outputs written by a port in any language")
    mode.add_argument("--write-inputs", dest="write_inputs", type=Path, help="write every case's inputs here")
    mode.add_argument("--regenerate", action="store_true", help="rewrite the golden vectors from the reference")
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    p.add_argument("--markdown", type=Path, default=None, help="also write the report as Markdown")
    p.add_argument("--tolerances", type=Path, default=None, help="the port's tolerance declaration (JSON)")
    p.add_argument("--skip", action="append", default=[], help="skip checks matching this pattern (repeatable)")
    p.add_argument("--xfail", action="append", default=[], help="expected failures (pattern, repeatable)")
    p.add_argument("--only", action="append", default=None, help="run only checks matching (repeatable)")
    p.add_argument(
        "--properties", action="store_true", help="with --adapter: also the proved claims' property tests (hypothesis)"
    )
    p.add_argument(
        "--property-examples",
        dest="property_examples",
        type=positive_int,
        default=10,
        help="examples per property (default 10)",
    )
    p.set_defaults(func=run)


def _error(message: str) -> int:
    """A usage or input error: on stderr, as argparse reports bad options, exit code 2."""
    print(f"ddcl-incrt conformance: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace, console: Console) -> int:
    from ddcl_incrt.conformance import runner
    from ddcl_incrt.conformance.vectors import GOLDEN_DIR, VectorFileError, check_vector_target
    from ddcl_incrt.output_paths import OutputWriteError, check_output_dir, check_output_file

    try:  # every output option before any work: a finished comparison is never lost to a bad path
        for option, path in (("--json", args.json), ("--markdown", args.markdown)):
            if path is not None:
                check_output_file(path, option)
        if args.write_inputs is not None:
            check_output_dir(args.write_inputs, "--write-inputs")
            check_vector_target(args.write_inputs)
    except ValueError as exc:
        return _error(str(exc))
    try:
        if args.regenerate:
            path = runner.regenerate(GOLDEN_DIR)
            console.print(f"golden vectors written to {path}")
            return 0
        if args.write_inputs is not None:
            path = runner.write_inputs(args.write_inputs)
            console.print(f"inputs of every case written to {path} (format: docs/porting.md)")
            return 0
        common = {"policy": args.tolerances, "skip": args.skip, "xfail": args.xfail, "only": args.only}
        if args.adapter is not None:
            report = runner.run_adapter(args.adapter, **common)
        else:
            report = runner.run_outputs(args.outputs, **common)
    except (VectorFileError, ValueError, TypeError, OSError) as exc:
        return _error(str(exc))
    except ImportError as exc:
        return _error(f"--adapter {args.adapter}: {type(exc).__name__}: {exc}")
    report.render(console)
    failed_writes = 0
    for option, path, text in (
        ("--json", args.json, report.to_json),
        ("--markdown", args.markdown, report.to_markdown),
    ):
        if path is None:
            continue
        try:
            write_file_with_fallback(option, path, text().encode("utf-8"))
        except OutputWriteError as exc:
            failed_writes += 1
            _error(str(exc))
    code = report.exit_code
    if args.properties and args.adapter is not None:
        code = max(code, _properties(args.adapter, args.property_examples, console))
    return 2 if failed_writes else code


def _properties(spec: str, examples: int, console: Console) -> int:
    from rich.markup import escape
    from rich.table import Table

    from ddcl_incrt.conformance.operations import load_adapter
    from ddcl_incrt.conformance.properties import run_properties

    results = run_properties(load_adapter(spec), max_examples=examples)
    table = Table(title=f"property mode: {spec}")
    for col in ("claim", "property", "status", "message"):
        table.add_column(col, overflow="fold")
    colour = {"pass": "green", "fail": "red"}
    for r in results:
        c = colour.get(r.status, "dim")
        note = r.message or (f"reference's {', '.join(r.reference_ops)}" if r.reference_ops else "")
        table.add_row(r.claim, escape(r.name), f"[{c}]{r.status}[/{c}]", escape(note))
    console.print(table)
    return 1 if any(r.status == "fail" for r in results) else 0


__all__ = ["add_subcommand", "run"]
