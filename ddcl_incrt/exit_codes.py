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
* :data:`OUTPUT_CLOSED` (141): standard output's reader went away before the command had written its
  results (``ddcl-incrt falsify | head -1``): the command stops writing, says nothing and exits
  128 + SIGPIPE, what a shell reports for a program such as ``cat`` or ``grep`` stopped the same way.
  Not 0 (not every result was delivered, and those unwritten may include a failed check), not 1 (no
  check failed), not 2 (the invocation was fine): none of the other codes says what happened, and 141
  follows the convention 130 already follows. A standard output closed before the command starts
  (``>&-``) is a usage error instead (2): nothing runs with nowhere to put its results.

:func:`run_command` turns how a command's body ended into these codes, one way for every command.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import traceback
from collections.abc import Callable

from rich.console import Console

from ddcl_incrt.interrupts import interrupt_line, terminate_as_interrupt

OK = 0
FAILED_CHECK = 1
USAGE = 2
INTERNAL = 3
INTERRUPTED = 130
OUTPUT_CLOSED = 141  # 128 + SIGPIPE (13)


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


def _discard_stdout() -> None:
    """Point the standard output's descriptor at the null device, as Python's documentation does after a
    ``BrokenPipeError`` (the ``signal`` module, "Note on SIGPIPE"): what is still buffered is then
    flushed there at exit, instead of a second ``BrokenPipeError`` ("Exception ignored", exit 120)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture): nothing flushes into a pipe
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _stdout_broken() -> bool:
    """Whether standard output's reader went away: a ``BrokenPipeError`` may come from any pipe or socket a
    command uses (a subprocess's, a worker's), and only standard output's own is :data:`OUTPUT_CLOSED`.

    Asked of standard output itself, twice: flushing what it still buffers fails with EPIPE if its reader
    is gone; with nothing buffered (the failed write may have been unbuffered, or rich's), the kernel
    says so of the descriptor: ``poll`` reports POLLERR on a pipe's write end whose readers all closed
    (POLLHUP on a socket whose peer did). An empty ``write`` cannot tell: Linux returns 0 for it before
    looking for a reader. No ``poll`` (Windows), or not a file (a test's capture): only the flush says."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):  # another failure (a closed file) is no reader gone
        pass
    poll = getattr(select, "poll", None)
    if poll is None:
        return False
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = poll()
    poller.register(fd, select.POLLOUT)  # POLLERR and POLLHUP are reported whatever is asked for
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def flush_stdout() -> bool:
    """Flush standard output now, while a reader that went away can still be handled; ``False`` (and the
    output discarded from here on) if it did."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return False
    return True


class _CommandConsole(Console):
    """rich's console, but a reader of standard output that went away is a ``BrokenPipeError`` for
    :func:`run_command`, not rich's own ``SystemExit(1)``: 1 is a failed check here."""

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more goes to the pipe
        raise BrokenPipeError(errno.EPIPE, "standard output: its reader went away")


def command_console() -> Console:
    """The console a command prints its results on: a terminal's own width (a forced one would make the
    terminal wrap every line); 140 columns when the output goes to a file or a pipe, so that tables keep
    whole identifiers."""
    return _CommandConsole() if _CommandConsole().is_terminal else _CommandConsole(width=140)


def run_command(command: str, body: Callable[[], int]) -> int:
    """Run the body of ``ddcl-incrt <command>`` (``body`` returns its exit code) and return the exit code,
    one way for every command and for ``python -m ddcl_incrt.bench``:

    * standard output closed before the start (Python's ``sys.stdout`` is ``None``): a one-line usage
      error, :data:`USAGE`, and ``body`` is not run;
    * Ctrl-C or SIGTERM (:func:`~ddcl_incrt.interrupts.terminate_as_interrupt`): the one line saying
      where the state is, :data:`INTERRUPTED`;
    * standard output's reader gone (a ``BrokenPipeError`` while standard output itself is broken, or,
      for a body that returned :data:`OK`, standard output found broken when it returns): nothing said,
      :data:`OUTPUT_CLOSED`; a ``BrokenPipeError`` of another pipe (a subprocess's, a
      worker's) is no closed output: it is handled as any other unexpected error, a bug;
    * a bad argument or input file the command detects (a ``ValueError``, a malformed record or
      checkpoint), a file that cannot be read or written (an ``OSError``, which names its file) and a run
      its inputs take beyond float range (a ``FloatingPointError``: a diverged run):
      ``ddcl-incrt <command>: error: …`` on stderr, :data:`USAGE`;
    * any other exception, a bug: its traceback, :data:`INTERNAL`."""
    if sys.stdout is None:  # `>&-`; a file opened now could even take descriptor 1, where C code writes
        return command_error(
            command,
            "standard output is closed: the results would have nowhere to go (redirect it: >/dev/null discards them)",
        )
    try:
        with terminate_as_interrupt():
            code = body()
            sys.stdout.flush()  # here, not at exit: a reader that went away is handled below
        if code == OK and _stdout_broken():
            # The reader left before the end, and no write said so: CPython's one large write to a pipe
            # whose reader leaves midway writes what fits and drops the rest without an error (measured:
            # `docs theory | head -1`, 77 KB in one write, exited 0 with 11 KB never written; rich prints a
            # table in one write too). A failed check's code says more, and is kept.
            _discard_stdout()
            return OUTPUT_CLOSED
    except BrokenPipeError:  # before OSError, of which it is one
        if _stdout_broken():
            _discard_stdout()
            return OUTPUT_CLOSED
        # another pipe broke (a subprocess's, a worker's): not the user's input or a file the command was
        # given (the OSError line below would name neither), but the command's own plumbing failing
        code = internal_error(f"ddcl-incrt {command}")
    except KeyboardInterrupt as exc:  # the traceback says nothing a user needs
        print(f"ddcl-incrt {command}: {interrupt_line(exc)}", file=sys.stderr)
        code = INTERRUPTED
    # RecordFormatError is a ValueError; OSError names its file; FloatingPointError is a run the inputs or
    # the configuration took beyond float range (a diverged run: the line names the step and the remedy),
    # raised on purpose by the guards of reference/ and accelerated/, not a bug of the program
    except (ValueError, OSError, FloatingPointError) as exc:
        # the notes say what was kept: the trainer's, where the state of the last completed step went (or
        # why it could not be written: a full disk's OSError names no file, the note does)
        notes = "; ".join(getattr(exc, "__notes__", ()))
        code = command_error(command, f"{exc} [{notes}]" if notes else str(exc))
    except Exception:
        code = internal_error(f"ddcl-incrt {command}")
    flush_stdout()  # the error's code says more than a pipe closed meanwhile
    return code


__all__ = [
    "FAILED_CHECK",
    "INTERNAL",
    "INTERRUPTED",
    "OK",
    "OUTPUT_CLOSED",
    "USAGE",
    "command_console",
    "command_error",
    "flush_stdout",
    "internal_error",
    "program_error",
    "run_command",
]
