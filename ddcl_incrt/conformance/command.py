"""``ddcl-incrt conformance``: the kit's command line (registered by :mod:`ddcl_incrt.cli`).

* ``--adapter package.module:factory`` — run every golden case on a Python adapter (the module is
  looked for in the current working directory first, as ``python -m`` does);
* ``--outputs DIR`` — compare the outputs a non-Python port wrote (docs/porting.md);
* ``--write-inputs DIR`` — write every case's inputs for such a port;
* ``--template DIR`` — write an adapter skeleton and a minimal outputs example to start a port from;
* ``--regenerate`` — rewrite the committed golden vectors from the reference.

``--json FILE`` / ``--markdown FILE`` write the report too; ``--tolerances FILE`` declares a port's
tolerances; ``--skip`` / ``--xfail`` / ``--only`` take check-name patterns (``grow_decision/*``);
``--min-coverage N`` is the number of checks that must be compared (default: at least one, and every
check of every operation the port declares, always). ``--properties`` (with ``--adapter``) also runs
property mode, whose results are in every report format; ``--only-property CLAIM`` runs one property,
``--property-examples N`` sets the examples per property and ``--property-seed N`` hypothesis's seed
(each failed property's repro names them); each of the three is refused without ``--properties``.

Exit codes (:mod:`ddcl_incrt.exit_codes`): :data:`~ddcl_incrt.exit_codes.OK` when everything compared
passed and the minimum coverage was met; :data:`~ddcl_incrt.exit_codes.FAILED_CHECK` when a check or a
property failed, errored or unexpectedly passed, or the run was below the minimum coverage (the JSON
report's ``exit_code`` is the same number); :data:`~ddcl_incrt.exit_codes.USAGE` for unusable input (a
bad option, an adapter that cannot be loaded, a malformed file, an output path that cannot be written),
reported on stderr: stdout carries only the report.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console

from ddcl_incrt.arguments import path_argument, positive_int, seed_argument
from ddcl_incrt.exit_codes import OK, USAGE
from ddcl_incrt.output_paths import write_file_with_fallback


def add_subcommand(sub: Any) -> None:
    """Add ``conformance`` to the ``ddcl-incrt`` subparsers ``sub``."""
    p = sub.add_parser("conformance", help="the conformance kit for ports (docs/porting.md)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--adapter", help="package.module:factory of a Python adapter (found in the current directory first)"
    )
    mode.add_argument("--outputs", type=path_argument, help="a directory of outputs written by a port in any language")
    mode.add_argument("--write-inputs", dest="write_inputs", type=path_argument, help="write every case's inputs here")
    mode.add_argument(
        "--template",
        type=path_argument,
        help="write an adapter skeleton (port_adapter.py) and a minimal outputs example into this folder",
    )
    mode.add_argument("--regenerate", action="store_true", help="rewrite the golden vectors from the reference")
    p.add_argument("--json", type=path_argument, default=None, help="also write the report as JSON")
    p.add_argument("--markdown", type=path_argument, default=None, help="also write the report as Markdown")
    p.add_argument("--tolerances", type=path_argument, default=None, help="the port's tolerance declaration (JSON)")
    p.add_argument("--skip", action="append", default=[], help="skip checks matching this pattern (repeatable)")
    p.add_argument("--xfail", action="append", default=[], help="expected failures (pattern, repeatable)")
    p.add_argument("--only", action="append", default=None, help="run only checks matching (repeatable)")
    p.add_argument(
        "--min-coverage",
        dest="min_coverage",
        type=positive_int,
        default=None,
        help="fail unless at least N checks are compared (default 1); every check of every declared "
        "operation must be covered either way",
    )
    p.add_argument(
        "--properties", action="store_true", help="with --adapter: also the proved claims' property tests (hypothesis)"
    )
    p.add_argument(
        "--property-examples",
        dest="property_examples",
        type=_examples_argument,
        default=None,  # None: not given (refused without --properties); the runner's default is 10
        help=f"with --properties: examples per property (default {_DEFAULT_PROPERTY_EXAMPLES})",
    )
    p.add_argument(
        "--only-property",
        dest="only_property",
        action="append",
        default=None,
        metavar="CLAIM",
        help="with --properties: run only this property (its claim: D2, G1-G3, BP; repeatable)",
    )
    p.add_argument(
        "--property-seed",
        dest="property_seed",
        type=seed_argument,
        default=None,  # None: not given (refused without --properties, also `--property-seed 0`)
        help="with --properties: hypothesis's seed for every property (default 0; each failure's repro names it)",
    )
    p.set_defaults(func=run)


_DEFAULT_PROPERTY_EXAMPLES = 10
_INT64_MAX = 2**63 - 1


def _examples_argument(text: str) -> int:
    """``--property-examples``: an integer in ``[1, 2**63 - 1]`` (the property runner's own bound, checked
    here so that the error names the option, not the runner's parameter ``max_examples``)."""
    value = positive_int(text)
    if value > _INT64_MAX:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [1, 2**63 - 1], got an integer of {len(str(value))} digits"
        )
    return value


def _error(message: str, cause: BaseException | None = None) -> int:
    """A usage or input error: on stderr (never stdout, which carries the report), as argparse reports
    bad options; exit code :data:`~ddcl_incrt.exit_codes.USAGE`. ``cause``, an exception raised by the
    port's own code (its module, its factory), is printed first with its traceback."""
    if cause is not None:
        print(_port_traceback(cause), end="", file=sys.stderr)
    print(f"ddcl-incrt conformance: error: {message}", file=sys.stderr)
    return USAGE


def _port_traceback(exc: BaseException) -> str:
    """``exc``'s traceback without the frames of the kit and of the import machinery: what the port's
    author needs to find the line of their code that raised."""
    import importlib

    from ddcl_incrt.conformance import operations

    hidden = (str(Path(importlib.__file__).parent), operations.__file__, "<frozen ")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(hidden)]
    head = "Traceback of the port's code (most recent call last):\n" if frames else ""
    return head + "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(exc))


def _misused(args: argparse.Namespace) -> str | None:
    """An option given in a mode it does nothing in (so it would be silently ignored), or None."""
    comparing = args.adapter is not None or args.outputs is not None
    if args.properties and args.adapter is None:
        return "--properties: property mode runs on a Python adapter's operations; give --adapter"
    if not args.properties:
        given = [
            option
            for option, value in (
                ("--property-examples", args.property_examples),
                ("--only-property", args.only_property),
                ("--property-seed", args.property_seed),
            )
            if value is not None
        ]
        if given:
            return f"{', '.join(given)}: only with --properties"
    if not comparing:
        mode = "--template" if args.template is not None else "--write-inputs" if args.write_inputs else "--regenerate"
        given = [
            option
            for option, value in (
                ("--json", args.json),
                ("--markdown", args.markdown),
                ("--tolerances", args.tolerances),
                ("--skip", args.skip),
                ("--xfail", args.xfail),
                ("--only", args.only),
                ("--min-coverage", args.min_coverage),
            )
            if value
        ]
        if given:
            return f"{', '.join(given)}: only with --adapter or --outputs (a comparison), not with {mode}"
    return None


def _resolved(path: Path | None) -> Path | None:
    """``path`` absolute, its links resolved; None for no path or one that cannot be resolved (a link
    loop: the output checks refuse it by name)."""
    try:
        return None if path is None else path.resolve()
    except (OSError, RuntimeError):
        return None


def _report_path_problem(args: argparse.Namespace) -> str | None:
    """A report path that would overwrite another output or the input being compared: ``--json`` and
    ``--markdown`` naming the same file, or either one the ``--outputs`` directory or inside it."""
    reports = [
        (option, path, _resolved(path)) for option, path in (("--json", args.json), ("--markdown", args.markdown))
    ]
    if reports[0][2] is not None and reports[0][2] == reports[1][2]:
        return f"--json, --markdown: both name {args.json}; give each report its own file"
    outputs = _resolved(args.outputs)
    for option, path, target in reports:
        if outputs is not None and target is not None and (target == outputs or outputs in target.parents):
            return (
                f"{option} {path}: in the --outputs directory {args.outputs} being compared "
                "(it would overwrite the port's files); write the report elsewhere"
            )
    return None


def run(args: argparse.Namespace, console: Console) -> int:
    from ddcl_incrt.conformance import runner
    from ddcl_incrt.conformance.operations import AdapterLoadError
    from ddcl_incrt.conformance.vectors import GOLDEN_DIR, VectorFileError, check_vector_target
    from ddcl_incrt.output_paths import OutputWriteError, check_output_dir, check_output_file

    misuse = _misused(args) or _report_path_problem(args)
    if misuse is not None:
        return _error(misuse)
    try:  # every output option before any work: a finished comparison is never lost to a bad path
        for option, path in (("--json", args.json), ("--markdown", args.markdown)):
            if path is not None:
                check_output_file(path, option)
        if args.write_inputs is not None:
            check_output_dir(args.write_inputs, "--write-inputs")
    except ValueError as exc:
        return _error(str(exc))
    try:  # a folder holding anything the kit did not write is never replaced (it would be lost)
        if args.write_inputs is not None:
            check_vector_target(args.write_inputs, "inputs")
        if args.regenerate:
            check_vector_target(GOLDEN_DIR, "golden")
    except VectorFileError as exc:
        option = "--write-inputs" if args.write_inputs is not None else "--regenerate"
        return _error(f"{option}: {exc}")
    try:
        if args.regenerate:
            path = runner.regenerate(GOLDEN_DIR)
            console.print(f"golden vectors written to {path}")
            return OK
        if args.write_inputs is not None:
            path = runner.write_inputs(args.write_inputs)
            console.print(f"inputs of every case written to {path} (format: docs/porting.md)")
            return OK
        if args.template is not None:
            return _template(args.template, console)
        common = {
            "policy": args.tolerances,
            "skip": args.skip,
            "xfail": args.xfail,
            "only": args.only,
            "min_coverage": args.min_coverage,
        }
        with warnings.catch_warnings():
            # the runner's warnings (a --skip/--xfail pattern that matches no check, a check the outputs
            # name that the kit lacks) are in the report: one line each on stderr below, not Python's
            # warning with the kit's source line
            warnings.filterwarnings("ignore", category=UserWarning, module=r"ddcl_incrt\.conformance\.")
            if args.adapter is not None:
                report = runner.run_adapter(args.adapter, **common)
                if args.properties:
                    report.properties = _properties(
                        args.adapter,
                        _DEFAULT_PROPERTY_EXAMPLES if args.property_examples is None else args.property_examples,
                        0 if args.property_seed is None else args.property_seed,
                        args.only_property,
                    )
            else:
                report = runner.run_outputs(args.outputs, **common)
    except AdapterLoadError as exc:
        return _error(str(exc), exc.__cause__)
    except (VectorFileError, ValueError, TypeError, OSError) as exc:
        return _error(str(exc))
    for notice in report.warnings:
        print(f"ddcl-incrt conformance: warning: {notice}", file=sys.stderr)
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
    return USAGE if failed_writes else report.exit_code


def _properties(spec: str, examples: int, seed: int, only: list[str] | None) -> list[Any]:
    from ddcl_incrt.conformance.operations import load_adapter
    from ddcl_incrt.conformance.properties import run_properties, select_properties

    chosen = None if only is None else select_properties(only)
    return list(run_properties(load_adapter(spec), max_examples=examples, only=chosen, seed=seed, spec=spec))


def _template(folder: Path, console: Console) -> int:
    from ddcl_incrt.conformance.template import ADAPTER_FILE, write_template

    written = write_template(folder)
    for path in written:
        console.print(f"written: {path}", markup=False, highlight=False)
    module = Path(ADAPTER_FILE).stem
    console.print(
        f"next: fill in {folder / ADAPTER_FILE}, then run `cd {folder} && ddcl-incrt conformance --adapter "
        f"{module}:factory` (the unfilled skeleton fails: nothing is implemented yet); docs/porting.md",
        markup=False,
        highlight=False,
    )
    return OK


__all__ = ["add_subcommand", "run"]
