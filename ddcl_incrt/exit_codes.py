"""The exit codes of every ``ddcl-incrt`` command, one meaning each (README, "Exit codes").

* :data:`OK` (0): the command did its work and everything it checks held.
* :data:`FAILED_CHECK` (1): the command did its work and a check it exists for failed: a ``proved``
  claim violated where its hypotheses held (``audit``), a derivation step failed (``prove``), a
  counterexample that is not one (``falsify``), a port that differs from the reference or covers less
  than required (``conformance``), a D1 violation in a study (``cluster``).
* :data:`USAGE` (2): the command was asked for something it cannot do: a bad argument, a missing
  optional dependency, an unreadable or malformed input file, an output path it cannot write. Nothing
  was computed, or what was is kept and named.
* :data:`INTERNAL` (3): an unexpected error inside the command (a bug): the traceback is printed.
* :data:`INTERRUPTED` (130): stopped by Ctrl-C (the shell's convention, 128 + SIGINT) or by SIGTERM
  (what ``timeout``, schedulers and container stops send; handled as Ctrl-C, so the state is saved
  alike); one line says where the state is and how to resume.
"""

from __future__ import annotations

import sys
import traceback

OK = 0
FAILED_CHECK = 1
USAGE = 2
INTERNAL = 3
INTERRUPTED = 130


def program_error(prog: str, message: str) -> int:
    """Print a usage or input error to stderr (never stdout, which carries the results) as argparse does,
    ``<prog>: error: …``, and return :data:`USAGE`."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return USAGE


def command_error(command: str, message: str) -> int:
    """:func:`program_error` of the ``ddcl-incrt <command>`` subcommand."""
    return program_error(f"ddcl-incrt {command}", message)


def internal_error(prog: str) -> int:
    """Inside an ``except``: the exception's traceback, then one line saying it is a bug of ``prog``;
    returns :data:`INTERNAL`."""
    traceback.print_exc()
    print(
        f"{prog}: internal error (a bug, exit code {INTERNAL}): please report it with the traceback above",
        file=sys.stderr,
    )
    return INTERNAL


__all__ = ["FAILED_CHECK", "INTERNAL", "INTERRUPTED", "OK", "USAGE", "command_error", "internal_error", "program_error"]
