"""How a command stops on Ctrl-C or SIGTERM: the same way (docs/reliability.md). Inside
:func:`terminate_as_interrupt` SIGTERM raises :class:`Terminated`, a ``KeyboardInterrupt``, so the
trainer's interrupt path (a checkpoint of the last completed step) runs for both; the command then
prints :func:`interrupt_line` and exits :data:`ddcl_incrt.exit_codes.INTERRUPTED`. Shared by the
``ddcl-incrt`` commands and the distributed launcher."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C's exception so that the interrupt path (a checkpoint of the last
    completed step, one line, exit 130) runs for it too."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM (what ``timeout``, batch schedulers and container stops send) raises
    ``KeyboardInterrupt`` in the main thread as Ctrl-C does, so that a training run saves the state of
    its last completed step instead of dying with nothing saved (docs/reliability.md). After the first
    SIGTERM or Ctrl-C, both are ignored for the rest of the block, while that state is written and the
    line naming it is made: a second Ctrl-C pressed in impatience used to interrupt the save itself
    (the line then said "nothing was saved" beside a checkpoint that was written, or a traceback came
    instead); to stop it then regardless, Ctrl-\\ (SIGQUIT) or ``kill -9``. A signal the process started
    with ignored (SIGINT of a shell's ``cmd &``) is left ignored. The previous handlers are restored on
    leaving. Outside the main thread, where Python cannot install a handler, the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    # a signal the process was started with ignored stays ignored (a shell starts `cmd &` with SIGINT
    # ignored, so that Ctrl-C in the shell does not reach it)
    handled = [sig for sig in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(sig) is not signal.SIG_IGN]
    previous: dict[signal.Signals, Any] = {}

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    for sig in handled:
        previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:  # None: a handler not installed from Python, which cannot be put back; the default then
        for restored, handler in previous.items():
            signal.signal(restored, signal.SIG_DFL if handler is None else handler)


def interrupt_line(exc: KeyboardInterrupt) -> str:
    """The one line a command prints when stopped: how (Ctrl-C or SIGTERM), where the trainer saved the
    state (its notes on the exception) and, when it did, how to resume."""
    where = "; ".join(getattr(exc, "__notes__", ())) or "nothing was saved"
    hint = " (run the same command with --resume and that path)" if "resume from it" in where else ""
    how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    return f"{how}: {where}{hint}"


__all__ = ["Terminated", "interrupt_line", "terminate_as_interrupt"]
